//! Consumer groups as Kafka clients see them: rdkafka consumers subscribing,
//! splitting partitions, rebalancing (eager and cooperative), static members,
//! committed offsets across broker restarts, the admin client, kcat -G, and a
//! bare-protocol member that goes silent without leaving.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::raw::Raw;
use common::*;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[path = "groups/admin_and_protocol.rs"]
mod admin_and_protocol;

#[path = "groups/commits.rs"]
mod commits;

const SESSION_MS: i32 = 6000;

/// Group consumer settings: short session, frequent heartbeats, manual commits.
fn group_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("group.id", group)
        .set("session.timeout.ms", SESSION_MS.to_string())
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// What a [`Member`] has seen so far.
#[derive(Debug, Default, Clone)]
struct Seen {
    records: Vec<Rec>,
    assignment: BTreeSet<i32>,
    rebalances: usize,
}

struct Counting(Arc<AtomicUsize>);

impl ClientContext for Counting {}

impl ConsumerContext for Counting {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A subscribed consumer polling on its own thread until stopped.
struct Member {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(config: ClientConfig, topic: &str) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let rebalances = Arc::new(AtomicUsize::new(0));
        let consumer: BaseConsumer<Counting> = config
            .create_with_context(Counting(rebalances.clone()))
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let record = match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => Some(Rec::from_message(&m)),
                    _ => None,
                };
                let assignment = consumer
                    .assignment()
                    .map(|a| a.elements().iter().map(|e| e.partition()).collect());
                let mut seen = seen2.lock().expect("seen");
                seen.records.extend(record);
                seen.assignment = assignment.unwrap_or_default();
                seen.rebalances = rebalances.load(Ordering::SeqCst);
            }
        });
        Member {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Seen {
        self.seen.lock().expect("seen").clone()
    }

    /// Stops polling and closes the consumer (a dynamic member sends LeaveGroup).
    fn close(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// True when every member owns at least one partition, no two share one, and together they own `0..n`.
fn split(assignments: &[BTreeSet<i32>], n: i32) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assignments.iter().all(|a| !a.is_empty()) && total == union.len() && union == (0..n).collect()
}

fn assignments(members: &[&Member]) -> Vec<BTreeSet<i32>> {
    members.iter().map(|m| m.seen().assignment).collect()
}

/// Every (partition, offset) consumed by any member, checking none was consumed twice.
fn consumed_once(members: &[&Member]) -> BTreeSet<(i32, i64)> {
    let mut all = BTreeSet::new();
    for m in members {
        for r in m.seen().records {
            assert!(all.insert((r.partition, r.offset)), "consumed twice: {r:?}");
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_consumer_resumes_after_the_committed_offset() {
    let broker = start_broker().await;
    let (topic, group) = (unique_topic("resume"), unique_topic("g-resume"));
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let prod = producer(&broker.bootstrap(), &[]);
    produce_n(&prod, &topic, 0, 5).await;

    let first: BaseConsumer = group_config(&broker.bootstrap(), &group, &[])
        .create()
        .expect("consumer");
    first.subscribe(&[&topic]).expect("subscribe");
    let read = blocking_consume(first, 5, true).await;
    assert_eq!(
        read.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );

    produce_n(&prod, &topic, 0, 3).await;
    let second: BaseConsumer = group_config(&broker.bootstrap(), &group, &[])
        .create()
        .expect("consumer");
    second.subscribe(&[&topic]).expect("subscribe");
    let read = blocking_consume(second, 3, false).await;
    let got: Vec<(i64, &str)> = read.iter().map(|r| (r.offset, r.value_str())).collect();
    assert_eq!(got, vec![(5, "value-0"), (6, "value-1"), (7, "value-2")]);
}

/// Consumes exactly `n` records, optionally commits synchronously, then closes.
async fn blocking_consume(consumer: BaseConsumer, n: usize, commit: bool) -> Vec<Rec> {
    blocking(move || {
        let records = consume_exactly(&consumer, n, WAIT);
        if commit {
            consumer
                .commit_consumer_state(CommitMode::Sync)
                .expect("commit");
        }
        records
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn eager_members_split_rebalance_and_survive_a_silent_member() {
    split_rebalance_and_silent_member("range").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cooperative_members_split_rebalance_and_survive_a_silent_member() {
    split_rebalance_and_silent_member("cooperative-sticky").await;
}

async fn split_rebalance_and_silent_member(strategy: &str) {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("split"), unique_topic("g-split"));
    create_topic(&b, &topic, 6, &[]).await;
    let config = |id: &str| {
        let extra = [
            ("partition.assignment.strategy", strategy),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "100"),
            ("client.id", id),
        ];
        group_config(&b, &group, &extra)
    };
    let a = Member::start(config("a"), &topic);
    let c = Member::start(config("b"), &topic);
    wait_until("two members split 6 partitions", WAIT, || {
        split(&assignments(&[&a, &c]), 6)
    });

    let prod = producer(&b, &[]);
    for p in 0..6 {
        produce_n(&prod, &topic, p, 10).await;
    }
    wait_until("60 records consumed", WAIT, || {
        consumed_once(&[&a, &c]).len() == 60
    });
    assert_eq!(consumed_once(&[&a, &c]), all_offsets(6, 10));
    for m in [&a, &c] {
        let seen = m.seen();
        assert!(
            seen.records
                .iter()
                .all(|r| seen.assignment.contains(&r.partition)),
            "{seen:?}"
        );
    }

    let d = Member::start(config("c"), &topic);
    wait_until("three members split 6 partitions", WAIT, || {
        split(&assignments(&[&a, &c, &d]), 6)
    });

    let protocol = if strategy == "range" {
        "range"
    } else {
        "cooperative-sticky"
    };
    let (silent, owned) = silent_member(&b, &group, &topic, protocol).await;
    if strategy == "range" {
        assert!(
            !owned.is_empty(),
            "range gives each of 4 members a share of 6 partitions"
        );
    }
    wait_until(
        "the silent member is removed and the others own every partition",
        WAIT,
        || split(&assignments(&[&a, &c, &d]), 6) && group_members(&b, &group) == 3,
    );
    drop(silent);

    for p in 0..6 {
        produce_n(&prod, &topic, p, 10).await;
    }
    wait_until("120 records consumed", WAIT, || {
        consumed_once(&[&a, &c, &d]).len() == 120
    });
    assert_eq!(consumed_once(&[&a, &c, &d]), all_offsets(6, 20));
}

/// Members of `group` as DescribeGroups reports them.
fn group_members(bootstrap: &str, group: &str) -> usize {
    let probe: BaseConsumer = client_config(bootstrap).create().expect("probe client");
    let list = probe
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .expect("describe group");
    list.groups().first().map_or(0, |g| g.members().len())
}

/// A bare-protocol member: joins (MEMBER_ID_REQUIRED, then again), syncs, and
/// then never heartbeats. Returns its connection and assigned partitions.
async fn silent_member(
    bootstrap: &str,
    group: &str,
    topic: &str,
    protocol: &str,
) -> (Raw, Vec<i32>) {
    let mut raw = Raw::connect(bootstrap).await;
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_string(topic.into())]);
    // v1 (owned partitions, here none): librdkafka's cooperative assignor crashes on v0.
    let mut metadata = BytesMut::new();
    metadata.put_i16(1);
    subscription
        .encode(&mut metadata, 1)
        .expect("encode subscription");
    let mut join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(SESSION_MS)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_string(protocol.into()))
                .with_metadata(metadata.freeze()),
        ]);
    let first = raw.call(5, &join).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    join.member_id = first.member_id;
    // A cooperative member that lost partitions in this generation rejoins at
    // once, so our sync may meet the next rebalance: rejoin, as a client does.
    let mut synced = None;
    for _ in 0..10 {
        let joined = raw.call(5, &join).await;
        assert_eq!(joined.error_code, 0, "join");
        let sync = SyncGroupRequest::default()
            .with_group_id(join.group_id.clone())
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone());
        let answer = raw.call(3, &sync).await;
        if answer.error_code != 27 {
            assert_eq!(answer.error_code, 0, "sync");
            synced = Some(answer);
            break;
        }
    }
    let mut assignment = synced.expect("synced within 10 rebalances").assignment;
    let mut partitions = Vec::new();
    if assignment.len() >= 2 {
        let version = assignment.get_i16();
        let decoded = ConsumerProtocolAssignment::decode(&mut assignment, version.clamp(0, 3))
            .expect("assignment");
        partitions = decoded
            .assigned_partitions
            .into_iter()
            .flat_map(|tp| tp.partitions)
            .collect();
    }
    (raw, partitions)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_rejoins_without_a_rebalance() {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("static"), unique_topic("g-static"));
    create_topic(&b, &topic, 4, &[]).await;
    let config = |instance: &str| {
        group_config(
            &b,
            &group,
            &[("group.instance.id", instance), ("client.id", instance)],
        )
    };
    let first = Member::start(config("static-a"), &topic);
    let other = Member::start(config("static-b"), &topic);
    wait_until("two static members split 4 partitions", WAIT, || {
        split(&assignments(&[&first, &other]), 4)
    });
    let (owned, before) = (first.seen().assignment, other.seen());

    // A static member's close sends no LeaveGroup; its replacement takes over within the session timeout.
    first.close();
    let again = Member::start(config("static-a"), &topic);
    wait_until("the restarted member owns its old partitions", WAIT, || {
        again.seen().assignment == owned
    });
    let back = Instant::now();

    // The other member keeps heartbeating; a rebalance would reach it within one heartbeat interval.
    let prod = producer(&b, &[]);
    for p in 0..4 {
        produce_n(&prod, &topic, p, 1).await;
    }
    wait_until("each member consumed its partitions' records", WAIT, || {
        let (a, o) = (again.seen(), other.seen());
        a.records.len() == owned.len()
            && o.records.len() == 4 - owned.len()
            && back.elapsed() > Duration::from_millis(1500)
    });
    let after = other.seen();
    assert_eq!(
        (after.rebalances, after.assignment),
        (before.rebalances, before.assignment),
        "the other member rebalanced"
    );
    assert!(
        again
            .seen()
            .records
            .iter()
            .all(|r| owned.contains(&r.partition))
    );
    assert_eq!(group_members(&b, &group), 2);
}

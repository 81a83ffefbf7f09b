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

/// Commits `offset` with metadata `m-<p>` for each partition, as a simple consumer (no membership).
fn commit_simple(bootstrap: &str, group: &str, topic: &str, partitions: i32, offset: i64) {
    let consumer: BaseConsumer = group_config(bootstrap, group, &[])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let mut e = tpl.add_partition(topic, p);
        e.set_offset(Offset::Offset(offset)).expect("offset");
        e.set_metadata(format!("m-{p}"));
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// The committed (offset, metadata) of each partition, through a fresh consumer.
fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<(Offset, String)> {
    let consumer: BaseConsumer = group_config(bootstrap, group, &[])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let found = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("OffsetFetch");
    found
        .elements()
        .iter()
        .map(|e| (e.offset(), e.metadata().to_string()))
        .collect()
}

fn expected_commits(partitions: i32, offset: i64) -> Vec<(Offset, String)> {
    (0..partitions)
        .map(|p| (Offset::Offset(offset), format!("m-{p}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_a_clean_restart() {
    let mut broker = start_broker().await;
    let (topic, group) = (unique_topic("restart"), unique_topic("g-restart"));
    create_topic(&broker.bootstrap(), &topic, 3, &[]).await;
    let prod = producer(&broker.bootstrap(), &[]);
    for p in 0..3 {
        produce_n(&prod, &topic, p, 4).await;
    }
    let member: BaseConsumer = group_config(&broker.bootstrap(), &group, &[])
        .create()
        .expect("consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let read = blocking_consume(member, 12, true).await;
    assert_eq!(read.len(), 12);
    let unknown = unique_topic("never-committed");
    create_topic(&broker.bootstrap(), &unknown, 1, &[]).await;

    broker.restart().await;
    let b = broker.bootstrap();
    let found: Vec<Offset> = committed(&b, &group, &topic, 3)
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(found, vec![Offset::Offset(4); 3]);
    assert_eq!(
        committed(&b, &group, &unknown, 1)[0].0,
        Offset::Invalid,
        "no commit reads as -1"
    );

    let prod = producer(&b, &[]);
    for p in 0..3 {
        produce_n(&prod, &topic, p, 1).await;
    }
    let member: BaseConsumer = group_config(&b, &group, &[]).create().expect("consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let mut read: Vec<(i32, i64)> = blocking_consume(member, 3, false)
        .await
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    read.sort();
    assert_eq!(read, vec![(0, 4), (1, 4), (2, 4)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_sigkill_of_the_binary() {
    let (_dir, path) = scratch_dir();
    let (topic, group) = (unique_topic("sigkill"), unique_topic("g-sigkill"));
    let process = BrokerProcess::start(&path, &[]);
    create_topic(&process.bootstrap, &topic, 2, &[]).await;
    let b = process.bootstrap.clone();
    let (t, g) = (topic.clone(), group.clone());
    blocking(move || commit_simple(&b, &g, &t, 2, 7)).await;
    process.crash();

    let process = BrokerProcess::start(&path, &[]);
    let b = process.bootstrap.clone();
    let found = blocking(move || committed(&b, &group, &topic, 2)).await;
    assert_eq!(found, expected_commits(2, 7));
    process.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_client_lists_describes_and_deletes_groups() {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let topic = unique_topic("admin");
    let (active, idle) = (unique_topic("g-active"), unique_topic("g-idle"));
    create_topic(&b, &topic, 2, &[]).await;
    let member = Member::start(
        group_config(&b, &active, &[("client.id", "admin-member")]),
        &topic,
    );
    wait_until("the member owns both partitions", WAIT, || {
        member.seen().assignment.len() == 2
    });
    let (b2, t2, i2) = (b.clone(), topic.clone(), idle.clone());
    blocking(move || commit_simple(&b2, &i2, &t2, 2, 3)).await;

    let probe: BaseConsumer = client_config(&b).create().expect("probe");
    let list = probe
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("list groups");
    let summary: Vec<(String, String, String, Vec<String>)> = list
        .groups()
        .iter()
        .filter(|g| g.name() == active || g.name() == idle)
        .map(|g| {
            let clients = g
                .members()
                .iter()
                .map(|m| m.client_id().to_string())
                .collect();
            (
                g.name().to_string(),
                g.state().to_string(),
                g.protocol_type().to_string(),
                clients,
            )
        })
        .collect();
    let mut want = vec![
        (
            active.clone(),
            "Stable".to_string(),
            "consumer".to_string(),
            vec!["admin-member".to_string()],
        ),
        (idle.clone(), "Empty".to_string(), String::new(), vec![]),
    ];
    want.sort();
    let mut summary = summary;
    summary.sort();
    assert_eq!(summary, want);
    let described = probe
        .fetch_group_list(Some(&active), Duration::from_secs(10))
        .expect("describe");
    assert_eq!(described.groups()[0].protocol(), "range");

    let admin = admin(&b);
    let deleted = admin
        .delete_groups(&[&active, &idle], &admin_opts())
        .await
        .expect("DeleteGroups");
    assert_eq!(
        deleted,
        vec![
            Err((active.clone(), RDKafkaErrorCode::NonEmptyGroup)),
            Ok(idle.clone())
        ]
    );
    assert_eq!(
        committed(&b, &idle, &topic, 1)[0].0,
        Offset::Invalid,
        "deleted with its offsets"
    );

    member.close();
    wait_until("the group is empty", WAIT, || {
        group_members(&b, &active) == 0
    });
    let deleted = admin
        .delete_groups(&[&active], &admin_opts())
        .await
        .expect("DeleteGroups");
    assert_eq!(deleted, vec![Ok(active.clone())]);
    let list = probe
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("list groups");
    assert!(
        list.groups()
            .iter()
            .all(|g| g.name() != active && g.name() != idle)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kcat_consumes_in_a_group_and_commits() {
    if !tools::present(&tools::KCAT) {
        return;
    }
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kcat-group"), unique_topic("g-kcat"));
    create_topic(&b, &topic, 1, &[]).await;
    let prod = producer(&b, &[]);
    produce_n(&prod, &topic, 0, 3).await;
    let args = [
        "-b",
        &b,
        "-G",
        &group,
        &topic,
        "-e",
        "-f",
        "%o %s\n",
        "-X",
        "auto.offset.reset=earliest",
    ];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let run = |args: Vec<String>| {
        blocking(move || kcat(&args.iter().map(String::as_str).collect::<Vec<_>>(), b""))
    };
    assert_eq!(run(args.clone()).await, "0 value-0\n1 value-1\n2 value-2\n");
    produce_n(&prod, &topic, 0, 2).await;
    assert_eq!(run(args).await, "3 value-0\n4 value-1\n");
}

fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.into()))
}

fn join_request(group: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(SESSION_MS)
        .with_member_id(StrBytes::from_string(member.into()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.into())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"meta")),
        ])
}

fn heartbeat(
    group: &str,
    member: &StrBytes,
    generation: i32,
    instance: Option<&str>,
) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(member.clone())
        .with_generation_id(generation)
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.into())))
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_protocol_errors_follow_kafka() {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let group = unique_topic("g-raw");
    let mut raw = Raw::connect(&b).await;
    let (host, port) = b.rsplit_once(':').expect("host:port");

    let v0 = raw
        .call(
            0,
            &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.clone())),
        )
        .await;
    assert_eq!(
        (
            v0.error_code,
            v0.node_id.0,
            v0.host.as_str(),
            v0.port.to_string()
        ),
        (0, 1, host, port.to_string())
    );
    let keys = vec![
        StrBytes::from_static_str("a"),
        StrBytes::from_static_str("b"),
    ];
    let v4 = raw
        .call(
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(keys),
        )
        .await;
    let found: Vec<(&str, i32, i16)> = v4
        .coordinators
        .iter()
        .map(|c| (c.key.as_str(), c.node_id.0, c.error_code))
        .collect();
    assert_eq!(found, vec![("a", 1, 0), ("b", 1, 0)]);

    // A dynamic member: MEMBER_ID_REQUIRED, then the join completes at once (alone).
    let first = raw.call(4, &join_request(&group, "", None)).await;
    assert_eq!(first.error_code, 79);
    let joined = raw
        .call(4, &join_request(&group, &first.member_id, None))
        .await;
    assert_eq!(
        (joined.error_code, joined.generation_id, &joined.leader),
        (0, 1, &first.member_id)
    );
    let me = joined.member_id.clone();
    let assignment = SyncGroupRequestAssignment::default()
        .with_member_id(me.clone())
        .with_assignment(Bytes::from_static(b"mine"));
    let sync = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(1)
        .with_member_id(me.clone());
    let synced = raw
        .call(3, &sync.clone().with_assignments(vec![assignment]))
        .await;
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"mine"[..])
    );
    assert_eq!(
        raw.call(3, &heartbeat(&group, &me, 1, None))
            .await
            .error_code,
        0
    );
    assert_eq!(
        raw.call(3, &heartbeat(&group, &me, 7, None))
            .await
            .error_code,
        22,
        "ILLEGAL_GENERATION"
    );
    let stranger = StrBytes::from_static_str("nobody");
    assert_eq!(
        raw.call(3, &heartbeat(&group, &stranger, 1, None))
            .await
            .error_code,
        25,
        "UNKNOWN_MEMBER_ID"
    );

    // A static member joins (no MEMBER_ID_REQUIRED): the first member must rejoin.
    let (b2, g2) = (b.clone(), group.clone());
    let second = tokio::spawn(async move {
        let mut raw = Raw::connect(&b2).await;
        let joined = raw.call(5, &join_request(&g2, "", Some("inst"))).await;
        (raw, joined)
    });
    let mut rebalancing = 0;
    while rebalancing != 27 {
        rebalancing = raw
            .call(3, &heartbeat(&group, &me, 1, None))
            .await
            .error_code;
        assert!(
            rebalancing == 0 || rebalancing == 27,
            "REBALANCE_IN_PROGRESS expected, got {rebalancing}"
        );
    }
    let rejoined = raw.call(4, &join_request(&group, &me, None)).await;
    let (mut raw2, static_join) = second.await.expect("second member");
    assert_eq!(
        (
            rejoined.error_code,
            rejoined.generation_id,
            rejoined.members.len()
        ),
        (0, 2, 2)
    );
    assert_eq!((static_join.error_code, static_join.generation_id), (0, 2));
    let sync2 = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(2);
    let (a, b_) = (me.clone(), static_join.member_id.clone());
    let follower = tokio::spawn(async move {
        let synced = raw2
            .call(
                3,
                &sync2
                    .with_member_id(b_)
                    .with_group_instance_id(Some(StrBytes::from_static_str("inst"))),
            )
            .await;
        (raw2, synced)
    });
    let assignments = vec![
        SyncGroupRequestAssignment::default()
            .with_member_id(a.clone())
            .with_assignment(Bytes::from_static(b"A")),
        SyncGroupRequestAssignment::default()
            .with_member_id(static_join.member_id.clone())
            .with_assignment(Bytes::from_static(b"B")),
    ];
    let leader_sync = raw
        .call(
            3,
            &sync
                .clone()
                .with_generation_id(2)
                .with_assignments(assignments),
        )
        .await;
    let (_raw2, follower_sync) = follower.await.expect("follower");
    assert_eq!(
        (&leader_sync.assignment[..], &follower_sync.assignment[..]),
        (&b"A"[..], &b"B"[..])
    );

    // The static member restarts: same generation, its assignment, and the old id is fenced.
    let mut raw3 = Raw::connect(&b).await;
    let back = raw3.call(5, &join_request(&group, "", Some("inst"))).await;
    assert_eq!((back.error_code, back.generation_id), (0, 2));
    let resync = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(2)
        .with_member_id(back.member_id.clone());
    assert_eq!(&raw3.call(3, &resync).await.assignment[..], b"B");
    let old = heartbeat(&group, &static_join.member_id, 2, Some("inst"));
    assert_eq!(
        raw3.call(3, &old).await.error_code,
        82,
        "FENCED_INSTANCE_ID"
    );
    assert_eq!(
        raw.call(3, &heartbeat(&group, &me, 2, None))
            .await
            .error_code,
        0,
        "no rebalance for the others"
    );

    // Offsets: unknown partitions read -1; OffsetFetch v8 answers several groups.
    let topics = vec![
        OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("nothing")))
            .with_partition_indexes(vec![0]),
    ];
    let fetched = raw
        .call(
            1,
            &OffsetFetchRequest::default()
                .with_group_id(gid(&group))
                .with_topics(Some(topics)),
        )
        .await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1);
    let topics8 = vec![
        OffsetFetchRequestTopics::default()
            .with_name(TopicName(StrBytes::from_static_str("nothing")))
            .with_partition_indexes(vec![0]),
    ];
    let groups = vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(gid(&group))
            .with_topics(Some(topics8.clone())),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("no-such-group"))
            .with_topics(Some(topics8)),
    ];
    let fetched = raw
        .call(8, &OffsetFetchRequest::default().with_groups(groups))
        .await;
    let offsets: Vec<i64> = fetched
        .groups
        .iter()
        .map(|g| g.topics[0].partitions[0].committed_offset)
        .collect();
    assert_eq!(offsets, vec![-1, -1]);
}

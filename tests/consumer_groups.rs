//! The consumer group protocol of KIP-848 (`group.protocol=consumer`), driven
//! by librdkafka: the broker assigns, members reconcile one heartbeat at a
//! time, and no partition is ever owned by two members at once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::Raw;
use common::*;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};

/// How often the test broker asks members to heartbeat, and its session timeout.
const HEARTBEAT_MS: i32 = 300;
const SESSION_MS: i32 = 3000;

async fn broker() -> TestBroker {
    broker_on("127.0.0.1:0".into()).await
}

/// A test broker listening on `listen` (a fixed port survives a restart).
async fn broker_on(listen: String) -> TestBroker {
    start_broker_with(|c| {
        c.listen = listen;
        c.group.consumer_heartbeat_interval_ms = HEARTBEAT_MS;
        c.group.consumer_session_timeout_ms = SESSION_MS;
        c.group.consumer_min_session_timeout_ms = 1000;
    })
    .await
}

/// A consumer of the KIP-848 protocol with manual commits.
fn consumer_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("group.id", group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// Who owned which partition when: (topic, partition) → [(member, from, until)].
type Ownership = Arc<Mutex<BTreeMap<(String, i32), Vec<(String, Instant, Option<Instant>)>>>>;

/// Records every assignment and revocation as it happens in the client.
struct Recorder {
    name: String,
    ownership: Ownership,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let now = Instant::now();
            let mut owned = self.ownership.lock().expect("ownership");
            for e in tpl.elements() {
                let spans = owned
                    .entry((e.topic().to_string(), e.partition()))
                    .or_default();
                for span in spans
                    .iter_mut()
                    .filter(|s| s.0 == self.name && s.2.is_none())
                {
                    span.2 = Some(now);
                }
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let now = Instant::now();
            let mut owned = self.ownership.lock().expect("ownership");
            for e in tpl.elements() {
                owned
                    .entry((e.topic().to_string(), e.partition()))
                    .or_default()
                    .push((self.name.clone(), now, None));
            }
        }
    }
}

/// What a member has consumed, and what it owns now.
type Seen = (Vec<Rec>, BTreeSet<(String, i32)>);

/// A subscribed consumer polling on its own thread until stopped.
struct Member {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(config: ClientConfig, name: &str, topics: &[&str], ownership: &Ownership) -> Member {
        let context = Recorder {
            name: name.to_string(),
            ownership: ownership.clone(),
        };
        let consumer: BaseConsumer<Recorder> =
            config.create_with_context(context).expect("consumer");
        consumer.subscribe(topics).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let record = match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => Some(Rec::from_message(&m)),
                    _ => None,
                };
                let assignment: BTreeSet<(String, i32)> = consumer
                    .assignment()
                    .map(|a| {
                        a.elements()
                            .iter()
                            .map(|e| (e.topic().to_string(), e.partition()))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut seen = seen2.lock().expect("seen");
                seen.0.extend(record);
                seen.1 = assignment;
            }
            drop(consumer);
        });
        Member {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn records(&self) -> Vec<Rec> {
        self.seen.lock().expect("seen").0.clone()
    }

    fn assignment(&self) -> BTreeSet<(String, i32)> {
        self.seen.lock().expect("seen").1.clone()
    }

    /// Stops polling and closes the consumer (it leaves the group).
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

/// Every member owns something, no two share a partition, and together they own all `n`.
fn split(members: &[&Member], topic: &str, n: i32) -> bool {
    let sets: Vec<BTreeSet<(String, i32)>> = members.iter().map(|m| m.assignment()).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<(String, i32)> = sets.iter().flatten().cloned().collect();
    let all: BTreeSet<(String, i32)> = (0..n).map(|p| (topic.to_string(), p)).collect();
    sets.iter().all(|s| !s.is_empty()) && total == union.len() && union == all
}

/// Every (partition, offset) consumed by any member, checking none was consumed twice.
fn consumed_once(members: &[&Member]) -> BTreeSet<(i32, i64)> {
    let mut all = BTreeSet::new();
    for m in members {
        for r in m.records() {
            assert!(all.insert((r.partition, r.offset)), "consumed twice: {r:?}");
        }
    }
    all
}

/// Fails if two members ever owned the same partition at the same time.
fn assert_never_owned_twice(ownership: &Ownership) {
    let owned = ownership.lock().expect("ownership");
    for (tp, spans) in owned.iter() {
        for (i, a) in spans.iter().enumerate() {
            for b in spans.iter().skip(i + 1) {
                let a_before_b = a.2.is_some_and(|end| end <= b.1);
                let b_before_a = b.2.is_some_and(|end| end <= a.1);
                assert!(
                    a_before_b || b_before_a,
                    "{tp:?} owned by {} and {} at once: {spans:?}",
                    a.0,
                    b.0
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_resumes_after_its_commit() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-resume"), unique_topic("g848-resume"));
    create_topic(&b, &topic, 1, &[]).await;
    let prod = producer(&b, &[]);
    produce_n(&prod, &topic, 0, 5).await;

    let read = {
        let (b, group, topic) = (b.clone(), group.clone(), topic.clone());
        blocking(move || {
            let first: BaseConsumer = consumer_config(&b, &group, &[]).create().expect("consumer");
            first.subscribe(&[&topic]).expect("subscribe");
            let read = consume_exactly(&first, 5, WAIT);
            first
                .commit_consumer_state(CommitMode::Sync)
                .expect("commit");
            read
        })
        .await
    };
    let offsets: Vec<i64> = read.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);

    produce_n(&prod, &topic, 0, 3).await;
    let read = blocking(move || {
        let second: BaseConsumer = consumer_config(&b, &group, &[]).create().expect("consumer");
        second.subscribe(&[&topic]).expect("subscribe");
        consume_exactly(&second, 3, WAIT)
    })
    .await;
    let got: Vec<(i64, &str)> = read.iter().map(|r| (r.offset, r.value_str())).collect();
    assert_eq!(got, vec![(5, "value-0"), (6, "value-1"), (7, "value-2")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn members_split_partitions_and_move_them_without_owning_one_twice() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-split"), unique_topic("g848-split"));
    create_topic(&b, &topic, 6, &[]).await;
    let ownership = Ownership::default();
    let config = || {
        let extra = [
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "100"),
        ];
        consumer_config(&b, &group, &extra)
    };
    let one = Member::start(config(), "one", &[&topic], &ownership);
    let two = Member::start(config(), "two", &[&topic], &ownership);
    wait_until("two members split 6 partitions", WAIT, || {
        split(&[&one, &two], &topic, 6)
    });

    let prod = producer(&b, &[]);
    for p in 0..6 {
        produce_n(&prod, &topic, p, 10).await;
    }
    wait_until("60 records consumed", WAIT, || {
        consumed_once(&[&one, &two]).len() == 60
    });
    assert_eq!(consumed_once(&[&one, &two]), all_offsets(6, 10));

    let three = Member::start(config(), "three", &[&topic], &ownership);
    wait_until("three members split 6 partitions", WAIT, || {
        split(&[&one, &two, &three], &topic, 6)
    });
    for m in [&one, &two, &three] {
        assert_eq!(
            m.assignment().len(),
            2,
            "the uniform assignor balances 6 over 3"
        );
    }
    for p in 0..6 {
        produce_n(&prod, &topic, p, 10).await;
    }
    wait_until("120 records consumed", WAIT, || {
        consumed_once(&[&one, &two, &three]).len() == 120
    });
    assert_eq!(consumed_once(&[&one, &two, &three]), all_offsets(6, 20));

    three.close();
    wait_until("two members own all 6 partitions again", WAIT, || {
        split(&[&one, &two], &topic, 6)
    });
    assert_never_owned_twice(&ownership);
}

/// A raw member that joins, takes its assignment and never heartbeats again.
async fn silent_member(bootstrap: &str, group: &str, topic: &str) -> (Raw, String, usize) {
    let mut raw = Raw::connect(bootstrap).await;
    let id = uuid::Uuid::new_v4().to_string();
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(id.clone()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(SESSION_MS)
        .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(topic.into()))]))
        .with_topic_partitions(Some(Vec::new()));
    let joined = raw.call(1, &join).await;
    assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    assert!(joined.member_epoch > 0);
    let owned = joined.assignment.map_or(0, |a| {
        a.topic_partitions.iter().map(|t| t.partitions.len()).sum()
    });
    (raw, id, owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_stops_heartbeating_is_fenced_and_its_partitions_move() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-silent"), unique_topic("g848-silent"));
    create_topic(&b, &topic, 4, &[]).await;
    let ownership = Ownership::default();
    let (silent, silent_member_id, owned) = silent_member(&b, &group, &topic).await;
    assert_eq!(owned, 4, "the first member gets every partition");
    let live = Member::start(
        consumer_config(&b, &group, &[]),
        "live",
        &[&topic],
        &ownership,
    );
    let deadline = Instant::now() + WAIT;
    let before = loop {
        let described = describe(&b, &group).await;
        if described.members.len() == 2 {
            break described;
        }
        assert!(Instant::now() < deadline, "the live member never joined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The silent member never revokes, so while it is a member the live one owns nothing.
    for m in &before.members {
        let owned: usize = m
            .assignment
            .topic_partitions
            .iter()
            .map(|t| t.partitions.len())
            .sum();
        let expected = if m.member_id.as_str() == silent_member_id {
            4
        } else {
            0
        };
        assert_eq!(owned, expected, "{before:?}");
    }
    wait_until(
        "the silent member is fenced; the live one owns all four",
        WAIT,
        || split(&[&live], &topic, 4),
    );
    let after = describe(&b, &group).await;
    assert_eq!(after.members.len(), 1);
    assert!(after.group_epoch > before.group_epoch);
    drop(silent);

    let prod = producer(&b, &[]);
    for p in 0..4 {
        produce_n(&prod, &topic, p, 5).await;
    }
    wait_until("20 records consumed", WAIT, || {
        consumed_once(&[&live]).len() == 20
    });
    assert_eq!(consumed_once(&[&live]), all_offsets(4, 5));
}

/// ConsumerGroupDescribe of one group over a raw connection.
async fn describe(
    bootstrap: &str,
    group: &str,
) -> kafka_protocol::messages::consumer_group_describe_response::DescribedGroup {
    let mut raw = Raw::connect(bootstrap).await;
    let req = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![GroupId(StrBytes::from_string(group.into()))]);
    let mut response = raw.call(0, &req).await;
    let described = response.groups.remove(0);
    assert_eq!(described.error_code, 0, "{:?}", described.error_message);
    described
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regex_subscription_picks_up_a_topic_created_later() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let prefix = unique_topic("kip848re");
    let (first, later) = (format!("{prefix}-a"), format!("{prefix}-b"));
    create_topic(&b, &first, 1, &[]).await;
    create_topic(&b, &unique_topic("unrelated"), 1, &[]).await;
    let ownership = Ownership::default();
    let pattern = format!("^{prefix}-.*");
    let group = unique_topic("g848-regex");
    let member = Member::start(
        consumer_config(&b, &group, &[("topic.metadata.refresh.interval.ms", "500")]),
        "regex",
        &[&pattern],
        &ownership,
    );
    wait_until("the member owns the first topic", WAIT, || {
        member.assignment() == BTreeSet::from([(first.clone(), 0)])
    });
    create_topic(&b, &later, 2, &[]).await;
    let all = BTreeSet::from([(first.clone(), 0), (later.clone(), 0), (later.clone(), 1)]);
    wait_until("the member owns the later topic too", WAIT, || {
        member.assignment() == all
    });
    let prod = producer(&b, &[]);
    produce_n(&prod, &later, 1, 3).await;
    wait_until("the later topic's records arrive", WAIT, || {
        // Only the later topic has a partition 1.
        member.records().iter().filter(|r| r.partition == 1).count() == 3
    });
    let described = describe(&b, &group).await;
    // librdkafka sends its patterns joined as one alternation: "(^p-.*)".
    let regex = described.members[0]
        .subscribed_topic_regex
        .clone()
        .unwrap_or_default();
    assert!(regex.contains(pattern.as_str()), "{regex}");
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_and_consumer_groups_read_the_same_topic_side_by_side() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let topic = unique_topic("kip848-both");
    create_topic(&b, &topic, 3, &[]).await;
    let prod = producer(&b, &[]);
    for p in 0..3 {
        produce_n(&prod, &topic, p, 4).await;
    }
    let ownership = Ownership::default();
    let modern = Member::start(
        consumer_config(&b, &unique_topic("g848-modern"), &[]),
        "modern",
        &[&topic],
        &ownership,
    );
    let mut classic_config = consumer_config(&b, &unique_topic("g848-classic"), &[]);
    classic_config.set("group.protocol", "classic");
    let classic = Member::start(classic_config, "classic", &[&topic], &ownership);
    wait_until("both groups read all 12 records", WAIT, || {
        consumed_once(&[&modern]).len() == 12 && consumed_once(&[&classic]).len() == 12
    });
    assert_eq!(consumed_once(&[&modern]), all_offsets(3, 4));
    assert_eq!(consumed_once(&[&classic]), all_offsets(3, 4));

    let listed: BTreeMap<String, String> = {
        let probe: BaseConsumer = client_config(&b).create().expect("probe");
        let groups = probe
            .fetch_group_list(None, Duration::from_secs(5))
            .expect("list groups");
        groups
            .groups()
            .iter()
            .map(|g| (g.name().to_string(), g.protocol_type().to_string()))
            .collect()
    };
    assert!(listed.values().any(|t| t == "consumer"), "{listed:?}");
    modern.close();
    classic.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_group_survives_a_broker_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut broker = broker_on(format!("127.0.0.1:{port}")).await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-restart"), unique_topic("g848-restart"));
    create_topic(&b, &topic, 2, &[]).await;
    let ownership = Ownership::default();
    let member = Member::start(consumer_config(&b, &group, &[]), "m", &[&topic], &ownership);
    wait_until("the member owns both partitions", WAIT, || {
        split(&[&member], &topic, 2)
    });
    let before = describe(&b, &group).await;

    broker.restart().await;
    assert_eq!(
        broker.bootstrap(),
        b,
        "the same port, so the member reconnects"
    );
    let after = describe(&b, &group).await;
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.members.len(), 1);
    assert_eq!(after.members[0].member_id, before.members[0].member_id);
    let assigned =
        |g: &kafka_protocol::messages::consumer_group_describe_response::DescribedGroup| {
            g.members[0]
                .assignment
                .topic_partitions
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>()
        };
    assert_eq!(assigned(&after), 2);

    let prod = producer(&broker.bootstrap(), &[]);
    for p in 0..2 {
        produce_n(&prod, &topic, p, 3).await;
    }
    wait_until("records produced after the restart arrive", WAIT, || {
        consumed_once(&[&member]).len() == 6
    });
    assert_eq!(consumed_once(&[&member]), all_offsets(2, 3));
    let last = describe(&broker.bootstrap(), &group).await;
    assert_eq!(
        last.members[0].member_id, before.members[0].member_id,
        "not fenced"
    );
    member.close();
}

/// The second client: @platformatic/kafka (Node.js) with `groupProtocol:
/// 'consumer'` reads, commits and resumes (tests/node/kip848.mjs). Skipped
/// (one line) without Node.js or npm.
#[tokio::test(flavor = "multi_thread")]
async fn platformatic_kafka_consumes_and_resumes_with_the_consumer_protocol() {
    let Some(modules) = tools::platformatic_kafka(file!()) else {
        return;
    };
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-node"), unique_topic("g848-node"));
    create_topic(&b, &topic, 3, &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/kip848.mjs");
    let child = std::process::Command::new("node")
        .args([script, &b, &topic, &group])
        .env("NODE_PATH", &modules)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node must be installed");
    let output =
        blocking(move || wait_with_timeout(child, WAIT * 3, "tests/node/kip848.mjs")).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("kip848: all checks passed"),
        "the Node.js client failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let committed = describe(&b, &group).await;
    assert_eq!(
        committed.group_state.as_str(),
        "Empty",
        "both consumers left"
    );
}

/// A ConsumerGroupHeartbeat v1 of `member` at `epoch` (a full one when joining).
fn beat(group: &str, member: &str, epoch: i32, topic: &str) -> ConsumerGroupHeartbeatRequest {
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(member.into()))
        .with_member_epoch(epoch);
    if epoch == 0 {
        req = req
            .with_rebalance_timeout_ms(SESSION_MS)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(topic.into()))]))
            .with_topic_partitions(Some(Vec::new()));
    }
    req
}

/// Error codes a Kafka client sees (Kafka's numbering).
mod code {
    pub(super) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(super) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub(super) const INVALID_REQUEST: i16 = 42;
    pub(super) const NON_EMPTY_GROUP: i16 = 68;
    pub(super) const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub(super) const GROUP_ID_NOT_FOUND: i16 = 69;
    pub(super) const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub(super) const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub(super) const STALE_MEMBER_EPOCH: i16 = 113;
    pub(super) const FENCED_MEMBER_EPOCH: i16 = 110;
    pub(super) const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_heartbeats_get_kafkas_error_codes() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-bad"), unique_topic("g848-bad"));
    create_topic(&b, &topic, 2, &[]).await;
    let mut raw = Raw::connect(&b).await;
    let error = |r: &kafka_protocol::messages::ConsumerGroupHeartbeatResponse| r.error_code;

    let no_id = raw.call(1, &beat(&group, "", 0, &topic)).await;
    assert_eq!(error(&no_id), code::INVALID_REQUEST, "v1 needs a member id");
    let regex = beat(&group, "m1", 0, &topic)
        .with_subscribed_topic_names(None)
        .with_subscribed_topic_regex(Some(StrBytes::from_static_str("(unclosed")));
    let regex = raw.call(1, &regex).await;
    assert_eq!(error(&regex), code::INVALID_REGULAR_EXPRESSION);
    let assignor = beat(&group, "m1", 0, &topic)
        .with_server_assignor(Some(StrBytes::from_static_str("sticky")));
    assert_eq!(
        error(&raw.call(1, &assignor).await),
        code::UNSUPPORTED_ASSIGNOR
    );
    let unknown = raw.call(1, &beat(&group, "nobody", 3, &topic)).await;
    assert_eq!(error(&unknown), code::UNKNOWN_MEMBER_ID);

    let joined = raw.call(1, &beat(&group, "m1", 0, &topic)).await;
    assert_eq!(error(&joined), 0);
    let epoch = joined.member_epoch;
    let ahead = raw.call(1, &beat(&group, "m1", epoch + 1, &topic)).await;
    assert_eq!(error(&ahead), code::FENCED_MEMBER_EPOCH);
    let classic = rdkafka_classic_join(&b, &group).await;
    assert_eq!(
        classic,
        code::INCONSISTENT_GROUP_PROTOCOL,
        "a non-empty consumer group"
    );

    // Offsets: the member's epoch must be the current one.
    let commit = |epoch: i32| {
        use kafka_protocol::messages::offset_commit_request::*;
        kafka_protocol::messages::OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.clone())))
            .with_generation_id_or_member_epoch(epoch)
            .with_member_id(StrBytes::from_static_str("m1"))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default().with_committed_offset(5),
                    ]),
            ])
    };
    let stale = raw.call(9, &commit(epoch - 1)).await;
    assert_eq!(
        stale.topics[0].partitions[0].error_code,
        code::STALE_MEMBER_EPOCH
    );
    let fresh = raw.call(9, &commit(epoch)).await;
    assert_eq!(fresh.topics[0].partitions[0].error_code, 0);

    let fetch = |epoch: i32| {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
        kafka_protocol::messages::OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_member_id(Some(StrBytes::from_static_str("m1")))
                .with_member_epoch(epoch)
                .with_topics(None),
        ])
    };
    let stale = raw.call(9, &fetch(epoch + 5)).await;
    assert_eq!(stale.groups[0].error_code, code::STALE_MEMBER_EPOCH);
    let fetched = raw.call(9, &fetch(epoch)).await;
    assert_eq!(fetched.groups[0].error_code, 0);
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        5
    );

    // ListGroups v5 filters by type.
    let listed = |kind: &'static str| {
        kafka_protocol::messages::ListGroupsRequest::default()
            .with_types_filter(vec![StrBytes::from_static_str(kind)])
    };
    let consumers = raw.call(5, &listed("consumer")).await;
    let ours = consumers
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == group);
    let ours = ours.map(|g| (g.group_type.as_str(), g.group_state.as_str()));
    assert_eq!(ours, Some(("consumer", "Stable")));
    let classics = raw.call(5, &listed("classic")).await;
    assert!(classics.groups.iter().all(|g| g.group_id.as_str() != group));

    let delete = kafka_protocol::messages::DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(StrBytes::from_string(group.clone()))]);
    assert_eq!(
        raw.call(2, &delete).await.results[0].error_code,
        code::NON_EMPTY_GROUP
    );
    let offset_delete = {
        use kafka_protocol::messages::offset_delete_request::*;
        kafka_protocol::messages::OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.clone())))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
            ])
    };
    let refused = raw.call(0, &offset_delete).await;
    let refused = refused.topics[0].partitions[0].error_code;
    assert_eq!(
        refused,
        code::GROUP_SUBSCRIBED_TO_TOPIC,
        "m1 reads the topic"
    );
    let left = raw.call(1, &beat(&group, "m1", -1, &topic)).await;
    assert_eq!((error(&left), left.member_epoch), (0, -1));
    let deleted = raw.call(0, &offset_delete).await;
    assert_eq!(
        deleted.topics[0].partitions[0].error_code, 0,
        "nobody reads it now"
    );
    let fetched = raw
        .call(
            9,
            &fetch(-1).with_groups(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                    .with_topics(None),
            ]),
        )
        .await;
    assert!(fetched.groups[0].topics.is_empty(), "the offset is gone");
    assert_eq!(raw.call(2, &delete).await.results[0].error_code, 0);
    let gone = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![GroupId(StrBytes::from_string(group.clone()))]);
    assert_eq!(
        raw.call(0, &gone).await.groups[0].error_code,
        code::GROUP_ID_NOT_FOUND
    );
}

/// A classic JoinGroup (protocol type "consumer", v5) for `group`; its error code.
async fn rdkafka_classic_join(bootstrap: &str, group: &str) -> i16 {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let mut raw = Raw::connect(bootstrap).await;
    let join = kafka_protocol::messages::JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(bytes::Bytes::from_static(b"\0\0\0\0\0\0\xff\xff\xff\xff")),
        ]);
    raw.call(5, &join).await.error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_comes_back_to_its_partitions_and_a_classic_group_stays_classic() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-static"), unique_topic("g848-static"));
    create_topic(&b, &topic, 4, &[]).await;
    let mut raw = Raw::connect(&b).await;
    let instance = |req: ConsumerGroupHeartbeatRequest, i: &str| {
        req.with_instance_id(Some(StrBytes::from_string(i.into())))
    };
    let a = raw
        .call(1, &instance(beat(&group, "a1", 0, &topic), "A"))
        .await;
    let other = raw.call(1, &beat(&group, "b1", 0, &topic)).await;
    assert_eq!((a.error_code, other.error_code), (0, 0));
    // a1 reconciles to its half; b1 then gets the rest.
    let a = raw
        .call(
            1,
            &beat(&group, "a1", a.member_epoch, &topic).with_topic_partitions(Some(Vec::new())),
        )
        .await;
    let owned = |r: &kafka_protocol::messages::ConsumerGroupHeartbeatResponse| {
        r.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect::<BTreeSet<i32>>()
        })
    };
    let a_owns = owned(&a).expect("a1 is told what it keeps");
    assert_eq!(a_owns.len(), 2, "{a:?}");
    let before = describe(&b, &group).await;

    let left = raw
        .call(1, &instance(beat(&group, "a1", -2, &topic), "A"))
        .await;
    assert_eq!((left.error_code, left.member_epoch), (0, -2));
    let held = raw
        .call(1, &instance(beat(&group, "a3", 0, &topic), "A"))
        .await;
    assert_eq!(held.error_code, 0, "A was released by its -2 leave");
    assert_eq!(owned(&held), Some(a_owns), "the same partitions, at once");
    assert!(
        held.member_epoch >= a.member_epoch,
        "it carries on from a1's epoch"
    );
    let again = raw
        .call(1, &instance(beat(&group, "a4", 0, &topic), "A"))
        .await;
    assert_eq!(again.error_code, code::UNRELEASED_INSTANCE_ID);
    let after = describe(&b, &group).await;
    assert!(after.members.iter().any(|m| m.member_id.as_str() == "a3"));
    assert_eq!(after.members.len(), 2);
    assert_eq!(
        after.group_epoch, before.group_epoch,
        "a static member's return is no rebalance"
    );

    // A classic group with a member refuses the consumer protocol.
    let classic_group = unique_topic("g848-classic-only");
    let joined = rdkafka_classic_join(&b, &classic_group).await;
    assert_eq!(
        joined, 79,
        "MEMBER_ID_REQUIRED: the classic group now exists with a pending member"
    );
    let member: BaseConsumer =
        consumer_config(&b, &classic_group, &[("group.protocol", "classic")])
            .create()
            .expect("classic consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let member = blocking(move || {
        wait_until("the classic member is assigned", WAIT, || {
            let _ = member.poll(Duration::from_millis(50));
            member.assignment().is_ok_and(|a| a.count() == 4)
        });
        member
    })
    .await;
    let refused = raw.call(1, &beat(&classic_group, "x", 0, &topic)).await;
    assert_eq!(refused.error_code, code::GROUP_ID_NOT_FOUND);
    drop(member);
}

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

#[path = "consumer_groups/errors.rs"]
mod errors;

#[path = "consumer_groups/side_by_side.rs"]
mod side_by_side;

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

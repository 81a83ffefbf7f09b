//! The test cluster (`sluice::testing::Cluster`) through rdkafka: clients
//! survive injected errors, delays and disconnects, a leader that moves and
//! a node that goes down, with every message delivered once, in order.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice::testing::{ApiKey, Cluster, Fault, ResponseError};

/// An idempotent producer to `cluster`.
fn idempotent(cluster: &Cluster) -> FutureProducer {
    producer(
        &cluster.bootstrap(),
        &[("enable.idempotence", "true"), ("retry.backoff.ms", "50")],
    )
}

/// Sends `values` to partition 0 of `topic` one after another; their offsets.
async fn send_all(producer: &FutureProducer, topic: &str, values: &[String]) -> Vec<i64> {
    let mut offsets = Vec::new();
    for v in values {
        let delivered = producer
            .send(
                FutureRecord::<(), _>::to(topic).partition(0).payload(v),
                Duration::from_secs(15),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("{v}: {e}"));
        offsets.push(delivered.offset);
    }
    offsets
}

fn values(prefix: &str, range: std::ops::Range<i32>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// A consumer of partition 0 of `topic`, from the beginning.
fn reader(cluster: &Cluster, topic: &str) -> BaseConsumer {
    let consumer = consumer(&cluster.bootstrap(), &[]);
    assign(&consumer, topic, &[0], Offset::Beginning);
    consumer
}

/// Reads `n` more records; their (offset, value). librdkafka reports a
/// connection a node dropped as a consumer error; the consumer goes on
/// after it, so such errors are passed over (any other fails the test).
async fn read(consumer: BaseConsumer, n: usize) -> (BaseConsumer, Vec<(i64, String)>) {
    blocking(move || {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < n {
            assert!(Instant::now() < deadline, "only {got:?} within {WAIT:?}");
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let r = Rec::from_message(&m);
                    got.push((r.offset, r.value_str().to_string()));
                }
                Some(Err(e)) => assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::BrokerTransportFailure)
                    ),
                    "consumer error: {e}"
                ),
                None => {}
            }
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(300)) {
            panic!("one record more than {n}: {:?}", Rec::from_message(&m));
        }
        (consumer, got)
    })
    .await
}

fn numbered(values: &[String], from: i64) -> Vec<(i64, String)> {
    (from..).zip(values.iter().cloned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotent_producer_survives_two_not_leader_answers_and_a_disconnect() {
    let cluster = Cluster::start(3).await.expect("cluster");
    cluster.create_topic("retries", 1).await.expect("topic");
    let producer = idempotent(&cluster);
    send_all(&producer, "retries", &values("warm-up", 0..1)).await;
    let before = cluster.request_count(ApiKey::Produce);
    cluster.inject(
        ApiKey::Produce,
        Fault::error(ResponseError::NotLeaderOrFollower).times(2),
    );
    cluster.inject(ApiKey::Produce, Fault::disconnect());
    let sent = values("m", 0..10);
    let offsets = send_all(&producer, "retries", &sent).await;
    assert_eq!(offsets, (1..=10).collect::<Vec<i64>>());
    assert!(
        cluster.request_count(ApiKey::Produce) >= before + 3 + 10,
        "the refused and dropped requests were retried"
    );
    let (_, got) = read(reader(&cluster, "retries"), 11).await;
    let mut expected = numbered(&values("warm-up", 0..1), 0);
    expected.extend(numbered(&sent, 1));
    assert_eq!(got, expected, "every message once, in order");
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn producer_and_consumer_carry_on_when_the_leader_goes_down_and_comes_back() {
    let cluster = Cluster::start(3).await.expect("cluster");
    cluster.create_topic("failover", 3).await.expect("topic");
    let leaders: Vec<i32> = (0..3)
        .map(|p| cluster.leader("failover", p).expect("leader"))
        .collect();
    assert_eq!(leaders, [1, 2, 3], "spread round-robin");
    let producer = idempotent(&cluster);
    let first = values("before", 0..5);
    send_all(&producer, "failover", &first).await;
    let (consumer, got) = read(reader(&cluster, "failover"), 5).await;
    assert_eq!(got, numbered(&first, 0));

    let old = cluster.leader("failover", 0).expect("leader");
    cluster.broker_down(old).await.expect("down");
    let new = cluster.leader("failover", 0).expect("leader");
    assert_ne!(new, old);
    assert!(
        !cluster.nodes().contains_key(&old),
        "a down node is not listed"
    );
    let second = values("after", 0..5);
    send_all(&producer, "failover", &second).await;
    let (_, got) = read(consumer, 5).await;
    assert_eq!(got, numbered(&second, 5), "nothing lost, nothing twice");

    cluster.broker_up(old).await.expect("up");
    assert!(cluster.nodes().contains_key(&old));
    cluster
        .set_leader("failover", 0, old)
        .await
        .expect("move back");
    let third = values("back", 0..3);
    send_all(&producer, "failover", &third).await;
    assert_eq!(
        read_values(&cluster.bootstrap(), "failover", "read_uncommitted", 13)[10..],
        numbered(&third, 10)[..]
    );
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_group_follows_its_coordinator_and_a_moved_leader() {
    let cluster = Cluster::start(3).await.expect("cluster");
    cluster.create_topic("grouped", 1).await.expect("topic");
    let producer = idempotent(&cluster);
    let first = values("g", 0..4);
    send_all(&producer, "grouped", &first).await;
    let group = consumer(
        &cluster.bootstrap(),
        &[
            ("group.id", "cluster-readers"),
            ("enable.auto.commit", "true"),
        ],
    );
    group.subscribe(&["grouped"]).expect("subscribe");
    let (group, got) = blocking(move || {
        let got: Vec<String> = consume_exactly(&group, 4, WAIT)
            .iter()
            .map(|r| r.value_str().to_string())
            .collect();
        (group, got)
    })
    .await;
    assert_eq!(got, first);

    // Leadership moves under the running consumer: it follows.
    let leader = cluster.leader("grouped", 0).expect("leader");
    let other = if leader == 1 { 2 } else { 1 };
    cluster.set_leader("grouped", 0, other).await.expect("move");
    let second = values("h", 0..4);
    send_all(&producer, "grouped", &second).await;
    let got = blocking(move || {
        consume_exactly(&group, 4, WAIT)
            .iter()
            .map(|r| r.value_str().to_string())
            .collect::<Vec<_>>()
    })
    .await;
    assert_eq!(got, second);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delay_fault_shows_as_latency() {
    let cluster = Cluster::start(2).await.expect("cluster");
    cluster.create_topic("slow", 1).await.expect("topic");
    let producer = idempotent(&cluster);
    send_all(&producer, "slow", &values("warm-up", 0..1)).await;
    cluster.inject(ApiKey::Produce, Fault::delay(Duration::from_millis(300)));
    let started = Instant::now();
    send_all(&producer, "slow", &values("late", 0..1)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the produce waited out the delay ({:?})",
        started.elapsed()
    );
    cluster.clear_faults();
    cluster.shutdown().await.expect("shutdown");
}

#[test]
fn the_cluster_is_send_and_works_on_a_current_thread_runtime() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cluster = Cluster::start(2).await.expect("cluster");
        send_sync(&cluster);
        // The cluster moves into a spawned task, and its futures are Send.
        let cluster = tokio::spawn(async move {
            cluster.create_topic("spawned", 2).await.expect("topic");
            cluster.broker_down(2).await.expect("down");
            cluster
        })
        .await
        .expect("task");
        assert_eq!(cluster.leader("spawned", 1).expect("leader"), 1);
        let producer = idempotent(&cluster);
        let offsets = send_all(&producer, "spawned", &values("ct", 0..3)).await;
        assert_eq!(offsets, [0, 1, 2]);
        cluster.shutdown().await.expect("shutdown");
    });
}

/// The value of `key=` in the binary's "sluice is ready" line.
fn ready_field(broker: &BrokerProcess, key: &str) -> String {
    let output = broker.output();
    let line = output
        .lines()
        .find(|l| l.contains("sluice is ready"))
        .expect("a ready line");
    let rest = &line[line.find(&format!("{key}=")).expect(key) + key.len() + 1..];
    rest.chars().take_while(|c| !c.is_whitespace()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_kafka_survives_faults_injected_over_http_into_sluice_brokers_3() {
    let Some(python) = tools::confluent_kafka(file!()) else {
        return;
    };
    let (_dir, data) = scratch_dir();
    let broker = BrokerProcess::start(&data, &["--brokers", "3", "--http", "127.0.0.1:0"]);
    let nodes = ready_field(&broker, "nodes");
    assert_eq!(nodes.split(',').count(), 3, "{nodes}");
    let http = ready_field(&broker, "http");
    let script = format!("{}/tests/python/cluster.py", env!("CARGO_MANIFEST_DIR"));
    let child = python
        .command()
        .args([script.as_str(), &nodes, &http, "py-cluster"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let output =
        blocking(move || wait_with_timeout(child, WAIT * 2, "tests/python/cluster.py")).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("cluster: all checks passed"),
        "cluster.py failed ({})\nstdout:\n{stdout}\nstderr:\n{}\nbroker:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        broker.output()
    );
    broker.terminate();
}

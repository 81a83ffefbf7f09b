//! Shared helpers for the integration tests, by what they provide:
//! [`broker`], an in-process broker on a runtime of its own (so tests may
//! call blocking client APIs, consumer polls and watermarks, directly from
//! their async body); [`clients`], rdkafka clients with short timeouts and
//! produce / consume helpers that fail with a clear message instead of
//! hanging; [`process`], kcat and the broker binary as a process; [`raw`],
//! requests encoded by hand; [`tools`], external tools (kcat, kafka-python,
//! root) found or provisioned. Here: topic names, waits and the runtime glue.
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

mod broker;
mod clients;
pub(crate) mod http;
mod process;
pub(crate) mod raw;
pub(crate) mod rng;
pub(crate) mod tools;

// Each test binary uses some of them, so some re-exports go unused in each.
#[allow(unused_imports)]
pub(crate) use {broker::*, clients::*, process::*};

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sluice::storage::{Disk, RealDisk};
use sluice::{Broker, Config};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// How long any single helper may wait before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Sends test-run tracing output to the test harness (captured unless a test fails).
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sluice=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// A topic name no other test uses: `<prefix>-<pid>-<n>`.
pub(crate) fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a future to completion on a fresh current-thread runtime (for sync code).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Groups records by partition, keeping their order.
pub(crate) fn by_partition(records: &[Rec]) -> BTreeMap<i32, Vec<Rec>> {
    let mut map: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    for r in records {
        map.entry(r.partition).or_default().push(r.clone());
    }
    map
}

/// A scratch directory that outlives a broker process.
pub(crate) fn scratch_dir() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Produces three records with rdkafka and reads them back at their offsets.
/// Transient connection errors are tolerated: these brokers close connections on purpose.
pub(crate) async fn a_real_client_still_works(bootstrap: &str) {
    let topic = unique_topic("still-works");
    create_topic(bootstrap, &topic, 1, &[]).await;
    let offsets = produce_n(&producer(bootstrap, &[]), &topic, 0, 3).await;
    assert_eq!(offsets, vec![0, 1, 2]);
    let (bootstrap, topic) = (bootstrap.to_string(), topic.clone());
    let offsets = blocking(move || {
        let consumer = consumer(&bootstrap, &[]);
        assign(&consumer, &topic, &[0], Offset::Beginning);
        let deadline = Instant::now() + WAIT;
        let mut offsets = Vec::new();
        while offsets.len() < 3 && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                offsets.push(Message::offset(&m));
            }
        }
        offsets
    })
    .await;
    assert_eq!(offsets, vec![0, 1, 2]);
}

/// Every record of partition 0 of `topic`, read from the beginning until the
/// consumer reports the partition's end (at most [`WAIT`]).
pub(crate) fn read_partition_to_end(bootstrap: &str, topic: &str) -> Vec<Rec> {
    let consumer = consumer(bootstrap, &[("enable.partition.eof", "true")]);
    assign(&consumer, topic, &[0], Offset::Beginning);
    let deadline = Instant::now() + WAIT;
    let mut records = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {topic} did not reach its end"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => records.push(Rec::from_message(&m)),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return records,
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
}

/// Produces `values` to partition 0 of `topic`, then has a member of
/// `group` consume them all and commit offset `commit_at`; returns the
/// member, still in the group.
pub(crate) async fn produce_and_commit(
    bootstrap: &str,
    (topic, group): (&str, &str),
    values: usize,
    commit_at: i64,
) -> BaseConsumer {
    let producer = producer(bootstrap, &[]);
    for i in 0..values {
        let value = format!("v{i}");
        let record = FutureRecord::<str, str>::to(topic)
            .partition(0)
            .payload(&value);
        await_delivery(send_or_wait(&producer, record))
            .await
            .expect("produce");
    }
    let (b, t, g) = (bootstrap.to_string(), topic.to_string(), group.to_string());
    blocking(move || {
        let consumer: BaseConsumer = consumer_config(&b)
            .set("group.id", &g)
            .create()
            .expect("consumer");
        consumer.subscribe(&[&t]).expect("subscribe");
        assert_eq!(consume_at_least(&consumer, values, WAIT).len(), values);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&t, 0, Offset::Offset(commit_at))
            .expect("offset");
        consumer
            .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        consumer
    })
    .await
}

/// (offset, value) of exactly `n` records of partition 0 of `topic`, read
/// from the beginning with `isolation` (`read_committed` or `read_uncommitted`).
pub(crate) fn read_values(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    n: usize,
) -> Vec<(i64, String)> {
    let consumer = consumer(bootstrap, &[("isolation.level", isolation)]);
    assign(&consumer, topic, &[0], Offset::Beginning);
    consume_exactly(&consumer, n, WAIT)
        .iter()
        .map(|r| (r.offset, r.value_str().to_string()))
        .collect()
}

/// Fails the test with `what` unless `check` turns true within `within`.
pub(crate) fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every (partition, offset) of `partitions` partitions holding `per_partition` records each.
pub(crate) fn all_offsets(
    partitions: i32,
    per_partition: i64,
) -> std::collections::BTreeSet<(i32, i64)> {
    (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

/// A PLAINTEXT and a SASL_PLAINTEXT listener (both on free ports), with
/// `users` who log in with the password `<name>-secret`.
pub(crate) fn sasl_listener(config: &mut Config, users: &[&str]) {
    config.listeners = vec![
        "PLAINTEXT://127.0.0.1:0".into(),
        "SASL_PLAINTEXT://127.0.0.1:0".into(),
    ];
    config.sasl.users = users
        .iter()
        .map(|name| sluice::security::SaslUser {
            name: name.to_string(),
            password: format!("{name}-secret"),
        })
        .collect();
}

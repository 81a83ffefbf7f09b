//! Compacted topics through rdkafka: updates and tombstones leave the
//! latest value of each key at its offset, tombstones go after
//! `delete.retention.ms`, a topic switched from delete to compact is
//! cleaned without a restart, keyless records are refused, a consumer
//! group resumes past offsets that were cleaned away, and a restore (read
//! from the beginning) after a restart reads the same state.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{AlterConfig, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn read_topic(bootstrap: &str, topic: &str) -> Vec<Rec> {
    read_partition_to_end(bootstrap, topic)
}

/// Reads `topic` until `done` holds for what it reads; fails after [`WAIT`].
fn read_until(bootstrap: &str, topic: &str, what: &str, done: impl Fn(&[Rec]) -> bool) -> Vec<Rec> {
    let deadline = Instant::now() + WAIT;
    loop {
        let records = read_topic(bootstrap, topic);
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {WAIT:?}; last read {records:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends one record and returns its offset.
async fn send(producer: &FutureProducer, topic: &str, key: &str, value: Option<&str>) -> i64 {
    let mut record = FutureRecord::<str, str>::to(topic).key(key).partition(0);
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("produce")
        .offset
}

/// Sends `rounds` rounds of values `v<round>` for keys `k0..k<keys>`.
async fn updates(producer: &FutureProducer, topic: &str, rounds: usize, keys: usize) {
    for round in 0..rounds {
        for key in 0..keys {
            let value = format!("v{round}");
            send(producer, topic, &format!("k{key}"), Some(&value)).await;
        }
    }
}

/// Sends `n` records with keys of their own, so that everything before them
/// is in sealed segments (the active segment is never cleaned).
async fn tail(producer: &FutureProducer, topic: &str, n: usize) -> i64 {
    let first = send(producer, topic, "tail-0", Some("t")).await;
    for i in 1..n {
        send(producer, topic, &format!("tail-{i}"), Some("t")).await;
    }
    first
}

/// The latest record of each key among `records`: (offset, key, value).
fn latest(records: &[Rec]) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    let mut by_key: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    for r in records {
        by_key.insert(r.key.clone().expect("keyed"), (r.offset, r.value.clone()));
    }
    let mut out: Vec<_> = by_key.into_iter().map(|(k, (o, v))| (o, k, v)).collect();
    out.sort();
    out
}

fn rows(records: &[Rec], below: i64) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    records
        .iter()
        .filter(|r| r.offset < below)
        .map(|r| (r.offset, r.key.clone().expect("keyed"), r.value.clone()))
        .collect()
}

async fn set_configs(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (k, v) in configs {
        change = change.set(k, v);
    }
    admin(bootstrap)
        .alter_configs([&change], &admin_opts())
        .await
        .expect("AlterConfigs request");
}

const SMALL_SEGMENTS: &[(&str, &str)] = &[
    ("segment.bytes", "1024"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("delete.retention.ms", "0"),
];

fn fast_cleaner(config: &mut sluice::Config) {
    config.log_cleaner_backoff_ms = 50;
}

#[tokio::test]
async fn a_topic_switched_to_compact_keeps_the_latest_value_of_each_key_and_drops_tombstones() {
    let mut broker = start_broker_with(fast_cleaner).await;
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("compacted");
    let mut delete = SMALL_SEGMENTS.to_vec();
    delete.push(("cleanup.policy", "delete"));
    create_topic(&bootstrap, &topic, 1, &delete).await;
    let producer = producer(&bootstrap, &[]);
    updates(&producer, &topic, 20, 8).await;
    for key in 0..3 {
        send(&producer, &topic, &format!("k{key}"), None).await;
    }
    let tail_start = tail(&producer, &topic, 30).await;
    let written = read_topic(&bootstrap, &topic);
    assert_eq!(
        written.len() as i64,
        tail_start + 30,
        "delete policy: nothing cleaned"
    );
    let expected = latest(&written[..tail_start as usize]);
    assert_eq!(expected.iter().filter(|r| r.2.is_none()).count(), 3);

    // Switched to compact: cleaned without a restart. The tombstones stay
    // through the cleaning that first keeps them.
    let mut compact = SMALL_SEGMENTS.to_vec();
    compact.push(("cleanup.policy", "compact"));
    set_configs(&bootstrap, &topic, &compact).await;
    let cleaned = read_until(
        &bootstrap,
        &topic,
        "the latest record of each key",
        |records| rows(records, tail_start) == expected,
    );
    assert_eq!(
        rows(&cleaned[cleaned.len() - 30..], i64::MAX),
        rows(&written[written.len() - 30..], i64::MAX)
    );

    // More writes make the partition dirty again; the next cleaning drops
    // the tombstones, delete.retention.ms (0) after the first.
    let second_tail = tail(&producer, &topic, 30).await;
    let live: Vec<_> = expected.iter().filter(|r| r.2.is_some()).cloned().collect();
    read_until(&bootstrap, &topic, "the tombstones removed", |records| {
        rows(records, tail_start) == live
    });

    // A restore after a restart reads the same state.
    broker.restart().await;
    let bootstrap = broker.bootstrap();
    let restored = read_topic(&bootstrap, &topic);
    assert_eq!(rows(&restored, tail_start), live);
    assert_eq!(restored.last().map(|r| r.offset), Some(second_tail + 29));
}

#[tokio::test]
async fn a_record_without_a_key_is_refused_and_nothing_of_it_is_stored() {
    let broker = start_broker_with(fast_cleaner).await;
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("keyless");
    create_topic(&bootstrap, &topic, 1, &[("cleanup.policy", "compact")]).await;
    let producer = producer(&bootstrap, &[("retries", "0")]);
    send(&producer, &topic, "k", Some("v")).await;
    let refused = producer
        .send(
            FutureRecord::<str, str>::to(&topic)
                .payload("no key")
                .partition(0),
            Duration::from_secs(10),
        )
        .await;
    match refused {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord), _)) => {}
        other => panic!("expected INVALID_RECORD, got {other:?}"),
    }
    let after = send(&producer, &topic, "k2", Some("v2")).await;
    assert_eq!(after, 1, "the refused record took no offset");
    let records = read_topic(&bootstrap, &topic);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.key.is_some()));
}

#[tokio::test]
async fn a_batch_with_keyless_records_is_refused_naming_them_and_the_others_as_failed_with_them() {
    let broker = start_broker().await;
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("keyless-batch");
    create_topic(&bootstrap, &topic, 1, &[("cleanup.policy", "compact")]).await;
    // One batch of ten, the records at 2 and 7 without a key.
    let producer = producer(&bootstrap, &[("retries", "0"), ("linger.ms", "200")]);
    let pending: Vec<_> = (0..10)
        .map(|i| {
            let key = format!("k{i}");
            let mut record = FutureRecord::<str, str>::to(&topic)
                .payload("v")
                .partition(0);
            if i != 2 && i != 7 {
                record = record.key(&key);
            }
            producer.send_result(record).expect("queued")
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in pending {
        outcomes.push(match delivery.await.expect("delivery report") {
            Ok(_) => None,
            Err((KafkaError::MessageProduction(code), _)) => Some(code),
            Err((other, _)) => panic!("unexpected {other:?}"),
        });
    }
    // KIP-467: the keyless records fail with INVALID_RECORD, the rest of
    // their batch with librdkafka's "a different record was invalid".
    let expected: Vec<_> = (0..10)
        .map(|i| match i {
            2 | 7 => Some(RDKafkaErrorCode::InvalidRecord),
            _ => Some(RDKafkaErrorCode::InvalidDifferentRecord),
        })
        .collect();
    assert_eq!(outcomes, expected);
    let consumer = consumer(&bootstrap, &[]);
    assert_eq!(watermarks(&consumer, &topic, 0), (0, 0), "nothing stored");
}

#[tokio::test]
async fn a_consumer_group_resumes_past_offsets_that_were_cleaned_away() {
    let broker = start_broker_with(fast_cleaner).await;
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("compacted-group");
    let mut configs = SMALL_SEGMENTS.to_vec();
    configs.push(("cleanup.policy", "compact"));
    create_topic(&bootstrap, &topic, 1, &configs).await;
    let producer = producer(&bootstrap, &[]);
    updates(&producer, &topic, 10, 5).await;
    let tail_start = tail(&producer, &topic, 30).await;
    let cleaned = read_until(&bootstrap, &topic, "one record per key", |records| {
        rows(records, tail_start).len() == 5
    });
    // Offset 10 held k0's third value, cleaned away; the group resumes there.
    assert!(!cleaned.iter().any(|r| r.offset == 10));
    let group = unique_topic("group");
    let committer = consumer(&bootstrap, &[("group.id", &group)]);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(10))
        .unwrap();
    committer
        .commit(&offsets, CommitMode::Sync)
        .expect("commit");
    drop(committer);
    let member: BaseConsumer = consumer(&bootstrap, &[("group.id", &group)]);
    member.subscribe(&[&topic]).expect("subscribe");
    let first = consume_at_least(&member, 1, WAIT).remove(0);
    let next_kept = cleaned
        .iter()
        .find(|r| r.offset >= 10)
        .expect("a kept record");
    assert_eq!(
        (first.offset, &first.key, &first.value),
        (next_kept.offset, &next_kept.key, &next_kept.value)
    );
}

#[tokio::test]
async fn the_offsets_log_is_compacted_and_a_group_resumes_after_a_restart() {
    let mut broker = start_broker_with(|c| {
        fast_cleaner(c);
        c.group.offsets_segment_bytes = 4096;
    })
    .await;
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("offsets-compaction");
    create_topic(&bootstrap, &topic, 1, &[]).await;
    let group = unique_topic("group");
    let committer = consumer(&bootstrap, &[("group.id", &group)]);
    for offset in 1..=400 {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&topic, 0, Offset::Offset(offset))
            .unwrap();
        committer
            .commit(&offsets, CommitMode::Sync)
            .expect("commit");
    }
    drop(committer);
    let offsets_dir = broker.data_dir().join("__consumer_offsets-0");
    let log_bytes = || -> u64 {
        std::fs::read_dir(&offsets_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    };
    // 400 commits of about 100 bytes each; cleaned, the sealed segments hold one.
    let deadline = Instant::now() + WAIT;
    while log_bytes() > 3 * 4096 {
        assert!(
            Instant::now() < deadline,
            "the offsets log holds {} bytes",
            log_bytes()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    broker.restart().await;
    let bootstrap = broker.bootstrap();
    let reader = consumer(&bootstrap, &[("group.id", &group)]);
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(&topic, 0);
    let committed = reader
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("OffsetFetch");
    assert_eq!(
        committed.find_partition(&topic, 0).map(|p| p.offset()),
        Some(Offset::Offset(400))
    );
}

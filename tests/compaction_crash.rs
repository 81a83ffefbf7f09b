//! Compaction across crashes of the broker binary: an idempotent producer
//! writes keyed updates and tombstones to a compacted topic with small
//! segments while the cleaner runs every 20 ms, and the broker is SIGKILLed
//! at random moments (so, sooner or later, in the middle of a cleaning),
//! several times. After a clean restart the topic is read from the
//! beginning and checked against what the producer was told:
//!
//! 1. every record read was sent, with that key and value, and an
//!    acknowledged one is at its acknowledged offset; offsets increase;
//! 2. the latest acknowledged record of each key is there, or a later one
//!    of that key; an older value never outlives a tombstone the cleaner
//!    dropped;
//! 3. after more writes, the cleaner still runs: below them, one record per key.
//!
//! `COMPACTION_CRASH_SEED=<n>` replays a schedule.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};

const CRASHES: usize = 6;
const KEYS: u64 = 16;
const TOPIC: &str = "changelog";
const CONFIG: &str = r#"
log_cleaner_backoff_ms = 20
[log]
cleanup_policy = "compact"
segment_bytes = 8192
min_cleanable_dirty_ratio = 0.01
"#;

/// One record the producer sent: key, value (`None`: tombstone) and the
/// offset it was acknowledged at (`None`: no answer before the crash).
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    value: Option<String>,
    offset: Option<i64>,
}

/// Sends records until `stop`, at most 64 unacknowledged, each recorded in `sent`.
async fn produce(
    bootstrap: String,
    incarnation: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Sent> {
    let producer: FutureProducer = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "1500"),
        ],
    );
    let mut rng = Rng(seed);
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("k{}", rng.between((0, KEYS - 1)));
        let value =
            (rng.between((0, 9)) > 0).then(|| format!("{incarnation}-{seq}-{}", "x".repeat(60)));
        seq += 1;
        let mut record = FutureRecord::<str, str>::to(TOPIC).key(&key).partition(0);
        if let Some(v) = &value {
            record = record.payload(v);
        }
        match producer.send_result(record) {
            Ok(delivery) => {
                pending.push((sent.len(), delivery));
                sent.push(Sent {
                    key,
                    value,
                    offset: None,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        if pending.len() >= 64 {
            for (i, delivery) in pending.drain(..) {
                if let Ok((_, offset)) = await_delivery(delivery).await {
                    sent[i].offset = Some(offset);
                }
            }
        }
    }
    for (i, delivery) in pending {
        if let Ok((_, offset)) = await_delivery(delivery).await {
            sent[i].offset = Some(offset);
        }
    }
    sent
}

fn read_all(bootstrap: &str) -> Vec<Rec> {
    read_partition_to_end(bootstrap, TOPIC)
}

fn check(records: &[Rec], sent: &[Sent]) {
    let key = |r: &Rec| String::from_utf8(r.key.clone().expect("keyed")).unwrap();
    let value = |r: &Rec| {
        r.value
            .as_ref()
            .map(|v| String::from_utf8(v.clone()).unwrap())
    };
    let by_value: HashMap<&str, &Sent> = sent
        .iter()
        .filter_map(|s| Some((s.value.as_deref()?, s)))
        .collect();
    let acked: HashMap<i64, &Sent> = sent.iter().filter_map(|s| Some((s.offset?, s))).collect();
    let mut last = -1;
    for r in records {
        assert!(
            r.offset > last,
            "offsets go back: {} after {last}",
            r.offset
        );
        last = r.offset;
        let (k, v) = (key(r), value(r));
        match acked.get(&r.offset) {
            Some(s) => assert_eq!(
                (&s.key, &s.value),
                (&k, &v),
                "offset {} holds another record",
                r.offset
            ),
            None => match &v {
                Some(v) => {
                    let s = by_value
                        .get(v.as_str())
                        .unwrap_or_else(|| panic!("{v} was never sent"));
                    assert!(
                        s.offset.is_none() && s.key == k,
                        "{v} at {} was sent otherwise: {s:?}",
                        r.offset
                    );
                }
                None => assert!(
                    sent.iter()
                        .any(|s| s.offset.is_none() && s.value.is_none() && s.key == k),
                    "a tombstone of {k} at {} was never sent unacknowledged",
                    r.offset
                ),
            },
        }
    }
    let mut latest: BTreeMap<&str, (i64, &Sent)> = BTreeMap::new();
    for s in sent {
        if let Some(o) = s.offset
            && latest.get(s.key.as_str()).is_none_or(|(l, _)| o > *l)
        {
            latest.insert(&s.key, (o, s));
        }
    }
    for (k, (offset, s)) in latest {
        let of_key: Vec<&Rec> = records.iter().filter(|r| key(r) == k).collect();
        let kept = of_key.iter().any(|r| r.offset >= offset);
        if s.value.is_some() {
            assert!(kept, "the latest value of {k} (offset {offset}) is lost");
        } else if !kept {
            assert!(
                of_key.is_empty(),
                "{k} was deleted at {offset} but older values remain: {of_key:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_survives_sigkill_at_random_moments() {
    let seed = common::rng::seed("COMPACTION_CRASH_SEED");
    eprintln!("compaction-crash seed {seed} (COMPACTION_CRASH_SEED={seed} replays this schedule)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = dir.path().join("data");
    let extra = ["--config", config.to_str().unwrap()];
    let mut sent = Vec::new();
    let (mut cleaned_files, mut swaps_completed) = (0, 0);
    for incarnation in 0..CRASHES {
        let broker = BrokerProcess::start(&data, &extra);
        swaps_completed += broker
            .output()
            .matches("completing an interrupted cleaning")
            .count();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(produce(
            broker.bootstrap.clone(),
            incarnation,
            rng.next(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(rng.between((200, 1200)))).await;
        broker.crash();
        cleaned_files += std::fs::read_dir(data.join(format!("{TOPIC}-0")))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".cleaned"))
                    .count()
            })
            .unwrap_or(0);
        stop.store(true, Ordering::Relaxed);
        sent.extend(writer.await.expect("producer task"));
    }
    let acked = sent.iter().filter(|s| s.offset.is_some()).count();
    assert!(
        acked > 500,
        "too little was written to test anything: {acked}"
    );
    let broker = BrokerProcess::start(&data, &extra);
    swaps_completed += broker
        .output()
        .matches("completing an interrupted cleaning")
        .count();
    let records = read_all(&broker.bootstrap);
    eprintln!(
        "{} sent, {acked} acknowledged, {} read after {CRASHES} crashes; killed with {cleaned_files} .cleaned files, {swaps_completed} swaps completed at start",
        sent.len(),
        records.len()
    );
    check(&records, &sent);

    // The cleaner still works: after a tail of other keys, one record per key below it.
    let producer = producer(&broker.bootstrap, &[]);
    let mut tail_start = i64::MAX;
    for i in 0..60 {
        let key = format!("tail-{i}");
        let record = FutureRecord::<str, str>::to(TOPIC)
            .key(&key)
            .payload("t")
            .partition(0);
        let (_, offset) = await_delivery(producer.send_result(record).expect("enqueue"))
            .await
            .expect("tail");
        tail_start = tail_start.min(offset);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let records = read_all(&broker.bootstrap);
        let below: Vec<&Rec> = records.iter().filter(|r| r.offset < tail_start).collect();
        let mut keys: Vec<&Vec<u8>> = below.iter().map(|r| r.key.as_ref().unwrap()).collect();
        keys.sort();
        keys.dedup();
        if keys.len() == below.len() {
            let below: Vec<Rec> = records
                .into_iter()
                .filter(|r| r.offset < tail_start)
                .collect();
            check(&below, &sent);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not cleaned within {WAIT:?}: {} records for {} keys",
            below.len(),
            keys.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.terminate();
}

//! Crash consistency of the binary with the default flush setting: rdkafka
//! producers (acks=all) write at full speed to two partitions while the broker
//! is SIGKILLed at a random moment, several rounds on the same data directory.
//! Afterwards every acknowledged record is there exactly once, at the offset it
//! was acknowledged with, and each partition's offsets are dense.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use rdkafka::Offset;
use rdkafka::producer::FutureRecord;

const ROUNDS: usize = 3;
const PRODUCERS: usize = 2;
/// Each producer sends up to CHUNKS x CHUNK records, until the broker dies.
const CHUNK: usize = 5_000;
const CHUNKS: usize = 200;

type Acked = Arc<Mutex<BTreeMap<(i32, i64), String>>>;

/// A kill delay in 50..550 ms that differs from run to run.
fn random_delay(round: usize) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let x = (nanos ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(2_862_933_555_777_941_757);
    Duration::from_millis(50 + (x >> 33) % 500)
}

fn produce_until_killed(bootstrap: String, topic: String, round: usize, id: usize, acked: Acked) {
    block_on(async move {
        let producer = producer(
            &bootstrap,
            &[
                ("acks", "all"),
                ("linger.ms", "2"),
                ("message.timeout.ms", "5000"),
                ("retries", "0"),
            ],
        );
        // Chunks of sends until one fails: the broker is gone.
        for chunk in 0..CHUNKS {
            let values: Vec<String> = (0..CHUNK)
                .map(|i| format!("r{round}-p{id}-{}", chunk * CHUNK + i))
                .collect();
            let pending: Vec<_> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let record = FutureRecord::<(), str>::to(&topic)
                        .partition((i % 2) as i32)
                        .payload(v);
                    (v.clone(), send_or_wait(&producer, record))
                })
                .collect();
            let mut failed = false;
            for (value, p) in pending {
                match await_delivery(p).await {
                    Ok(position) => {
                        acked.lock().expect("lock").insert(position, value);
                    }
                    Err(_) => failed = true,
                }
            }
            if failed {
                return;
            }
        }
    });
}

#[test]
fn every_acknowledged_record_survives_repeated_sigkill() {
    let (_dir, data) = scratch_dir();
    let config = data.join("sluice.toml");
    // Small segments, so kills also land around rolls.
    std::fs::write(&config, "[log]\nsegment_bytes = 262144\n").expect("config file");
    let config = config.to_str().expect("utf-8 path").to_string();
    let topic = unique_topic("sigkill-rounds");
    let acked: Acked = Arc::default();
    for round in 0..ROUNDS {
        let broker = BrokerProcess::start(&data, &["--config", &config]);
        if round == 0 {
            block_on(create_topic(&broker.bootstrap, &topic, 2, &[]));
        }
        let before = acked.lock().expect("lock").len();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|id| {
                let (b, t, a) = (broker.bootstrap.clone(), topic.clone(), acked.clone());
                std::thread::spawn(move || produce_until_killed(b, t, round, id, a))
            })
            .collect();
        // Wait for the first acknowledgements of this round, then kill at a random moment.
        let deadline = Instant::now() + WAIT;
        while acked.lock().expect("lock").len() == before {
            assert!(
                Instant::now() < deadline,
                "round {round}: nothing acknowledged"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(random_delay(round));
        broker.crash();
        for p in producers {
            p.join().expect("producer thread");
        }
        let now = acked.lock().expect("lock").len();
        eprintln!(
            "round {round}: SIGKILL after {} acknowledgements this round",
            now - before
        );
    }

    let broker = BrokerProcess::start(&data, &["--config", &config]);
    let consumer = consumer(&broker.bootstrap, &[]);
    let mut stored: HashMap<(i32, i64), String> = HashMap::new();
    for partition in 0..2 {
        let (low, high) = watermarks(&consumer, &topic, partition);
        assert_eq!(low, 0);
        let c = consumer_for(&broker.bootstrap, &topic, partition);
        let records = consume_exactly(&c, high as usize, Duration::from_secs(60));
        for (i, r) in records.iter().enumerate() {
            assert_eq!(
                r.offset, i as i64,
                "partition {partition}: offsets must be dense"
            );
            stored.insert((partition, r.offset), r.value_str().to_string());
        }
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let lost: Vec<_> = acked
        .iter()
        .filter(|(k, v)| stored.get(k) != Some(v))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged records missing or changed: {lost:?}"
    );
    let mut seen = HashMap::new();
    for value in stored.values() {
        *seen.entry(value.as_str()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "records stored more than once: {twice:?}");
    eprintln!(
        "{} acknowledged records over {ROUNDS} kills, {} stored",
        acked.len(),
        stored.len()
    );
    broker.terminate();
}

fn consumer_for(bootstrap: &str, topic: &str, partition: i32) -> rdkafka::consumer::BaseConsumer {
    let c = consumer(bootstrap, &[]);
    assign(&c, topic, &[partition], Offset::Beginning);
    c
}

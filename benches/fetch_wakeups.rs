//! What an append costs while other fetches are parked: one round is a fetch
//! parked on partition 0, a produce of one record to it, and the fetch's
//! answer, with `parked` more fetches waiting on partitions 1..=parked of the
//! same topic. The `cpu` group reports the process's CPU time (user + system,
//! broker and client) per round, the `wall` group the elapsed time; both
//! should stay flat as `parked` grows, because an append wakes only the
//! fetches of its own partition.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kafka_protocol::messages::FetchRequest;
use sluice::{Broker, Config};

#[path = "../tests/common/raw.rs"]
#[allow(dead_code, unreachable_pub)]
mod raw;

use raw::{Raw, batch, fetch_request, produce, record};

const FETCH_VERSION: i16 = 12;
const TOPIC: &str = "wakeups";

fn fetch(partition: i32, offset: i64) -> FetchRequest {
    fetch_request(TOPIC, &[partition], offset, 300_000)
}

/// CPU time (user + system) of this process so far.
#[allow(unsafe_code)]
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain integers, for which all-zero bytes are valid;
    // getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the call's duration.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A broker with a topic of `parked + 1` partitions and `parked` fetches
/// waiting on partitions 1..=parked.
struct Setup {
    broker: Broker,
    _dir: tempfile::TempDir,
    _parked: Vec<Raw>,
    producer: Raw,
    consumer: Raw,
    next: i64,
}

async fn setup(parked: i32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        max_connections: 10_000,
        max_connections_per_ip: 10_000,
        ..Config::default()
    })
    .await
    .unwrap();
    broker
        .catalog()
        .create_topic(TOPIC, parked + 1, BTreeMap::new(), false)
        .unwrap();
    let mut waiting = Vec::new();
    for partition in 1..=parked {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        let (_, payload) = raw.encode(FETCH_VERSION, &fetch(partition, 0));
        raw.send_frame(&payload).await;
        waiting.push(raw);
    }
    Setup {
        producer: Raw::connect(&broker.bootstrap()).await,
        consumer: Raw::connect(&broker.bootstrap()).await,
        broker,
        _dir: dir,
        _parked: waiting,
        next: 0,
    }
}

impl Setup {
    /// Parks a fetch on partition 0, produces one record, reads the answer.
    async fn round(&mut self) {
        let (correlation_id, payload) = self.consumer.encode(FETCH_VERSION, &fetch(0, self.next));
        self.consumer.send_frame(&payload).await;
        let records = batch(&[record(0, 1_700_000_000_000, Some("k"), Some("v"))]);
        let (error, offset) = produce(&mut self.producer, 9, TOPIC, 0, records).await;
        assert_eq!((error, offset), (0, self.next));
        let response = self
            .consumer
            .receive::<FetchRequest>(FETCH_VERSION, correlation_id)
            .await;
        black_box(response);
        self.next += 1;
    }
}

fn rounds(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (group_name, measure_cpu) in [("cpu", true), ("wall", false)] {
        let mut group = c.benchmark_group(format!("fetch_wakeup_round/{group_name}"));
        group
            .measurement_time(Duration::from_secs(4))
            .sample_size(20);
        for parked in [0, 200, 1000] {
            let mut setup = runtime.block_on(setup(parked));
            group.bench_with_input(BenchmarkId::new("parked", parked), &parked, |b, _| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let (cpu, wall) = (cpu_time(), Instant::now());
                        for _ in 0..iters {
                            setup.round().await;
                        }
                        if measure_cpu {
                            cpu_time() - cpu
                        } else {
                            wall.elapsed()
                        }
                    })
                });
            });
            runtime.block_on(setup.broker.shutdown()).unwrap();
        }
        group.finish();
    }
}

criterion_group!(benches, rounds);
criterion_main!(benches);

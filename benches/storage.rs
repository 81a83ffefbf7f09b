//! Storage benchmarks without the network: append and read throughput,
//! offset lookup, and opening a 1,000-segment log after a clean close.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::storage::testing::batch;
use sluice::storage::{Log, LogConfig, RecordBatch};

/// One batch of `records` records totalling about `bytes` bytes of values.
fn make_batch(bytes: usize, records: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|i| vec![i as u8; bytes / records])
        .collect();
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"key"[..], v.as_slice())).collect();
    batch(&records, 1_700_000_000_000)
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, bytes, records) in [("1KiB", 1024, 4), ("64KiB", 64 * 1024, 64)] {
        let template = make_batch(bytes, records);
        group.throughput(Throughput::Bytes(template.len() as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
                let buf = template.clone();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(log.append(&buf, 0).unwrap());
                }
                let elapsed = start.elapsed();
                log.delete().unwrap();
                elapsed
            });
        });
    }
    group.finish();
}

/// The check every produced batch gets (CRC-32C, then each record's length
/// walked): a 1 MB batch of 100-byte records, as librdkafka sends them.
fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    // Records of sizes 50..150 in no order, each unlike the one before.
    let values: Vec<Vec<u8>> = (0..10_000).map(|i| vec![7; 50 + (i * 37) % 100]).collect();
    let mixed: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b""[..], v.as_slice())).collect();
    let cases = [
        ("1MB_of_100B", make_batch(1_000_000, 10_000)),
        ("1MB_of_10KiB", make_batch(1_000_000, 97)),
        ("1MB_of_50_to_150B", batch(&mixed, 1_700_000_000_000)),
    ];
    for (name, buf) in cases {
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                RecordBatch::parse(black_box(&buf))
                    .unwrap()
                    .validate()
                    .unwrap()
            });
        });
    }
    group.finish();
}

fn filled_log(dir: &Path, batches: usize, batch_bytes: usize, segment_bytes: u64) -> Log {
    let config = LogConfig {
        segment_bytes,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir, config, 0).unwrap();
    let buf = make_batch(batch_bytes, 4);
    for _ in 0..batches {
        log.append(&buf, 0).unwrap();
    }
    log
}

fn read(c: &mut Criterion) {
    // The same ~70 MiB twice: in the active segment (read with pread) and in
    // sealed 8 MiB segments (mapped, handed out without a copy).
    for (name, segment_bytes) in [("active", 1 << 30), ("sealed", 8 << 20)] {
        let dir = tempfile::tempdir().unwrap();
        let log = filled_log(dir.path(), 64 * 1024, 1024, segment_bytes);
        read_log(c, name, &log);
    }
}

fn read_log(c: &mut Criterion, name: &str, log: &Log) {
    let mut group = c.benchmark_group("read");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    group.throughput(Throughput::Bytes(log.size_bytes()));
    group.bench_function(format!("whole_log_1MiB_fetches_{name}"), |b| {
        b.iter(|| {
            let mut offset = 0;
            while offset < log.end_offset() {
                let bytes = log.read(offset, 1 << 20).unwrap().read().unwrap();
                // The slice ends on a batch boundary: find the next offset from its last batch.
                let mut rest = &bytes[..];
                let mut next = offset;
                while let Ok(batch) = RecordBatch::parse(rest) {
                    next = batch.last_offset() + 1;
                    rest = &rest[batch.size()..];
                }
                offset = next;
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("lookup");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    let end = log.end_offset() as u64;
    group.bench_function(format!("read_position_of_random_offset_{name}"), |b| {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            black_box(log.read((x % end) as i64, 1).unwrap());
        });
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let buf = make_batch(64, 1);
    for _ in 0..1000 {
        log.append(&buf, 0).unwrap();
    }
    assert_eq!(log.segment_count(), 1000);
    log.close().unwrap();
    let mut group = c.benchmark_group("open");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    group.bench_function("1000_segments_after_clean_close", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let log = Log::open(dir.path(), config.clone(), 0).unwrap();
                total += start.elapsed();
                assert_eq!(log.segment_count(), 1000);
                log.close().unwrap();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, append, validate, read, open);
criterion_main!(benches);

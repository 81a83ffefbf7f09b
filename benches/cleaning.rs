//! Log cleaner throughput and memory, without the network.
//!
//! Writes a compacted log of `CLEAN_BENCH_MB` MiB (default 1024) of 1 KiB
//! values over 2^20 keys (so a 16 MiB dedupe buffer, about 700,000 keys,
//! needs two passes), then measures, each on a freshly opened log:
//!
//! - reading every byte of it through `Log::read` (the baseline);
//! - cleaning it (passes until nothing is left to clean) with a
//!   `CLEAN_BENCH_BUFFER_MB` (default 16) MiB dedupe buffer: MB/s of dirty
//!   log, the ratio to reading, and the process's peak resident memory
//!   while cleaning (VmRSS sampled every millisecond by another thread).
//!
//! `cargo bench --bench cleaning`

use std::time::Instant;

use sluice::storage::testing::keyed_batch;
use sluice::storage::{CleanupPolicy, Log, LogConfig, OffsetMap};

const T0: i64 = 1_700_000_000_000;
const KEYS: u64 = 1 << 20;
const VALUE_BYTES: usize = 1024;
const PER_BATCH: usize = 64;

fn env_mb(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 128 << 20,
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// `VmRSS` or `VmHWM` of this process, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let total = env_mb("CLEAN_BENCH_MB", 1024) << 20;
    let buffer = env_mb("CLEAN_BENCH_BUFFER_MB", 16) << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), T0).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let value = vec![b'v'; VALUE_BYTES];
    while log.size_bytes() < total {
        let keys: Vec<Vec<u8>> = (0..PER_BATCH)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("key-{:08}", state % KEYS).into_bytes()
            })
            .collect();
        let records: Vec<_> = keys
            .iter()
            .map(|k| (Some(k.as_slice()), Some(value.as_slice())))
            .collect();
        let batch = keyed_batch(&records, T0);
        log.append(&batch, T0).unwrap();
    }
    // A last batch in a segment of its own: everything before it is sealed.
    let last = keyed_batch(&[(Some(&b"last"[..]), Some(&b"v"[..]))], T0);
    log.set_config(LogConfig {
        segment_bytes: 1,
        ..config()
    });
    log.append(&last, T0).unwrap();
    let dirty = log.size_bytes();
    log.close().unwrap();

    let log = Log::open(dir.path(), config(), T0).unwrap();
    let started = Instant::now();
    let (mut offset, mut read) = (log.start_offset(), 0u64);
    while offset < log.end_offset() {
        let bytes = log.read(offset, 1 << 20).unwrap().read().unwrap();
        read += bytes.len() as u64;
        let mut rest = &bytes[..];
        while let Ok(batch) = sluice::storage::RecordBatch::parse(rest) {
            // What a consumer does with every batch: check its CRC.
            batch.validate().unwrap();
            offset = batch.last_offset() + 1;
            rest = &rest[batch.size()..];
        }
    }
    let read_secs = started.elapsed().as_secs_f64();
    log.close().unwrap();

    let mut log = Log::open(dir.path(), config(), T0).unwrap();
    let rss_before = status_mib("VmRSS:");
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0f64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_mib("VmRSS:"));
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            peak
        })
    };
    let started = Instant::now();
    let (mut first_dirty, mut passes) = (0, 0);
    while let Some(job) = log.clean_job(first_dirty, T0) {
        let mut map = OffsetMap::new(buffer as usize);
        let cleaned = job.run(&mut map, T0).unwrap();
        log.install_cleaned(&cleaned, T0).unwrap();
        first_dirty = cleaned.next_dirty;
        passes += 1;
    }
    let clean_secs = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "log: {:.0} MiB dirty, {} keys; after cleaning: {:.0} MiB in {} segments",
        mib(dirty),
        KEYS,
        mib(log.size_bytes()),
        log.segment_count()
    );
    println!(
        "read:  {:.0} MiB/s ({:.0} MiB)",
        mib(read) / read_secs,
        mib(read)
    );
    println!(
        "clean: {:.0} MiB/s of dirty log in {passes} passes with a {} MiB dedupe buffer; {:.2} of the read rate",
        mib(dirty) / clean_secs,
        buffer >> 20,
        (mib(dirty) / clean_secs) / (mib(read) / read_secs)
    );
    println!("peak RSS while cleaning: {peak:.1} MiB (RSS before: {rss_before:.1} MiB)");
    log.delete().unwrap();
}

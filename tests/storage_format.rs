//! The on-disk format is Kafka's: checked by reading the raw files back.

use std::path::Path;

use sluice::storage::testing::batch;
use sluice::storage::{Log, LogConfig, RecordBatch};

const SEGMENT_BYTES: u64 = 700;
const INTERVAL: u64 = 150;
const INDEX_BYTES: u32 = 100;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        index_interval_bytes: INTERVAL as u32,
        segment_index_bytes: INDEX_BYTES,
        ..LogConfig::default()
    }
}

/// What one segment should hold, computed with Kafka's rules.
#[derive(Debug, Default)]
struct Expected {
    base: i64,
    log: Vec<u8>,
    index: Vec<(u32, u32)>,
    timeindex: Vec<(i64, u32)>,
    since: u64,
    max: Option<(i64, i64)>,
}

impl Expected {
    fn add(&mut self, stored: &[u8]) {
        let b = RecordBatch::parse(stored).unwrap();
        if self.max.is_none_or(|(t, _)| b.max_timestamp() > t) {
            self.max = Some((b.max_timestamp(), b.last_offset()));
        }
        if self.since >= INTERVAL {
            self.index
                .push(((b.base_offset() - self.base) as u32, self.log.len() as u32));
            self.time_entry();
            self.since = 0;
        }
        self.since += stored.len() as u64;
        self.log.extend_from_slice(stored);
    }

    fn time_entry(&mut self) {
        if let Some((t, o)) = self.max
            && self.timeindex.last().is_none_or(|(last, _)| t > *last)
        {
            self.timeindex.push((t, (o - self.base) as u32));
        }
    }
}

fn read(dir: &Path, base: i64, ext: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("{base:020}.{ext}"))).unwrap()
}

fn index_entries(bytes: &[u8]) -> Vec<(u32, u32)> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            (
                u32::from_be_bytes(c[..4].try_into().unwrap()),
                u32::from_be_bytes(c[4..].try_into().unwrap()),
            )
        })
        .collect()
}

fn time_entries(bytes: &[u8]) -> Vec<(i64, u32)> {
    bytes
        .chunks_exact(12)
        .map(|c| {
            (
                i64::from_be_bytes(c[..8].try_into().unwrap()),
                u32::from_be_bytes(c[8..].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn segment_files_hold_kafka_format_logs_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), 0).unwrap();
    let mut segments: Vec<Expected> = vec![Expected::default()];
    let mut next = 0i64;
    for i in 0..60usize {
        let values: Vec<Vec<u8>> = (0..1 + i % 3)
            .map(|j| vec![j as u8; 10 + (i * 7) % 50])
            .collect();
        let records: Vec<(&[u8], &[u8])> =
            values.iter().map(|v| (&b"k"[..], v.as_slice())).collect();
        // Timestamps go up and down: the time index keeps only growing maxima.
        let mut b = batch(&records, 1_000 + ((i * 37) % 23) as i64);
        let info = log.append(&b, 0).unwrap();
        assert_eq!(info.base_offset, next);
        // Stored as sent but for the base offset and the leader epoch (0),
        // which the files below must show.
        b[..8].copy_from_slice(&next.to_be_bytes());
        b[12..16].copy_from_slice(&0i32.to_be_bytes());
        let current = segments.last_mut().unwrap();
        if !current.log.is_empty() && current.log.len() as u64 + b.len() as u64 > SEGMENT_BYTES {
            current.time_entry(); // sealing adds the final time entry
            segments.push(Expected {
                base: next,
                ..Expected::default()
            });
        }
        segments.last_mut().unwrap().add(&b);
        next = info.last_offset + 1;
    }
    assert_eq!(log.segment_count(), segments.len());
    let active = segments.last().unwrap().base;
    assert_eq!(
        read(dir.path(), active, "index").len(),
        96,
        "active index preallocated (rounded to entries)"
    );
    assert_eq!(read(dir.path(), active, "timeindex").len(), 96);
    log.close().unwrap();
    segments.last_mut().unwrap().time_entry();

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    let expected_names: Vec<String> = segments
        .iter()
        .map(|s| format!("{:020}.log", s.base))
        .collect();
    assert_eq!(names, expected_names);
    for s in &segments {
        assert_eq!(read(dir.path(), s.base, "log"), s.log, "segment {}", s.base);
        let index = read(dir.path(), s.base, "index");
        assert_eq!(index.len(), s.index.len() * 8, "trimmed");
        assert_eq!(index_entries(&index), s.index, "offset index of {}", s.base);
        let timeindex = read(dir.path(), s.base, "timeindex");
        assert_eq!(timeindex.len(), s.timeindex.len() * 12, "trimmed");
        assert_eq!(
            time_entries(&timeindex),
            s.timeindex,
            "time index of {}",
            s.base
        );
    }
    assert!(dir.path().join(".clean-shutdown").exists());
    assert!(
        segments
            .iter()
            .any(|s| s.index.len() > 1 && s.timeindex.len() > 1)
    );
}

#[test]
fn a_reopened_log_continues_the_same_index_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = Log::open(&dir.path().join("a-0"), config(), 0).unwrap();
    let mut two = Log::open(&dir.path().join("b-0"), config(), 0).unwrap();
    for i in 0..40 {
        let b = batch(&[(b"k", &vec![1u8; 20 + i])], i as i64);
        one.append(&b.clone(), 0).unwrap();
        two.append(&b, 0).unwrap();
        if i % 7 == 0 {
            two.close().unwrap();
            two = Log::open(&dir.path().join("b-0"), config(), 0).unwrap();
        }
    }
    one.close().unwrap();
    two.close().unwrap();
    let (a, b) = (dir.path().join("a-0"), dir.path().join("b-0"));
    let mut compared = 0;
    for entry in std::fs::read_dir(&a).unwrap() {
        let name = entry.unwrap().file_name();
        let is_data =
            name.to_string_lossy().ends_with(".log") || name.to_string_lossy().ends_with(".index");
        if is_data {
            let same =
                std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap();
            assert!(same, "{name:?} differs after reopens");
            compared += 1;
        }
    }
    assert!(compared >= 4);
}

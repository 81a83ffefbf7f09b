//! A machine crash, modelled on the store: bytes written after the last
//! completed sync may be lost (the file cut anywhere past the synced length)
//! or torn (garbage where a batch was half-written back). Whatever survives,
//! reopening keeps every synced batch, at its offset, and yields a clean
//! prefix of what was appended.

use std::fs::OpenOptions;
use std::io::Write;

use proptest::prelude::*;
use sluice::storage::testing::{as_stored, batch};
use sluice::storage::{Log, LogConfig, RecordBatch};

/// One step: append `n` batches of the given value length, then maybe sync.
#[derive(Debug, Clone)]
struct Step {
    batches: Vec<usize>,
    sync: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (proptest::collection::vec(0usize..300, 1..4), any::<bool>())
        .prop_map(|(batches, sync)| Step { batches, sync })
}

fn read_all(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.end_offset() {
        let bytes = log.read(offset, 1 << 20).unwrap().read().unwrap();
        let mut rest = &bytes[..];
        while let Ok(b) = RecordBatch::parse(rest) {
            out.push((b.base_offset(), rest[..b.size()].to_vec()));
            offset = b.last_offset() + 1;
            rest = &rest[b.size()..];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn synced_batches_survive_a_crash_and_the_rest_is_a_clean_prefix(
        steps in proptest::collection::vec(step(), 1..12),
        keep in any::<u16>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log_file = dir.path().join("00000000000000000000.log");
        let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
        let mut appended: Vec<(i64, Vec<u8>)> = Vec::new();
        let (mut synced_offset, mut synced_len) = (0i64, 0u64);
        for (i, step) in steps.iter().enumerate() {
            for (j, &len) in step.batches.iter().enumerate() {
                let value = vec![(i * 7 + j) as u8; len];
                let b = batch(&[(b"k", &value[..])], (i * 10 + j) as i64);
                let info = log.append(&b, 0).unwrap();
                appended.push((info.base_offset, as_stored(&b, info.base_offset, None)));
            }
            if step.sync {
                let target = log.sync_target();
                target.sync().unwrap();
                log.mark_synced(&target);
                synced_offset = target.end_offset;
                synced_len = std::fs::metadata(&log_file).unwrap().len();
            }
        }
        prop_assert_eq!(log.synced_offset(), synced_offset);
        // IMPORTANT: the crash: no close, and the page cache past the synced length is lost or torn.
        drop(log);
        let written = std::fs::metadata(&log_file).unwrap().len();
        let survives = synced_len + u64::from(keep) % (written - synced_len + 1);
        let file = OpenOptions::new().write(true).open(&log_file).unwrap();
        file.set_len(survives).unwrap();
        drop(file);
        OpenOptions::new().append(true).open(&log_file).unwrap().write_all(&garbage).unwrap();

        let log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
        prop_assert!(log.end_offset() >= synced_offset, "a synced batch was lost");
        let recovered = read_all(&log);
        prop_assert!(recovered.len() <= appended.len());
        prop_assert_eq!(&recovered[..], &appended[..recovered.len()]);
        prop_assert_eq!(log.end_offset(), recovered.last().map_or(0, |(o, b)| {
            o + i64::from(RecordBatch::parse(b).unwrap().last_offset_delta()) + 1
        }));
    }
}

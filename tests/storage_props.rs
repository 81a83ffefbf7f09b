//! Property tests: the log against a `Vec` model of stored batches, through
//! appends, reads, rolls, clean reopens and crashes with damaged files.

use std::path::Path;

use proptest::prelude::*;
use sluice::storage::testing::{as_stored, batch};
use sluice::storage::{Log, LogConfig, RecordBatch};

#[derive(Debug, Clone)]
enum Op {
    /// Batches of (record count, value length), appended in one call.
    Append(Vec<(usize, usize)>),
    Read(u16, u16),
    Reopen,
    /// Drop without close, cut the active `.log` at a chosen byte, damage an index.
    Crash {
        cut: Option<u16>,
        damage: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec((1usize..5, 0usize..120), 1..4).prop_map(Op::Append),
        3 => (any::<u16>(), any::<u16>()).prop_map(|(o, m)| Op::Read(o, m % 2048)),
        1 => Just(Op::Reopen),
        1 => (proptest::option::of(any::<u16>()), any::<u8>()).prop_map(|(cut, damage)| Op::Crash { cut, damage }),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (300u64..3000, 32u32..600, 12u32..200).prop_map(|(segment_bytes, interval, index_bytes)| {
        LogConfig {
            segment_bytes,
            index_interval_bytes: interval,
            segment_index_bytes: index_bytes,
            ..LogConfig::default()
        }
    })
}

/// (base offset, stored bytes) of every batch.
type Model = Vec<(i64, Vec<u8>)>;

fn model_end(model: &Model) -> i64 {
    model
        .last()
        .map_or(0, |(_, b)| RecordBatch::parse(b).unwrap().last_offset() + 1)
}

fn make_batch(count: usize, value_len: usize, seed: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..count)
        .map(|i| vec![(seed + i) as u8; value_len])
        .collect();
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"key"[..], v.as_slice())).collect();
    batch(&records, seed as i64)
}

fn read_all(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.end_offset() {
        let bytes = log.read(offset, 1 << 20).unwrap().read().unwrap();
        let mut rest = &bytes[..];
        while let Ok(b) = RecordBatch::parse(rest) {
            offset = b.last_offset() + 1;
            rest = &rest[b.size()..];
        }
        assert!(
            !bytes.is_empty() && rest.is_empty(),
            "reads return whole batches"
        );
        out.extend_from_slice(&bytes);
    }
    out
}

fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn damage(dir: &Path, cut: Option<u16>, damage: u8) {
    if let (Some(cut), Some(active)) = (cut, files(dir, "log").last()) {
        let len = std::fs::metadata(active).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(active)
            .unwrap();
        file.set_len(u64::from(cut) % (len + 1)).unwrap();
    }
    let ext = if damage & 1 == 0 {
        "index"
    } else {
        "timeindex"
    };
    let indexes = files(dir, ext);
    if indexes.is_empty() || damage & 6 == 0 {
        return;
    }
    let target = &indexes[usize::from(damage >> 3) % indexes.len()];
    match damage & 6 {
        2 => std::fs::remove_file(target).unwrap(),
        4 => {
            let len = std::fs::metadata(target).unwrap().len();
            std::fs::write(target, vec![0u8; len as usize]).unwrap();
        }
        _ => {
            let len = std::fs::metadata(target).unwrap().len();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(target)
                .unwrap();
            file.set_len(len / 2 + 1).unwrap();
        }
    }
}

fn check_read(log: &Log, model: &Model, selector: u16, max: u16) -> Result<(), TestCaseError> {
    let end = model_end(model);
    let offset = i64::from(selector) % (end + 1);
    let bytes = log.read(offset, usize::from(max)).unwrap().read().unwrap();
    if offset == end {
        prop_assert!(bytes.is_empty());
        return Ok(());
    }
    let first = model
        .iter()
        .position(|(_, b)| RecordBatch::parse(b).unwrap().last_offset() >= offset)
        .unwrap();
    let mut expected = model[first].1.clone();
    let mut i = first + 1;
    while expected.len() < bytes.len() && i < model.len() {
        expected.extend_from_slice(&model[i].1);
        i += 1;
    }
    prop_assert_eq!(
        &bytes[..],
        &expected[..],
        "whole batches from the one holding {}",
        offset
    );
    prop_assert!(bytes.len() <= usize::from(max) || bytes.len() == model[first].1.len());
    Ok(())
}

fn run(config: LogConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let mut model: Model = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append(shape) => {
                let buf: Vec<u8> = shape
                    .iter()
                    .enumerate()
                    .flat_map(|(i, (n, len))| make_batch(*n, *len, step * 8 + i))
                    .collect();
                let info = log.append(&buf, 0).unwrap();
                prop_assert_eq!(info.base_offset, model_end(&model));
                let stored = as_stored(&buf, info.base_offset, None);
                let mut rest = &stored[..];
                while !rest.is_empty() {
                    let b = RecordBatch::parse(rest).unwrap();
                    prop_assert_eq!(b.base_offset(), model_end(&model), "offsets are dense");
                    model.push((b.base_offset(), b.as_bytes().to_vec()));
                    rest = &rest[b.size()..];
                }
                prop_assert_eq!(info.last_offset + 1, model_end(&model));
            }
            Op::Read(selector, max) => check_read(&log, &model, selector, max)?,
            Op::Reopen => {
                log.close().unwrap();
                log = Log::open(dir.path(), config.clone(), 0).unwrap();
                prop_assert_eq!(
                    log.end_offset(),
                    model_end(&model),
                    "a clean reopen loses nothing"
                );
            }
            Op::Crash { cut, damage: d } => {
                drop(log);
                damage(dir.path(), cut, d);
                log = Log::open(dir.path(), config.clone(), 0).unwrap();
                let end = log.end_offset();
                let keep = model
                    .iter()
                    .take_while(|(_, b)| RecordBatch::parse(b).unwrap().last_offset() < end)
                    .count();
                model.truncate(keep);
                prop_assert_eq!(
                    end,
                    model_end(&model),
                    "recovery ends on a batch boundary of the model"
                );
            }
        }
        let all: Vec<u8> = model.iter().flat_map(|(_, b)| b.clone()).collect();
        prop_assert_eq!(
            read_all(&log),
            all,
            "the log is the model after step {}",
            step
        );
    }
    log.close().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn log_matches_a_vec_model_through_rolls_reopens_and_crashes(
        config in config(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(config, ops)?;
    }
}

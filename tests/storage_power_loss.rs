//! A machine crash with `flush = "os"`, over many segments: random workloads
//! of appends, rolls, retention and DeleteRecords, and syncs now and then (as
//! the background flusher does after a roll), some of them spanning appends
//! and rolls (the fsyncs run without the log lock). Then a power loss: every
//! `.log` file loses an arbitrary suffix of its unsynced bytes or has unsynced
//! bytes zeroed, so may the index files (a sync covers those of the segments
//! sealed before it began), and segments created after the last completed
//! sync began may be gone from the directory. Reopened from the recovery point
//! of the last completed sync (what the checkpoint would hold), the log must
//! be a prefix of what was appended: every readable batch passes its CRC,
//! offsets are dense, nothing that was synced is lost, and lookups by
//! timestamp find every batch.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sluice::storage::testing::{as_stored, batch};
use sluice::storage::{Log, LogConfig, RecordBatch, SyncTarget};

#[derive(Debug, Clone)]
enum Op {
    /// Appends one batch of `records` records with values of `len` bytes.
    Append { records: usize, len: usize },
    /// fsyncs everything appended so far.
    Sync,
    /// Takes a sync target (the fsyncs run later, without the log lock).
    SyncBegin,
    /// fsyncs the target taken last, marks it synced and writes the
    /// checkpoint (what the background flusher does).
    SyncEnd,
    /// DeleteRecords up to `fraction`/16 of the way from start to end.
    DeleteRecords { fraction: u8 },
    /// Retention by size (the config keeps about three segments).
    Retention,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..4, 0usize..200).prop_map(|(records, len)| Op::Append { records, len }),
        2 => Just(Op::Sync),
        1 => Just(Op::SyncBegin),
        1 => Just(Op::SyncEnd),
        1 => (0u8..=16).prop_map(|fraction| Op::DeleteRecords { fraction }),
        1 => Just(Op::Retention),
    ]
}

/// What the power loss does to one file's unsynced bytes.
#[derive(Debug, Clone)]
enum Loss {
    /// Keeps this many (modulo the unsynced length) and drops the rest.
    Cut(u32),
    /// Zeroes bytes from this point (modulo) on, for this many bytes.
    Zero(u32, u16),
}

fn loss() -> impl Strategy<Value = Loss> {
    prop_oneof![
        any::<u32>().prop_map(Loss::Cut),
        (any::<u32>(), any::<u16>()).prop_map(|(at, n)| Loss::Zero(at, n)),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        retention_bytes: 6144,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn log_files(dir: &Path) -> BTreeMap<PathBuf, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect()
}

/// The index files of every sealed segment (every `.log` but the newest),
/// with their lengths: what a sync begun now makes durable.
fn sealed_index_files(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let logs = log_files(dir);
    let sealed = logs.len().saturating_sub(1);
    logs.keys()
        .take(sealed)
        .flat_map(|log| ["index", "timeindex"].map(|ext| log.with_extension(ext)))
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect()
}

/// Completes a sync whose target was taken when `files` were there, with
/// these lengths: at least that much of each is durable now (a file with
/// nothing to sync then had that much durable already; bytes appended
/// since may or may not be in the target, so they count as not).
fn complete(
    log: &mut Log,
    target: &SyncTarget,
    files: &BTreeMap<PathBuf, u64>,
    synced_lengths: &mut BTreeMap<PathBuf, u64>,
) {
    target.sync().unwrap();
    log.mark_synced(target);
    for (path, len) in files {
        synced_lengths.insert(path.clone(), *len);
    }
}

fn lose(path: &Path, synced: u64, loss: &Loss) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    if len <= synced {
        return;
    }
    let unsynced = len - synced;
    match *loss {
        Loss::Cut(keep) => file
            .set_len(synced + u64::from(keep) % (unsynced + 1))
            .unwrap(),
        Loss::Zero(at, n) => {
            let at = synced + u64::from(at) % unsynced;
            let n = u64::from(n).min(len - at) as usize;
            file.write_all_at(&vec![0u8; n], at).unwrap();
        }
    }
}

/// Every batch from the start offset on: (base offset, bytes). Panics on a
/// batch that is not whole and CRC-valid, or on a gap in the offsets.
fn read_all(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.end_offset() {
        let bytes = log.read(offset, 1 << 20).unwrap().read().unwrap();
        assert!(!bytes.is_empty(), "nothing at {offset}");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let b = RecordBatch::parse(rest).expect("whole batch");
            b.validate().expect("CRC-valid batch");
            assert!(
                b.base_offset() <= offset && offset <= b.last_offset() || b.base_offset() == offset,
                "dense offsets at {offset}"
            );
            out.push((b.base_offset(), rest[..b.size()].to_vec()));
            offset = b.last_offset() + 1;
            rest = &rest[b.size()..];
        }
    }
    assert_eq!(offset.max(log.start_offset()), log.end_offset());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn after_a_power_loss_the_log_is_a_clean_prefix_keeping_everything_synced(
        ops in proptest::collection::vec(op(), 1..80),
        losses in proptest::collection::vec(loss(), 16),
        index_damage in any::<bool>(),
        entries_lost in proptest::collection::vec(any::<bool>(), 16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(), 0).unwrap();
        let mut appended: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        let mut synced_lengths: BTreeMap<PathBuf, u64> = BTreeMap::new();
        let mut recovery_point = 0i64;
        // A sync begun and not ended, with the files there when it began.
        let mut pending = None;
        // The files in the directory when the last completed sync began:
        // their directory entries are durable, later ones may be lost.
        let mut durable_entries = log_files(dir.path());
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Append { records, len } => {
                    let values: Vec<Vec<u8>> = (0..records).map(|j| vec![(i + j) as u8; len]).collect();
                    let recs: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"k"[..], &v[..])).collect();
                    let b = batch(&recs, i as i64);
                    let info = log.append(&b, 0).unwrap();
                    appended.insert(info.base_offset, as_stored(&b, info.base_offset, None));
                }
                Op::Sync | Op::SyncBegin if pending.is_none() => {
                    let mut files = log_files(dir.path());
                    files.extend(sealed_index_files(dir.path()));
                    pending = Some((log.sync_target(), files));
                    if matches!(op, Op::Sync) {
                        let (target, files) = pending.take().unwrap();
                        complete(&mut log, &target, &files, &mut synced_lengths);
                        recovery_point = log.synced_offset();
                        durable_entries = files;
                    }
                }
                Op::Sync | Op::SyncBegin => {}
                Op::SyncEnd => {
                    if let Some((target, files)) = pending.take() {
                        complete(&mut log, &target, &files, &mut synced_lengths);
                        recovery_point = log.synced_offset();
                        durable_entries = files;
                    }
                }
                Op::DeleteRecords { fraction } => {
                    let (start, end) = (log.start_offset(), log.end_offset());
                    let to = start + (end - start) * i64::from(fraction) / 16;
                    log.delete_records_before(to).unwrap();
                }
                Op::Retention => {
                    log.apply_retention(0).unwrap();
                }
            }
        }
        // IMPORTANT: the power loss: no close; unsynced bytes of every .log are cut or zeroed.
        drop(log);
        // A segment created after the last completed sync began may be gone.
        for (i, path) in log_files(dir.path()).keys().enumerate() {
            if !durable_entries.contains_key(path) && entries_lost[i % entries_lost.len()] {
                for ext in ["log", "index", "timeindex"] {
                    let _ = std::fs::remove_file(path.with_extension(ext));
                }
            }
        }
        for (i, (path, _)) in log_files(dir.path()).iter().enumerate() {
            let synced = synced_lengths.get(path).copied().unwrap_or(0);
            lose(path, synced, &losses[i % losses.len()]);
            for (j, ext) in ["index", "timeindex"].into_iter().enumerate() {
                let index = path.with_extension(ext);
                if index.exists() && index_damage {
                    let synced = synced_lengths.get(&index).copied().unwrap_or(0);
                    lose(&index, synced, &losses[(i + j + 7) % losses.len()]);
                }
            }
        }

        let log = Log::open_from_recovery_point(dir.path(), config(), 0, recovery_point).unwrap();
        prop_assert!(log.end_offset() >= recovery_point, "synced data was lost: end {} < {}", log.end_offset(), recovery_point);
        let batches = read_all(&log);
        for (base, bytes) in &batches {
            prop_assert_eq!(appended.get(base), Some(bytes), "batch at {} differs", base);
        }
        // Each batch's timestamp is its op's index, growing with its offset.
        for (base, bytes) in &batches {
            let timestamp = RecordBatch::parse(bytes).unwrap().max_timestamp();
            let found = log.offset_for_timestamp(timestamp).unwrap();
            prop_assert_eq!(found, Some(((*base).max(log.start_offset()), timestamp)), "lookup of {}", timestamp);
        }
        if let Some((_, bytes)) = batches.last() {
            let last = RecordBatch::parse(bytes).unwrap();
            prop_assert_eq!(log.max_timestamp().unwrap(), Some((last.max_timestamp(), last.last_offset())));
        }
        // And the log takes appends again, right after its end.
        let mut log = log;
        let end = log.end_offset();
        let b = batch(&[(b"k", b"after")], 0);
        prop_assert_eq!(log.append(&b, 0).unwrap().base_offset, end);
    }
}

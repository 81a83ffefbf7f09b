use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::storage::TimestampType;
use crate::storage::record::RecordBatch;
use crate::storage::segment::file_name;
use crate::storage::testing::{as_stored, batch, batch_with_producer, files_ending};

pub(super) fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        segment_index_bytes: 120,
        ..LogConfig::default()
    }
}

fn value(i: usize) -> Vec<u8> {
    format!("value-{i:04}").into_bytes()
}

/// Appends `n` single-batch appends of `per` records; returns each batch as stored.
pub(super) fn fill(log: &mut Log, n: usize, per: usize, ts: i64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let values: Vec<Vec<u8>> = (0..per).map(|j| value(i * per + j)).collect();
            let records: Vec<(&[u8], &[u8])> =
                values.iter().map(|v| (&b"k"[..], v.as_slice())).collect();
            let b = batch(&records, ts + i as i64);
            let info = log.append(&b, ts).unwrap();
            as_stored(&b, info.base_offset, None)
        })
        .collect()
}

pub(super) fn read_all(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.end_offset() {
        let bytes = log.read(offset, usize::MAX).unwrap().read().unwrap();
        let mut rest = &bytes[..];
        while let Ok(b) = RecordBatch::parse(rest) {
            offset = b.last_offset() + 1;
            rest = &rest[b.size()..];
        }
        out.extend_from_slice(&bytes);
    }
    out
}

mod faults;
mod recovery;
mod sync;

#[test]
fn append_assigns_dense_offsets_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    let b = batch(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], 10);
    let info = log.append(&b, 0).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.duplicate),
        (0, 2, false)
    );
    assert_eq!(info.log_append_time, -1);
    let two = [
        batch(&[(b"d", b"4")], 11),
        batch(&[(b"e", b"5"), (b"f", b"6")], 12),
    ]
    .concat();
    let info = log.append(&two, 0).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 5));
    assert_eq!(log.end_offset(), 6);
    let slice = log.read(1, 1).unwrap();
    assert_eq!(
        slice.read().unwrap(),
        as_stored(&b, 0, None),
        "a read inside a batch returns that whole batch"
    );
    let slice = log.read(3, usize::MAX).unwrap();
    let bytes = slice.read().unwrap();
    assert_eq!(RecordBatch::parse(&bytes).unwrap().base_offset(), 3);
    assert_eq!(bytes.len(), two.len());
    assert!(log.read(6, 100).unwrap().is_empty());
    assert!(matches!(
        log.read(7, 100),
        Err(Error::OffsetOutOfRange {
            offset: 7,
            start: 0,
            end: 6
        })
    ));
    assert!(matches!(
        log.read(-1, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn rejected_appends_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    fill(&mut log, 1, 1, 0);
    let size = log.size_bytes();
    let mut bad = batch(&[(b"k", b"v")], 0);
    *bad.last_mut().unwrap() ^= 1;
    let mixed = [batch(&[(b"k", b"v")], 0), bad].concat();
    assert!(matches!(
        log.append(&mixed, 0),
        Err(Error::CorruptMessage(_))
    ));
    assert!(matches!(log.append(&[], 0), Err(Error::CorruptMessage(_))));
    let big = batch(&[(b"k", &[0u8; 300])], 0);
    assert!(matches!(
        log.append(&big, 0),
        Err(Error::RecordTooLarge { max: 200, .. })
    ));
    let mut tx = batch(&[(b"k", b"v")], 0);
    tx[22] |= 0x10;
    let crc = crate::storage::crc32c(&tx[21..]);
    tx[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(log.append(&tx, 0), Err(Error::InvalidRecord(_))));
    assert_eq!((log.end_offset(), log.size_bytes()), (1, size));
}

#[test]
fn segments_roll_at_segment_bytes_and_a_read_stays_in_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    let batches = fill(&mut log, 40, 3, 0);
    assert!(log.segment_count() > 3);
    let slice = log.read(0, usize::MAX).unwrap();
    assert!(slice.len() <= 1024 && slice.len() < log.size_bytes() as usize);
    assert_eq!(read_all(&log), batches.concat());
    for offset in 0..log.end_offset() {
        let bytes = log.read(offset, 0).unwrap().read().unwrap();
        let b = RecordBatch::parse(&bytes).unwrap();
        assert!(b.base_offset() <= offset && offset <= b.last_offset());
        assert_eq!(bytes.len(), b.size());
    }
}

#[test]
fn clean_close_and_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    let mut batches = fill(&mut log, 25, 2, 0);
    let size = log.size_bytes();
    log.close().unwrap();
    assert_eq!(
        closed_log(dir.path()),
        Some(ClosedLog {
            start_offset: 0,
            end_offset: 50,
            last_stable_offset: 50,
            size_bytes: size,
        })
    );
    let marker = dir.path().join(CLEAN_SHUTDOWN);
    let whole = std::fs::read_to_string(&marker).unwrap();
    std::fs::write(&marker, &whole[..whole.len() - 2]).unwrap();
    assert_eq!(closed_log(dir.path()), None, "a marker cut short");
    std::fs::write(&marker, whole).unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(closed_log(dir.path()), None);
    assert_eq!(log.end_offset(), 50);
    batches.extend(fill(&mut log, 5, 2, 100));
    assert_eq!(read_all(&log), batches.concat());
    assert_eq!(log.end_offset(), 60);
}

#[test]
fn log_append_time_overwrites_the_max_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let b = batch(&[(b"k", b"v")], 5);
    let info = log.append(&b, 9_000).unwrap();
    assert_eq!(info.log_append_time, 9_000);
    let stored = log.read(0, 1000).unwrap().read().unwrap();
    let parsed = RecordBatch::parse(&stored).unwrap();
    parsed.validate().unwrap();
    assert_eq!(
        (parsed.max_timestamp(), parsed.is_log_append_time()),
        (9_000, true)
    );
    assert_eq!(log.max_timestamp().unwrap(), Some((9_000, 0)));
}

#[test]
fn idempotent_retries_are_answered_with_the_original_offsets_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 3, 1, 0);
    for seq in 0..20 {
        log.append(&batch_with_producer(7, 0, seq * 2, 2, 0), 0)
            .unwrap();
    }
    let retry = log.append(&batch_with_producer(7, 0, 38, 2, 0), 0).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (41, 42));
    assert_eq!(log.end_offset(), 43);
    assert_eq!(log.producer_state(7), Some((0, 39)));
    log.close().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.producer_state(7), Some((0, 39)));
    assert!(
        log.append(&batch_with_producer(7, 0, 38, 2, 0), 0)
            .unwrap()
            .duplicate
    );
    assert!(matches!(
        log.append(&batch_with_producer(7, 0, 41, 1, 0), 0),
        Err(Error::OutOfOrderSequence {
            expected: 40,
            got: 41,
            ..
        })
    ));
    log.append(&batch_with_producer(7, 0, 40, 1, 0), 0).unwrap();
    drop(log); // crash: no snapshot at the end, the tail is replayed
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.producer_state(7), Some((0, 40)));
    assert!(matches!(
        log.append(&batch_with_producer(7, -1, 41, 1, 0), 0),
        Err(Error::InvalidProducerEpoch {
            current: 0,
            got: -1,
            ..
        })
    ));
}

#[test]
fn timestamps_are_found_through_the_time_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 30, 2, 1_000); // batch i: offsets 2i..2i+1, timestamp 1000+i
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1_000)));
    assert_eq!(log.offset_for_timestamp(1_017).unwrap(), Some((34, 1_017)));
    assert_eq!(log.offset_for_timestamp(1_030).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), Some((1_029, 59)));
    log.close().unwrap();
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.offset_for_timestamp(1_017).unwrap(), Some((34, 1_017)));
    assert_eq!(log.max_timestamp().unwrap(), Some((1_029, 59)));
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = Log::open(&path, small(), 0).unwrap();
    fill(&mut log, 3, 1, 0);
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn log_and_read_slices_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<ReadSlice>();
    assert_send_sync::<SyncTarget>();
}

#[test]
fn producer_snapshots_are_not_named_like_kafkas_and_old_names_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    log.append(&batch_with_producer(7, 0, 0, 3, 0), 0).unwrap();
    log.close().unwrap();
    let with_ext = |ext: &str| files_ending(dir.path(), ext);
    let written = with_ext(".sluice-producers");
    assert_eq!(written.len(), 1);
    assert!(with_ext(".snapshot").is_empty());
    // A data directory of an earlier Sluice: the same file under Kafka's name.
    let legacy = written[0].replace(".sluice-producers", ".snapshot");
    std::fs::rename(dir.path().join(&written[0]), dir.path().join(&legacy)).unwrap();
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.producer_state(7), Some((0, 2)));
    log.close().unwrap();
    assert!(with_ext(".snapshot").is_empty(), "the old name is removed");
    assert_eq!(with_ext(".sluice-producers").len(), 1);
}

/// The offsets of the producer snapshots in `dir`, ascending.
pub(super) fn snapshot_offsets(dir: &Path) -> Vec<i64> {
    let names = files_ending(dir, ".sluice-producers");
    let mut found: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".sluice-producers")?.parse().ok())
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn each_roll_writes_a_producer_snapshot_and_only_the_newest_two_stay() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = || snapshot_offsets(dir.path());
    let newest_bases = |log: &Log| -> Vec<i64> {
        let bases: Vec<i64> = log.segments.keys().copied().collect();
        bases[bases.len() - 2..].to_vec()
    };
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 80, 2, 0);
    assert!(log.segment_count() > 4, "{} segments", log.segment_count());
    assert_eq!(snapshots(), newest_bases(&log));
    let (active, end) = (log.active_base_offset(), log.end_offset());
    log.close().unwrap();
    assert_eq!(snapshots(), [active, end]);

    // Reopened, the first roll lists the directory again; later ones do not.
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 80, 2, 0);
    assert_eq!(snapshots(), newest_bases(&log));
}

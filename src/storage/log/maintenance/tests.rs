use crate::storage::log::tests::{fill, read_all, small};
use crate::storage::{Error, Log, LogConfig, RecordBatch};

#[test]
fn delete_records_before_moves_the_start_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 40, 3, 0);
    let segments = log.segment_count();
    assert!(matches!(
        log.delete_records_before(1000),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(50).unwrap(), 50);
    assert!(log.segment_count() < segments);
    assert!(matches!(
        log.read(49, 10),
        Err(Error::OffsetOutOfRange { .. })
    ));
    let bytes = log.read(50, 0).unwrap().read().unwrap();
    assert!(RecordBatch::parse(&bytes).unwrap().last_offset() >= 50);
    assert_eq!(log.delete_records_before(10).unwrap(), 50);
    drop(log);
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (50, 120));
    assert_eq!(log.offset_for_timestamp(0).unwrap().map(|r| r.0), Some(50));
}

#[test]
fn truncate_to_removes_the_tail_and_appends_continue_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    let batches = fill(&mut log, 40, 3, 0);
    log.truncate_to(31).unwrap();
    assert_eq!(log.end_offset(), 30, "the batch holding 31 goes entirely");
    assert_eq!(read_all(&log), batches[..10].concat());
    let more = fill(&mut log, 5, 1, 0);
    assert_eq!(log.end_offset(), 35);
    log.close().unwrap();
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(
        read_all(&log),
        [batches[..10].concat(), more.concat()].concat()
    );
    let mut log = log;
    assert!(matches!(
        log.truncate_to(-5),
        Err(Error::OffsetOutOfRange { .. })
    ));
    log.truncate_to(0).unwrap();
    assert_eq!(
        (log.start_offset(), log.end_offset(), log.segment_count()),
        (0, 0, 1)
    );
}

#[test]
fn a_truncation_that_cannot_remove_a_segment_fails_the_log_and_a_reopen_recovers_it() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let mut log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    let batches = fill(&mut log, 40, 3, 0);
    let last = log.segments.keys().next_back().copied().unwrap();
    disk.fail_times(
        DiskOp::Remove,
        &format!("{last:020}.log"),
        libc::EIO,
        Some(1),
    );
    assert!(log.truncate_to(31).is_err());
    assert!(log.is_poisoned());
    assert!(matches!(log.truncate_to(31), Err(Error::Poisoned)));
    drop(log);
    // Segments go last first, and the last could not: nothing went, and
    // the reopened log holds everything; truncating again then works.
    let mut log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    assert_eq!(read_all(&log), batches.concat());
    log.truncate_to(31).unwrap();
    assert_eq!(read_all(&log), batches[..10].concat());
}

#[test]
fn a_truncation_drops_the_aborts_it_cuts_from_the_txnindex_durably() {
    use crate::storage::testing::{DiskOp, FaultyDisk, transactional_batch};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let txnindex = dir.path().join("00000000000000000000.txnindex");
    let open = || Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    let mut log = open();
    log.append_transactional(&transactional_batch(7, 0, 0, 3, 0), 0)
        .unwrap();
    let marker = log.append_marker((7, 0), false, 0, 0).unwrap().base_offset;
    assert_eq!(std::fs::read(&txnindex).unwrap().len(), 34);
    // The rewritten index is fsynced: when that fails, so does the truncation.
    disk.fail_times(
        DiskOp::Sync,
        "00000000000000000000.txnindex",
        libc::EIO,
        Some(1),
    );
    assert!(log.truncate_to(marker).is_err());
    assert_eq!(disk.injected(), 1);
    drop(log);
    // The rewrite stopped before its rename: the old file is whole, and the
    // new one is left for the open to remove.
    let rewritten = dir.path().join("00000000000000000000.txnindex.rewritten");
    assert_eq!(std::fs::read(&txnindex).unwrap().len(), 34);
    assert!(rewritten.exists());
    let log = open();
    assert!(!rewritten.exists());
    assert_eq!(log.end_offset(), marker);
    assert!(log.aborted_transactions(0, i64::MAX).is_empty());
    assert_eq!(std::fs::read(&txnindex).unwrap().len(), 0);
}

#[test]
fn retention_deletes_old_and_excess_sealed_segments_and_rolls_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 1_000,
        segment_ms: 500,
        ..small()
    };
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    fill(&mut log, 20, 3, 0); // timestamps 0..20
    let count = log.segment_count();
    assert_eq!(log.apply_retention(100).unwrap(), 0);
    assert_eq!(log.apply_retention(600).unwrap(), 0);
    assert_eq!(
        log.segment_count(),
        count + 1,
        "segment.ms rolled the active segment"
    );
    assert_eq!(log.apply_retention(5_000).unwrap(), count);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.start_offset(), log.end_offset());
    fill(&mut log, 40, 3, 10_000);
    log.set_config(LogConfig {
        retention_ms: -1,
        retention_bytes: 2048,
        ..config
    });
    assert!(log.apply_retention(10_000).unwrap() > 0);
    let sealed: u64 = log.size_bytes() - log.segments.values().next_back().unwrap().size();
    assert!(log.size_bytes() >= 2048 && sealed < 2048 + 1024);
}

#[test]
fn retention_that_cannot_remove_a_segments_files_keeps_the_log_and_disk_in_step() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    // Its `.log`: the segment stays, start and all. One of its indexes:
    // the segment is gone, and the start offset moves past it; the other
    // index still goes, and the one left goes at the next open.
    for (file, stays) in [
        ("00000000000000000000.log", true),
        ("00000000000000000000.index", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let mut log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
        fill(&mut log, 40, 3, 10_000);
        let all = read_all(&log);
        let second = log.segments.keys().nth(1).copied().unwrap();
        log.set_config(LogConfig {
            retention_bytes: 2048,
            ..small()
        });
        disk.fail_times(DiskOp::Remove, file, libc::EIO, Some(1));
        assert!(log.apply_retention(10_000).is_err(), "{file}");
        assert_eq!(disk.injected(), 1);
        let first = if stays { 0 } else { second };
        assert_eq!(log.segments.keys().next(), Some(&first), "{file}");
        assert_eq!(log.start_offset(), first, "{file}");
        assert_eq!(dir.path().join("00000000000000000000.log").exists(), stays);
        let path = |ext: &str| dir.path().join(format!("00000000000000000000.{ext}"));
        if stays {
            assert_eq!(read_all(&log), all);
        } else {
            assert!(path("index").exists() && !path("timeindex").exists());
        }
        // The next check goes on where this one stopped.
        assert!(log.apply_retention(10_000).unwrap() > 0);
        assert!(log.start_offset() > second);
        let start = log.start_offset();
        drop(log);
        let log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
        assert_eq!(log.start_offset(), start);
        assert!(!path("index").exists(), "{file}: orphan removed at open");
    }
}

#[test]
fn segments_below_the_start_that_delete_records_could_not_remove_go_at_the_next_retention_check() {
    use crate::storage::CleanupPolicy;
    use crate::storage::testing::{DiskOp, FaultyDisk};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    // Compacted, no retention by age or size: only the start offset says
    // what goes.
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        retention_ms: -1,
        ..small()
    };
    let mut log = Log::open_on(dir.path(), config, 0, 0, disk.unbounded()).unwrap();
    fill(&mut log, 40, 3, 10_000);
    let second = log.segments.keys().nth(1).copied().unwrap();
    disk.fail_times(
        DiskOp::Remove,
        "00000000000000000000.log",
        libc::EIO,
        Some(1),
    );
    assert!(log.delete_records_before(second).is_err());
    assert_eq!(log.start_offset(), second);
    assert!(log.segments.contains_key(&0), "its .log is still there");
    assert_eq!(log.apply_retention(10_000).unwrap(), 1);
    assert_eq!(log.segments.keys().next(), Some(&second));
    assert!(!dir.path().join("00000000000000000000.log").exists());
    drop(log);
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.start_offset(), second, "persisted");
}

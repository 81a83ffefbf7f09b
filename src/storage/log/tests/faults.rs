//! A log on a disk that fails or runs out of descriptors: what is refused,
//! and that nothing is lost, added or left behind.

use super::*;

#[test]
fn a_roll_that_cannot_create_its_new_segment_refuses_the_append_and_the_next_one_rolls() {
    use crate::storage::testing::{DiskOp, FaultyDisk, files_ending};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let mut log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    let mut stored = fill(&mut log, 5, 3, 0);
    // Out of descriptors, the next roll cannot open its new `.log`; the
    // one after opens it but cannot size it.
    disk.fail_times(DiskOp::Open, ".log", libc::EMFILE, Some(1));
    disk.fail_times(DiskOp::SetLen, ".log", libc::EIO, Some(1));
    let logs_on_disk = || -> Vec<i64> {
        let names = files_ending(dir.path(), ".log");
        let mut bases: Vec<i64> = names
            .iter()
            .map(|n| n[..n.len() - 4].parse().unwrap())
            .collect();
        bases.sort();
        bases
    };
    let mut refused = Vec::new();
    for i in 5..40 {
        let b = batch(&[(b"k", format!("value-{i:04}").as_bytes())], i);
        let segments = log.segments.len();
        match log.append(&b, 0) {
            Ok(info) => stored.push(as_stored(&b, info.base_offset, None)),
            Err(e) => {
                refused.push((i, e.to_string()));
                let listed: Vec<i64> = log.segments.keys().copied().collect();
                assert_eq!(logs_on_disk(), listed, "no file of a segment not there");
                // A sync between the failed roll and the next.
                let target = log.sync_target();
                target.sync().unwrap();
                log.mark_synced(&target);
            }
        }
        if log.segments.len() > segments {
            let dir = log.sync_target().dir;
            assert!(
                dir.is_some(),
                "the roll's new files want the directory synced"
            );
        }
    }
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].1.contains("Too many open files"), "{refused:?}");
    assert_eq!(
        refused[1].0,
        refused[0].0 + 1,
        "the next append tries again"
    );
    assert!(log.segments.len() > 2, "later rolls went through");
    let mut unsynced: Vec<_> = log.unsynced_indexes.iter().map(|(p, ..)| p).collect();
    let listed = unsynced.len();
    unsynced.sort();
    unsynced.dedup();
    assert_eq!(unsynced.len(), listed, "each sealed index listed once");
    assert_eq!(
        read_all(&log),
        stored.concat(),
        "nothing lost, nothing added"
    );
    log.close().unwrap();
    let log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    assert_eq!(read_all(&log), stored.concat());
}

#[test]
fn an_abort_whose_txnindex_entry_cannot_be_written_holds_the_recovery_point_until_it_is() {
    use crate::storage::testing::{DiskOp, FaultyDisk, files_ending, transactional_batch};
    let aborted = |log: &Log| -> Vec<(i64, i64, i64)> {
        log.aborted_transactions(0, i64::MAX)
            .iter()
            .map(|t| (t.producer_id, t.first_offset, t.last_offset))
            .collect()
    };
    let sync = |log: &mut Log| {
        let target = log.sync_target();
        target.sync().unwrap();
        log.mark_synced(&target);
    };
    let txnindex = "00000000000000000000.txnindex";
    // (what fails, how often): the open once, the entry's fsync once (its
    // bytes are written: the retry must not write them twice), the open
    // until the restart.
    for (op, times) in [
        (DiskOp::Open, Some(1)),
        (DiskOp::Sync, Some(1)),
        (DiskOp::Open, None),
    ] {
        let until_restart = times.is_none();
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let mut log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
        log.append_transactional(&transactional_batch(7, 0, 0, 3, 0), 0)
            .unwrap();
        disk.fail_times(op, txnindex, libc::EMFILE, times);
        let marker = log.append_marker((7, 0), false, 0, 0).unwrap().base_offset;
        assert_eq!(aborted(&log), [(7, 0, marker)], "it counts at once");
        if until_restart {
            // Rolls after it take producer snapshots past the marker.
            fill(&mut log, 20, 3, 0);
            assert!(files_ending(dir.path(), ".sluice-producers").len() >= 2);
        }
        sync(&mut log);
        let recovery_point = log.recovery_point();
        if until_restart {
            // The recovery point stays at the marker (group commit, which
            // reads `synced_offset`, does not wait on it), and no close is clean.
            assert_eq!(recovery_point, marker);
            assert_eq!(log.synced_offset(), log.end_offset());
            assert!(log.close().is_err());
            disk.clear();
        } else {
            // The sync wrote it.
            assert_eq!(recovery_point, log.end_offset(), "{op:?}");
            log.close().unwrap();
        }
        // Unclean in the last case: the replay from the recovery point
        // writes the entry; clean in the others: the file holds it.
        let log = Log::open_on(dir.path(), small(), 0, recovery_point, disk.unbounded()).unwrap();
        assert_eq!(aborted(&log), [(7, 0, marker)]);
        log.close().unwrap();
        let log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
        assert_eq!(aborted(&log), [(7, 0, marker)], "read from the .txnindex");
        let bytes = std::fs::read(dir.path().join(txnindex)).unwrap();
        assert_eq!(bytes.len(), crate::storage::txn::ENTRY_BYTES, "{op:?}");
    }
}

#[test]
fn an_unclean_open_makes_the_txnindex_entries_it_finds_durable() {
    use crate::storage::testing::{DiskOp, FaultyDisk, transactional_batch};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let open = || Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    let mut log = open();
    log.append_transactional(&transactional_batch(7, 0, 0, 3, 0), 0)
        .unwrap();
    // The entry is written but never fsynced; then the process dies.
    disk.fail(DiskOp::Sync, ".txnindex", libc::EIO);
    let marker = log.append_marker((7, 0), false, 0, 0).unwrap().base_offset;
    drop(log);
    disk.clear();
    // The unclean open finds the entry (in the page cache) and fsyncs it
    // before it counts: a power loss after the next clean stop keeps it.
    let log = open();
    log.close().unwrap();
    disk.drop_unsynced().unwrap();
    let log = open();
    let aborted: Vec<(i64, i64)> = log
        .aborted_transactions(0, i64::MAX)
        .iter()
        .map(|t| (t.first_offset, t.last_offset))
        .collect();
    assert_eq!(aborted, [(0, marker)]);
}

#[test]
fn a_txnindex_or_start_offset_that_cannot_be_read_fails_the_open_and_loses_nothing() {
    use crate::storage::testing::{DiskOp, FaultyDisk, transactional_batch};
    for file in [".txnindex", "log-start-offset"] {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let open = || Log::open_on(dir.path(), small(), 0, 0, disk.unbounded());
        let mut log = open().unwrap();
        fill(&mut log, 4, 2, 0);
        let start = log.end_offset();
        log.append_transactional(&transactional_batch(7, 0, 0, 3, start), 0)
            .unwrap();
        let marker = log.append_marker((7, 0), false, 0, 0).unwrap().base_offset;
        log.delete_records_before(start).unwrap();
        log.close().unwrap();
        // Out of descriptors while the log opens (as a lazy open may be).
        disk.fail(DiskOp::Open, file, libc::EMFILE);
        assert!(open().is_err(), "{file}: the open fails");
        disk.clear();
        let log = open().unwrap();
        let aborted: Vec<(i64, i64)> = log
            .aborted_transactions(0, i64::MAX)
            .iter()
            .map(|t| (t.first_offset, t.last_offset))
            .collect();
        assert_eq!(aborted, [(start, marker)], "{file}");
        assert_eq!(log.start_offset(), start, "{file}");
    }
}

#[test]
fn a_producer_snapshot_that_cannot_be_read_fails_the_open_and_loses_no_producer() {
    use crate::storage::testing::{DiskOp, FaultyDisk, batch_with_producer};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let open = || Log::open_on(dir.path(), small(), 0, 0, disk.unbounded());
    let mut log = open().unwrap();
    log.append(&batch_with_producer(9, 0, 0, 3, 0), 0).unwrap();
    fill(&mut log, 20, 2, 0);
    // Its records gone, only the snapshot the close writes knows producer 9.
    log.delete_records_before(log.end_offset()).unwrap();
    log.close().unwrap();
    disk.fail(DiskOp::Open, ".sluice-producers", libc::EMFILE);
    assert!(open().is_err(), "the open fails");
    disk.clear();
    let log = open().unwrap();
    assert_eq!(log.producer_state(9), Some((0, 2)));
}

#[test]
fn a_delete_records_out_of_descriptors_moves_no_start_offset_even_after_a_restart() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let open = || Log::open_on(dir.path(), small(), 0, 0, disk.unbounded());
    let mut log = open().unwrap();
    fill(&mut log, 20, 2, 0);
    let all = read_all(&log);
    // No descriptor to fsync the directory with.
    disk.fail(DiskOp::Open, &dir.path().to_string_lossy(), libc::EMFILE);
    assert!(log.delete_records_before(10).is_err());
    disk.clear();
    assert_eq!(log.start_offset(), 0);
    let tmp = dir.path().join("log-start-offset.tmp");
    assert!(!tmp.exists(), "its temp file is not left behind");
    log.close().unwrap();
    // One a crash left before the rename goes at the next open.
    std::fs::write(&tmp, b"10\n").unwrap();
    let log = open().unwrap();
    assert!(!tmp.exists());
    assert_eq!(log.start_offset(), 0, "the start came back moved");
    assert!(read_all(&log) == all, "every record is still there");
}

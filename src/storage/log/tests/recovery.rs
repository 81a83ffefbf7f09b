//! A log after damage: a torn tail, a failed write, a poisoned log, damaged
//! indexes, an unclean stop.

use super::*;

#[test]
fn reopen_after_torn_tail_truncates_to_last_valid_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    let batches = fill(&mut log, 10, 2, 0);
    drop(log);
    let path = dir.path().join(file_name(0, "log"));
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 5).unwrap();
    file.write_all_at(b"garbage", len - 5).unwrap();
    std::fs::write(dir.path().join(file_name(0, "index")), [0xffu8; 13]).unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.end_offset(), 18);
    assert_eq!(read_all(&log), batches[..9].concat());
    log.append(&batch(&[(b"k", b"v")], 0), 0).unwrap();
    assert_eq!(log.end_offset(), 19);
}

#[test]
fn a_poisoned_log_refuses_appends_and_is_recovered_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 2, 1, 0);
    log.poison();
    assert!(matches!(
        log.append(&batch(&[(b"k", b"v")], 0), 0),
        Err(Error::Poisoned)
    ));
    assert!(matches!(log.close(), Err(Error::Poisoned)));
    assert!(!dir.path().join(CLEAN_SHUTDOWN).exists());
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.end_offset(), 2);
}

#[derive(Debug, Default)]
struct FlakyDisk {
    full: AtomicBool,
}

impl Disk for FlakyDisk {
    fn write_at(
        &self,
        _: &Path,
        file: &File,
        bufs: &[std::io::IoSlice<'_>],
        position: u64,
    ) -> std::io::Result<()> {
        let buf: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        if self.full.load(Ordering::SeqCst) {
            file.write_all_at(&buf[..buf.len() / 3], position)?;
            return Err(std::io::Error::other("No space left on device"));
        }
        file.write_all_at(&buf, position)
    }
}

#[test]
fn a_failed_write_leaves_the_log_unchanged_and_usable_after() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let mut log = Log::open_on(
        dir.path(),
        small(),
        0,
        0,
        (disk.clone(), OpenSegments::unbounded()),
    )
    .unwrap();
    let mut batches = fill(&mut log, 5, 2, 0);
    let (end, size) = (log.end_offset(), log.size_bytes());
    disk.full.store(true, Ordering::SeqCst);
    let err = log
        .append(&batch_with_producer(3, 0, 0, 2, 0), 0)
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(err.error_code(), 56);
    assert_eq!((log.end_offset(), log.size_bytes()), (end, size));
    assert_eq!(log.producer_state(3), None);
    assert_eq!(read_all(&log), batches.concat());
    disk.full.store(false, Ordering::SeqCst);
    let info = log.append(&batch_with_producer(3, 0, 0, 2, 0), 0).unwrap();
    assert_eq!(info.base_offset, end);
    batches.extend(fill(&mut log, 20, 2, 0));
    log.close().unwrap();
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(log.end_offset(), end + 42);
}

#[test]
fn unknown_files_are_ignored_and_damaged_sealed_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    let batches = fill(&mut log, 40, 3, 0);
    log.close().unwrap();
    std::fs::write(dir.path().join("README"), b"hello").unwrap();
    std::fs::write(dir.path().join(file_name(0, "index")), [0u8; 64]).unwrap();
    std::fs::remove_file(dir.path().join(file_name(0, "timeindex"))).unwrap();
    let log = Log::open(dir.path(), small(), 0).unwrap();
    assert_eq!(read_all(&log), batches.concat());
    assert_eq!(log.offset_for_timestamp(3).unwrap(), Some((9, 3)));
    assert!(
        std::fs::metadata(dir.path().join(file_name(0, "index")))
            .unwrap()
            .len()
            .is_multiple_of(8)
    );
}

/// A power loss's torn write: the file keeps only its first half.
fn tear_in_half(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len / 2).unwrap();
}

#[test]
fn an_unclean_open_scans_from_the_recovery_point_and_drops_segments_after_a_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 60, 2, 1_000);
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    assert!(bases.len() >= 5, "{bases:?}");
    // Everything below the third segment was fsynced; the rest was not.
    let recovery_point = bases[2];
    let end = log.end_offset();
    drop(log);
    // A power loss tore the fourth segment in its middle.
    tear_in_half(&dir.path().join(file_name(bases[3], "log")));

    let log = Log::open_from_recovery_point(dir.path(), small(), 0, recovery_point).unwrap();
    let cut = log.end_offset();
    assert!(
        cut > bases[3] && cut < bases[4] && cut < end,
        "end {cut}, bases {bases:?}"
    );
    assert_eq!(log.segments.keys().next_back(), Some(&bases[3]));
    for base in &bases[4..] {
        assert!(!dir.path().join(file_name(*base, "log")).exists());
    }
    // Every offset up to the cut reads back as whole batches at dense offsets.
    let mut offset = 0;
    while offset < cut {
        let bytes = log.read(offset, 1 << 20).unwrap().read().unwrap();
        let batch = RecordBatch::parse(&bytes).unwrap();
        batch.validate().unwrap();
        assert_eq!(batch.base_offset(), offset);
        offset = batch.last_offset() + 1;
    }
    assert_eq!(offset, cut);
}

#[test]
fn offset_index_entries_a_power_loss_garbled_are_passed_over_on_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    let batches = fill(&mut log, 60, 2, 1_000);
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    let (end, first_end) = (log.end_offset(), bases[1]);
    drop(log);
    // The index of a segment below the recovery point, damaged on disk (as
    // a power loss did before indexes were fsynced with their log), lost
    // the low byte of every entry's position: each still looks sane
    // (ascending, inside the file) but points inside a batch.
    let index = dir.path().join(file_name(bases[0], "index"));
    let mut bytes = std::fs::read(&index).unwrap();
    let entries = bytes.len() / 8;
    assert!(entries >= 2, "{entries} entries");
    for entry in 1..entries {
        bytes[entry * 8 + 7] = 0;
    }
    std::fs::write(&index, bytes).unwrap();

    let log = Log::open_from_recovery_point(dir.path(), small(), 0, end).unwrap();
    assert_eq!(read_all(&log), batches.concat());
    for offset in 0..first_end {
        for max_bytes in [1, 200, 1 << 20] {
            let bytes = log.read(offset, max_bytes).unwrap().read().unwrap();
            let mut rest = &bytes[..];
            let mut at = None;
            while !rest.is_empty() {
                let batch = RecordBatch::parse(rest).expect("whole batches");
                batch.validate().unwrap();
                at.get_or_insert(batch.base_offset());
                rest = &rest[batch.size()..];
            }
            let first = at.expect("a batch");
            assert!(first <= offset && offset < first + 2, "{offset}: {first}");
        }
    }
    // The first batch at or after time 1_009 (the tenth append's, in the
    // damaged segment).
    assert_eq!(log.offset_for_timestamp(1_009).unwrap(), Some((18, 1_009)));
    for timestamp in 1_000..1_009 {
        let offset = (timestamp - 1_000) * 2;
        let found = log.offset_for_timestamp(timestamp).unwrap();
        assert_eq!(found, Some((offset, timestamp)));
    }
}

/// Appends single batches of 2 records (timestamps 1_000, 1_001, ...) until
/// the next one would roll the first segment; returns how many it took.
fn batches_filling_the_first_segment() -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    (0..)
        .find(|&i| {
            fill(&mut log, 1, 2, 1_000 + i as i64);
            log.segment_count() > 1
        })
        .unwrap()
}

/// A log whose checkpoint was written while its first segment was still
/// active and full (its `.log` fsynced, the point its end), then sealed by
/// the next append, then a power loss. Returns the recovery point and the
/// first segment's largest timestamp.
fn sealed_after_the_checkpoint(dir: &Path) -> (i64, i64) {
    let full = batches_filling_the_first_segment();
    let mut log = Log::open(dir, small(), 0).unwrap();
    for i in 0..full {
        fill(&mut log, 1, 2, 1_000 + i as i64);
    }
    let target = log.sync_target();
    target.sync().unwrap();
    log.mark_synced(&target);
    let recovery_point = log.synced_offset();
    assert_eq!(recovery_point, 2 * full as i64);
    fill(&mut log, 1, 2, 1_000 + full as i64);
    assert_eq!(log.active_base_offset(), recovery_point);
    drop(log);
    (recovery_point, 1_000 + full as i64 - 1)
}

/// The first segment's timestamps as an open from `recovery_point` finds them.
fn check_first_segment_times(dir: &Path, recovery_point: i64, last: i64) {
    let log = Log::open_from_recovery_point(dir, small(), 0, recovery_point).unwrap();
    assert_eq!(
        log.offset_for_timestamp(last).unwrap(),
        Some((recovery_point - 2, last))
    );
    assert_eq!(
        log.sealed_segments().first().map(|s| s.3),
        Some(Some(last)),
        "the first segment's largest timestamp"
    );
}

#[test]
fn a_segment_sealed_after_the_checkpoint_was_written_gets_its_indexes_rebuilt_on_an_unclean_open() {
    let dir = tempfile::tempdir().unwrap();
    let (recovery_point, last) = sealed_after_the_checkpoint(dir.path());
    // The seal's time entry was never written back.
    let time_index = dir.path().join(file_name(0, "timeindex"));
    let len = std::fs::metadata(&time_index).unwrap().len();
    assert!(len >= 24, "{len}");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&time_index)
        .unwrap();
    file.set_len(len - 12).unwrap();
    check_first_segment_times(dir.path(), recovery_point, last);
}

#[test]
fn a_segment_sealed_after_the_checkpoint_keeps_its_indexes_when_its_seal_reached_the_disk() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (recovery_point, last) = sealed_after_the_checkpoint(dir.path());
    let inode = |ext: &str| {
        std::fs::metadata(dir.path().join(file_name(0, ext)))
            .unwrap()
            .ino()
    };
    let before = (inode("index"), inode("timeindex"));
    check_first_segment_times(dir.path(), recovery_point, last);
    // A rebuild renames new files over them.
    assert_eq!((inode("index"), inode("timeindex")), before, "not rebuilt");
}

/// A cleanly closed log of 60 batches whose first segment's offset index
/// was garbled afterwards: every entry's position but the first points
/// inside a batch. Returns the batches, the end offset and the index file's
/// bytes before and after.
fn with_a_garbled_first_index(dir: &Path) -> (Vec<Vec<u8>>, i64, Vec<u8>, Vec<u8>) {
    let mut log = Log::open(dir, small(), 0).unwrap();
    let batches = fill(&mut log, 60, 2, 1_000);
    let end = log.end_offset();
    log.close().unwrap();
    let index = dir.join(file_name(0, "index"));
    let intact = std::fs::read(&index).unwrap();
    let mut garbled = intact.clone();
    for entry in 1..garbled.len() / 8 {
        garbled[entry * 8 + 7] = 0;
    }
    std::fs::write(&index, &garbled).unwrap();
    (batches, end, intact, garbled)
}

#[test]
fn a_sealed_segments_index_a_read_found_damaged_is_rebuilt_by_the_repair() {
    let dir = tempfile::tempdir().unwrap();
    let time_index = dir.path().join(file_name(0, "timeindex"));
    let (batches, end, offsets, _) = with_a_garbled_first_index(dir.path());
    let index = dir.path().join(file_name(0, "index"));
    let times = std::fs::read(&time_index).unwrap();

    let mut log = Log::open_from_recovery_point(dir.path(), small(), 0, end).unwrap();
    log.repair_indexes();
    assert!(!log.segments[&0].index_mismatched(), "nothing read yet");
    assert_eq!(read_all(&log), batches.concat());
    assert!(log.segments[&0].index_mismatched());
    log.repair_indexes();
    assert!(!log.segments[&0].index_mismatched());
    assert_eq!(
        std::fs::read(&index).unwrap(),
        offsets,
        "rebuilt as appends wrote it"
    );
    assert_eq!(std::fs::read(&time_index).unwrap(), times);
    assert_eq!(read_all(&log), batches.concat());
    assert!(!log.segments[&0].index_mismatched(), "reads trust it again");
    assert_eq!(log.offset_for_timestamp(1_005).unwrap(), Some((10, 1_005)));
}

#[test]
fn a_failed_repair_leaves_whole_index_files_and_is_not_retried_until_reopened() {
    use crate::storage::testing::{DiskOp, FaultyDisk, files_ending};
    // The rebuild's walk of the .log fails, or renaming its output over
    // the offset index, or over the time index once the offset index is
    // replaced: that one is then the rebuilt file.
    for (op, file) in [
        (DiskOp::Read, "00000000000000000000.log"),
        (DiskOp::Rename, "00000000000000000000.index"),
        (DiskOp::Rename, "00000000000000000000.timeindex"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (batches, end, intact, garbled) = with_a_garbled_first_index(dir.path());
        let left = if file.ends_with(".timeindex") {
            intact
        } else {
            garbled
        };
        let index = dir.path().join(file_name(0, "index"));
        let time_index = dir.path().join(file_name(0, "timeindex"));
        let times = std::fs::read(&time_index).unwrap();

        let disk = FaultyDisk::new();
        let mut log = Log::open_on(dir.path(), small(), 0, end, disk.unbounded()).unwrap();
        assert_eq!(read_all(&log), batches.concat());
        assert!(log.segments[&0].index_mismatched());
        disk.fail_times(op, file, libc::EIO, Some(1));
        log.repair_indexes();
        assert_eq!(disk.injected(), 1, "{op:?}");
        assert!(!log.segments[&0].index_mismatched(), "given up on");
        assert_eq!(std::fs::read(&index).unwrap(), left, "{op:?} {file}");
        assert_eq!(std::fs::read(&time_index).unwrap(), times, "{op:?} {file}");
        let leftovers = files_ending(dir.path(), ".rebuilt");
        assert!(leftovers.is_empty(), "{op:?}: {leftovers:?}");
        // Reads still walk past it, and nothing tries again.
        assert_eq!(read_all(&log), batches.concat());
        log.repair_indexes();
        assert_eq!(std::fs::read(&index).unwrap(), left);
    }
}

#[test]
fn an_unclean_open_that_cuts_the_log_removes_the_producer_snapshots_past_its_new_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 60, 2, 1_000);
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    assert!(bases.len() >= 5, "{bases:?}");
    drop(log);
    let snapshots = || snapshot_offsets(dir.path());
    // Each roll wrote one; the newest two are kept.
    assert_eq!(snapshots(), bases[bases.len() - 2..]);
    // A power loss tore the second segment: the log ends inside it.
    tear_in_half(&dir.path().join(file_name(bases[1], "log")));

    let log = Log::open_from_recovery_point(dir.path(), small(), 0, 0).unwrap();
    assert!(log.end_offset() < bases[2]);
    assert_eq!(snapshots(), Vec::<i64>::new());
}

#[test]
fn a_read_that_fails_while_opening_fails_the_open_and_cuts_nothing() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    // After a clean stop the active segment's tail is walked; after an
    // unclean one every segment from the recovery point is scanned. A read
    // failing there (EIO, or no descriptor to read with) is no torn tail.
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small(), 0).unwrap();
        fill(&mut log, 40, 2, 1_000);
        let (all, end) = (read_all(&log), log.end_offset());
        assert!(log.segments.len() >= 3);
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let disk = FaultyDisk::new();
        disk.fail(DiskOp::Read, ".log", libc::EIO);
        let failed = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded());
        assert!(failed.is_err(), "clean {clean}: the open fails");
        disk.clear();
        let log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
        assert_eq!(log.end_offset(), end, "clean {clean}");
        assert_eq!(read_all(&log), all, "clean {clean}");
    }
}

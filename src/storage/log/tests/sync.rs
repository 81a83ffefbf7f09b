//! Syncs: what a sync target covers, what its completion lets the recovery
//! point pass, and a failed fsync.

use super::*;

#[test]
fn sync_target_covers_rolled_segments_until_marked() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    fill(&mut log, 12, 3, 0);
    let target = log.sync_target();
    assert_eq!(target.end_offset, 36);
    assert!(target.files.len() > 1);
    // Both index files of every sealed segment, made durable with its log.
    let sealed: Vec<i64> = log.sealed_segments().iter().map(|s| s.0).collect();
    let mut expected: Vec<PathBuf> = sealed
        .iter()
        .flat_map(|b| ["index", "timeindex"].map(|ext| dir.path().join(file_name(*b, ext))))
        .collect();
    let mut indexes = target.indexes.clone();
    indexes.sort();
    expected.sort();
    assert_eq!(indexes, expected);
    // And the directory the rolls created files in.
    assert_eq!(target.dir.as_deref(), Some(dir.path()));
    target.sync().unwrap();
    fill(&mut log, 1, 1, 0);
    log.mark_synced(&target);
    assert_eq!(log.synced_offset(), 36);
    let next = log.sync_target();
    assert_eq!(
        next.files.len(),
        1,
        "only the file written after the target"
    );
    assert!(next.indexes.is_empty());
    assert_eq!(next.dir, None);
}

#[test]
fn the_synced_offset_stays_at_a_segment_sealed_after_the_sync_began_until_its_indexes_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small(), 0).unwrap();
    let sync_all = |log: &mut Log| {
        let target = log.sync_target();
        target.sync().unwrap();
        log.mark_synced(&target);
    };
    // Past the first segment, and everything synced.
    while log.segment_count() < 2 {
        fill(&mut log, 1, 1, 0);
    }
    fill(&mut log, 1, 1, 0);
    sync_all(&mut log);
    let (active, synced) = (log.active_base_offset(), log.end_offset());
    assert!(0 < active && active < synced);
    assert_eq!(log.synced_offset(), synced);
    // A sync starts; while its fsyncs run, an append rolls the segment.
    let before_roll = log.sync_target();
    while log.active_base_offset() == active {
        fill(&mut log, 1, 1, 0);
    }
    assert_eq!(log.synced_offset(), active, "down to the sealed segment");
    before_roll.sync().unwrap();
    log.mark_synced(&before_roll);
    assert_eq!(
        log.synced_offset(),
        active,
        "its indexes changed after that sync began"
    );
    let after_roll = log.sync_target();
    assert_eq!(after_roll.indexes.len(), 2);
    after_roll.sync().unwrap();
    log.mark_synced(&after_roll);
    assert_eq!(log.synced_offset(), log.end_offset());

    // A sealed segment deleted before its indexes were synced holds the
    // point down no more.
    let synced = log.end_offset();
    let sealed = log.active_base_offset();
    while log.active_base_offset() == sealed {
        fill(&mut log, 1, 1, 0);
    }
    assert_eq!(log.synced_offset(), sealed);
    log.delete_records_before(log.active_base_offset()).unwrap();
    assert!(log.segments.keys().all(|b| *b > sealed));
    assert_eq!(log.synced_offset(), synced);
}

#[test]
fn a_failed_fsync_of_a_sealed_index_or_the_directory_fails_the_sync() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let mut log = Log::open_on(dir.path(), small(), 0, 0, disk.unbounded()).unwrap();
    fill(&mut log, 12, 3, 0);
    let target = log.sync_target();
    disk.fail_times(DiskOp::SyncDir, "", libc::EIO, Some(1));
    assert_eq!(
        target.sync().unwrap_err().error.raw_os_error(),
        Some(libc::EIO)
    );
    disk.fail(DiskOp::Sync, ".timeindex", libc::EIO);
    assert_eq!(
        target.sync().unwrap_err().error.raw_os_error(),
        Some(libc::EIO)
    );
    assert!(
        matches!(log.close(), Err(Error::Io { path, .. }) if path.ends_with("00000000000000000000.timeindex"))
    );
}

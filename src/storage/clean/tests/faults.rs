//! A cleaning that meets a failing disk, or a log that failed meanwhile.

use super::*;
use crate::storage::testing::files_ending;

#[test]
fn a_failed_fsync_at_the_swaps_commit_point_freezes_the_log_until_a_reopen_completes_the_swap() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let mut log = Log::open_on(dir.path(), compacted(), T0, 0, disk.unbounded()).unwrap();
    for i in 0..60 {
        put(&mut log, &format!("k{}", i % 5), Some(&format!("v{i}")), T0);
    }
    let before = read_records(&log);
    let job = log.clean_job(0, T0).expect("dirty enough");
    let cleaned = job.run(&mut OffsetMap::new(1 << 16), T0).unwrap();
    // The directory fsync after the `.swap` rename fails: that rename may
    // or may not be durable.
    disk.fail_times(DiskOp::SyncDir, "", libc::EIO, Some(1));
    assert!(log.install_cleaned(&cleaned, T0).is_err());
    assert_eq!(disk.injected(), 1);
    assert!(log.is_poisoned());
    let swaps = || files_ending(dir.path(), ".swap");
    assert_eq!(swaps().len(), 1, "failed at the commit point");
    // Nothing changes the log until a reopen: not an append, retention,
    // DeleteRecords or the cleaner.
    let segments = log.segment_count();
    log.set_config(LogConfig {
        cleanup_policy: CleanupPolicy::CompactDelete,
        retention_bytes: 0,
        ..compacted()
    });
    assert!(
        log.append(&keyed_batch(&[(Some(b"k"), Some(b"v"))], T0), T0)
            .is_err()
    );
    assert_eq!(log.apply_retention(T0).unwrap(), 0);
    assert_eq!(log.segment_count(), segments);
    assert!(matches!(
        log.delete_records_before(10),
        Err(Error::Poisoned)
    ));
    assert!(log.clean_job(0, T0).is_none());
    assert_eq!(read_records(&log), before);
    assert!(
        matches!(log.close(), Err(Error::Poisoned)),
        "no clean marker"
    );
    // The reopen completes the swap: the latest value of each key, at its offset.
    let log = Log::open(dir.path(), compacted(), T0).unwrap();
    let after = read_records(&log);
    assert!(after.len() < before.len(), "cleaned");
    assert_eq!(latest(&after), latest(&before));
    assert!(swaps().is_empty());
}

#[test]
fn a_log_that_failed_while_its_cleaning_ran_does_not_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    for i in 0..60 {
        put(&mut log, &format!("k{}", i % 5), Some(&format!("v{i}")), T0);
    }
    let before = read_records(&log);
    let job = log.clean_job(0, T0).expect("dirty enough");
    let cleaned = job.run(&mut OffsetMap::new(1 << 16), T0).unwrap();
    let written = files_ending(dir.path(), ".cleaned");
    assert!(!written.is_empty());
    // A produce's fsync failed meanwhile.
    log.poison();
    assert!(matches!(
        log.install_cleaned(&cleaned, T0),
        Err(Error::Poisoned)
    ));
    assert_eq!(read_records(&log), before);
    assert_eq!(
        files_ending(dir.path(), ".cleaned"),
        written,
        "left to the next open"
    );
    assert!(files_ending(dir.path(), ".swap").is_empty());
}

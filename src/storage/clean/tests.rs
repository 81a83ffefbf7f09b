use std::collections::BTreeMap;

use super::records;
use super::swap::swap_name;
use super::*;
use crate::storage::testing::{keyed_batch, transactional_batch};
use crate::storage::{CleanupPolicy, Log, LogConfig};

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 24 * 60 * 60 * 1000;

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        segment_index_bytes: 1200,
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// (offset, key, value) of every record, read from the log start.
type Rows = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

fn read_records(log: &Log) -> Rows {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < log.end_offset() {
        let bytes = log.read(offset, usize::MAX).unwrap().read().unwrap();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let batch = RecordBatch::parse(rest).unwrap();
            assert_eq!(
                crate::storage::crc32c(&batch.as_bytes()[21..]),
                BatchHeader::parse(rest).unwrap().crc,
                "a cleaned batch keeps a valid CRC"
            );
            if !batch.is_control() {
                let raw = records::raw_records(&batch).unwrap();
                for r in records::parse(&batch, &raw).unwrap() {
                    if r.offset >= offset {
                        out.push((
                            r.offset,
                            r.key.map(<[u8]>::to_vec),
                            r.value.map(<[u8]>::to_vec),
                        ));
                    }
                }
            }
            offset = batch.last_offset() + 1;
            rest = &rest[batch.size()..];
        }
    }
    out
}

fn put(log: &mut Log, key: &str, value: Option<&str>, now: i64) -> i64 {
    let b = keyed_batch(&[(Some(key.as_bytes()), value.map(str::as_bytes))], now);
    log.append(&b, now).unwrap().base_offset
}

/// One whole pass: plan, run, install. Returns the next first dirty offset.
fn clean(log: &mut Log, first_dirty: i64, now: i64) -> i64 {
    let Some(job) = log.clean_job(first_dirty, now) else {
        return first_dirty;
    };
    let cleaned = job.run(&mut OffsetMap::new(1 << 16), now).unwrap();
    log.install_cleaned(&cleaned, now).unwrap();
    cleaned.next_dirty
}

/// The latest value of every key among `rows`.
fn latest(rows: &Rows) -> BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> {
    let mut map = BTreeMap::new();
    for (offset, key, value) in rows {
        map.insert(key.clone().unwrap(), (*offset, value.clone()));
    }
    map
}

#[test]
fn sealed_segments_keep_only_the_latest_record_of_each_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    for i in 0..200 {
        put(&mut log, &format!("k{}", i % 7), Some(&format!("v{i}")), T0);
    }
    let before = read_records(&log);
    let segments_before = log.segment_count();
    let active = log.active_base_offset();
    let next_dirty = clean(&mut log, 0, T0);
    assert_eq!(next_dirty, active);
    let after = read_records(&log);
    // Below the active segment: exactly the latest record of each key there.
    let sealed_before: Rows = before.iter().filter(|r| r.0 < active).cloned().collect();
    let expected: Vec<i64> = {
        let mut offsets: Vec<i64> = latest(&sealed_before).values().map(|(o, _)| *o).collect();
        offsets.sort_unstable();
        offsets
    };
    let sealed_after: Vec<i64> = after.iter().filter(|r| r.0 < active).map(|r| r.0).collect();
    assert_eq!(sealed_after, expected);
    for row in after.iter().filter(|r| r.0 < active) {
        assert!(
            before.contains(row),
            "{row:?} is an original record at its offset"
        );
    }
    // The active segment is untouched and the latest values are unchanged.
    assert_eq!(
        after.iter().filter(|r| r.0 >= active).collect::<Vec<_>>(),
        before.iter().filter(|r| r.0 >= active).collect::<Vec<_>>()
    );
    assert_eq!(latest(&after), latest(&before));
    assert_eq!(
        log.segment_count(),
        segments_before,
        "groups are formed by size before cleaning"
    );
    assert_eq!(log.end_offset(), 200);
    // Reads from an offset that was cleaned away return the next kept record.
    let gap = (0..active).find(|o| !sealed_after.contains(o)).unwrap();
    let slice = log.read(gap, 1).unwrap().read().unwrap();
    let batch = RecordBatch::parse(&slice).unwrap();
    assert!(batch.last_offset() >= gap);
    // Reopening (clean and unclean) gives the same records.
    drop(log);
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    assert_eq!(read_records(&log), after);
    // The next pass merges the small cleaned segments.
    for i in 200..300 {
        put(&mut log, &format!("k{}", i % 7), Some(&format!("v{i}")), T0);
    }
    let segments = log.segment_count();
    clean(&mut log, next_dirty, T0);
    assert!(
        log.segment_count() < segments / 2,
        "{} of {segments}",
        log.segment_count()
    );
}

#[test]
fn a_tombstone_removes_its_key_and_goes_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    put(&mut log, "gone", Some("old"), T0);
    put(&mut log, "kept", Some("v"), T0);
    let tombstone = put(&mut log, "gone", None, T0);
    for i in 0..60 {
        put(&mut log, &format!("filler{i}"), Some("x"), T0);
    }
    let dirty = clean(&mut log, 0, T0);
    let rows = read_records(&log);
    assert!(
        !rows
            .iter()
            .any(|r| r.2.as_deref() == Some(b"old".as_slice()))
    );
    assert!(
        rows.contains(&(tombstone, Some(b"gone".to_vec()), None)),
        "the tombstone stays for now"
    );
    // Later cleanings keep it until delete.retention.ms has passed since the first.
    for i in 60..120 {
        put(&mut log, &format!("filler{i}"), Some("x"), T0);
    }
    let dirty = clean(&mut log, dirty, T0 + DAY - 1);
    assert!(read_records(&log).iter().any(|r| r.0 == tombstone));
    for i in 120..180 {
        put(&mut log, &format!("filler{i}"), Some("x"), T0);
    }
    clean(&mut log, dirty, T0 + DAY);
    let rows = read_records(&log);
    assert!(
        !rows
            .iter()
            .any(|r| r.1.as_deref() == Some(b"gone".as_slice())),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.1.as_deref() == Some(b"kept".as_slice()))
    );
}

#[test]
fn aborted_records_are_dropped_and_committed_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    let aborted = transactional_batch(7, 0, 0, 3, T0);
    let aborted_at = log.append_transactional(&aborted, T0).unwrap().base_offset;
    log.append_marker((7, 0), false, 0, T0).unwrap();
    let committed = transactional_batch(8, 0, 0, 1, T0);
    let committed_at = log
        .append_transactional(&committed, T0)
        .unwrap()
        .base_offset;
    log.append_marker((8, 0), true, 0, T0).unwrap();
    for i in 0..40 {
        put(&mut log, &format!("k{i}"), Some("x"), T0);
    }
    clean(&mut log, 0, T0);
    let rows = read_records(&log);
    assert!(
        !rows
            .iter()
            .any(|r| (aborted_at..aborted_at + 3).contains(&r.0)),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.0 == committed_at));
    assert_eq!(log.last_stable_offset(), log.end_offset());
}

#[test]
fn an_interrupted_cleaning_opens_to_the_old_or_the_new_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    for i in 0..150 {
        put(&mut log, &format!("k{}", i % 5), Some(&format!("v{i}")), T0);
    }
    let dirty = clean(&mut log, 0, T0);
    for i in 150..250 {
        put(&mut log, &format!("k{}", i % 5), Some(&format!("v{i}")), T0);
    }
    let before = read_records(&log);
    let job = log.clean_job(dirty, T0).unwrap();
    let cleaned = job.run(&mut OffsetMap::new(1 << 16), T0).unwrap();
    assert!(!cleaned.groups.is_empty());
    // Crash before the commit point: the .cleaned files go, nothing changed.
    drop(log);
    let log = Log::open(dir.path(), compacted(), T0).unwrap();
    assert_eq!(read_records(&log), before);
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("cleaned"))
    );

    // Crash after the commit point, with some old files already removed:
    // the swap completes at open.
    let job = log.clean_job(dirty, T0).unwrap();
    let cleaned = job.run(&mut OffsetMap::new(1 << 16), T0).unwrap();
    let group = &cleaned.groups[0];
    let replaced = group.replaced.clone();
    assert!(group.replaced.len() > 1, "the first group merges segments");
    let swap = dir.path().join(swap_name(group.base(), group.next));
    std::fs::rename(&group.path, &swap).unwrap();
    let second = group.replaced[1].0;
    std::fs::remove_file(dir.path().join(file_name(second, "log"))).unwrap();
    for g in &cleaned.groups[1..] {
        std::fs::remove_file(&g.path).unwrap();
    }
    drop(log);
    let log = Log::open(dir.path(), compacted(), T0).unwrap();
    let after = read_records(&log);
    assert_eq!(latest(&after), latest(&before));
    for (base, _) in &replaced[1..] {
        assert!(
            !dir.path().join(file_name(*base, "log")).exists(),
            "merged away: {base}"
        );
    }
    for row in &after {
        assert!(before.contains(row));
    }
    assert_eq!(log.end_offset(), 250);
}

#[test]
fn a_small_dedupe_buffer_cleans_in_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    for i in 0..300 {
        put(
            &mut log,
            &format!("k{}", i % 40),
            Some(&format!("v{i}")),
            T0,
        );
    }
    let before = read_records(&log);
    let active = log.active_base_offset();
    let mut dirty = 0;
    let mut passes = 0;
    while let Some(job) = log.clean_job(dirty, T0) {
        // Room for 18 keys: a pass cannot map all 40.
        let cleaned = job
            .run(&mut OffsetMap::new(20 * offset_map::SLOT_BYTES), T0)
            .unwrap();
        assert!(cleaned.next_dirty > dirty);
        log.install_cleaned(&cleaned, T0).unwrap();
        dirty = cleaned.next_dirty;
        passes += 1;
        assert!(passes < 50);
    }
    assert!(passes > 1);
    let after = read_records(&log);
    assert_eq!(latest(&after), latest(&before));
    let sealed: Rows = after.iter().filter(|r| r.0 < active).cloned().collect();
    assert_eq!(
        sealed.len(),
        latest(&sealed).len(),
        "one record per key below the active segment"
    );
}

#[test]
fn keyless_records_and_non_compacted_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacted();
    config.cleanup_policy = CleanupPolicy::Delete;
    let mut log = Log::open(dir.path(), config.clone(), T0).unwrap();
    for i in 0..50 {
        let b = keyed_batch(&[(None, Some(format!("v{i}").as_bytes()))], T0);
        log.append(&b, T0).unwrap();
    }
    assert!(log.clean_job(0, T0).is_none(), "delete policy: no cleaning");
    config.cleanup_policy = CleanupPolicy::Compact;
    log.set_config(config);
    clean(&mut log, 0, T0);
    let active = log.active_base_offset();
    assert!(
        read_records(&log).iter().all(|r| r.0 >= active),
        "keyless records are not kept by compaction"
    );
}

mod faults;
mod model;
mod ranges;

#[test]
fn a_log_not_dirty_enough_is_planned_without_opening_its_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    for i in 0..60 {
        put(&mut log, &format!("k{}", i % 5), Some("value"), T0);
    }
    let active = log.active_base_offset();
    assert!(log.sealed_segments().len() > 3);
    log.close().unwrap();

    let open = crate::storage::OpenSegments::new(100);
    let disk = crate::storage::real_unbounded().0;
    let log = Log::open_on(dir.path(), compacted(), T0, 0, (disk, open.clone())).unwrap();
    assert_eq!(open.open_now(), 0, "a clean reopen opens no sealed file");
    // Everything below the active segment is clean: nothing to do, nothing opened.
    assert!(log.clean_job(active, T0).is_none());
    assert_eq!(open.open_now(), 0);
    // A job that runs opens the files it reads.
    assert!(log.clean_job(0, T0).is_some());
    assert!(open.open_now() > 0);
}

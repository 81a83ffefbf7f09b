//! Random produce / tombstone / clean / crash sequences against a model:
//! every record read is an original one at its offset; each key's
//! latest record is never lost (a tombstone may go, taking its key);
//! after a pass, nothing below its end is older than the latest record
//! of its key there; a crash at any step of a swap opens to the old or
//! the new segments.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, bool),
    Clean(u8),
    /// Crash after a pass's files are written: 0 before the commit
    /// point, 1 after it, 2 after it with the old files removed.
    CrashDuringClean(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u8..6, prop::bool::weighted(0.15)).prop_map(|(k, t)| Op::Put(k, t)),
        2 => (0u8..3).prop_map(Op::Clean),
        1 => (0u8..3).prop_map(Op::CrashDuringClean),
        1 => Just(Op::Reopen),
    ]
}

/// Each key's latest record among `rows` below `upto`.
fn latest_below(rows: &Rows, upto: i64) -> BTreeMap<Vec<u8>, i64> {
    rows.iter()
        .filter(|r| r.0 < upto)
        .map(|r| (r.1.clone().unwrap(), r.0))
        .collect()
}

fn check(log: &Log, written: &Rows) {
    let rows = read_records(log);
    for row in &rows {
        assert!(
            written.contains(row),
            "{row:?} was never written at its offset"
        );
    }
    for (key, offset) in latest_below(written, i64::MAX) {
        let original = written.iter().find(|r| r.0 == offset).unwrap();
        let kept = rows.iter().any(|r| r.0 == offset);
        assert!(
            kept || original.2.is_none(),
            "the latest value of {key:?} (offset {offset}) is gone"
        );
        if !kept {
            assert!(
                !rows.iter().any(|r| r.1.as_deref() == Some(&key[..])),
                "an older value of deleted {key:?} came back"
            );
        }
    }
    assert_eq!(log.end_offset(), written.len() as i64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn cleaning_never_loses_a_latest_value_nor_keeps_an_older_one(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = compacted();
        config.segment_bytes = 300;
        config.delete_retention_ms = 1000;
        let mut log = Log::open(dir.path(), config.clone(), T0).unwrap();
        let mut written: Rows = Vec::new();
        let mut dirty = 0;
        let mut now = T0;
        for op in ops {
            match op {
                Op::Put(k, tombstone) => {
                    let key = format!("k{k}");
                    let value = format!("v{}", written.len());
                    let offset = put(&mut log, &key, (!tombstone).then_some(value.as_str()), now);
                    written.push((offset, Some(key.into_bytes()), (!tombstone).then(|| value.into_bytes())));
                }
                Op::Clean(advance) => {
                    now += i64::from(advance) * 600;
                    if let Some(job) = log.clean_job(dirty, now) {
                        let cleaned = job.run(&mut OffsetMap::new(1 << 12), now).unwrap();
                        log.install_cleaned(&cleaned, now).unwrap();
                        dirty = cleaned.next_dirty;
                        // Below the pass's end, each key keeps at most its latest record.
                        let latest = latest_below(&written, dirty);
                        for row in read_records(&log).iter().filter(|r| r.0 < dirty) {
                            prop_assert_eq!(latest[row.1.as_ref().unwrap()], row.0, "older record kept: {:?}", row);
                        }
                    }
                }
                Op::CrashDuringClean(step) => {
                    if let Some(job) = log.clean_job(dirty, now) {
                        let cleaned = job.run(&mut OffsetMap::new(1 << 12), now).unwrap();
                        if step > 0 && let Some(group) = cleaned.groups.first() {
                            let swap = dir.path().join(swap_name(group.base(), group.next));
                            std::fs::rename(&group.path, &swap).unwrap();
                            if step > 1 {
                                for (base, _) in &group.replaced[1..] {
                                    let _ = std::fs::remove_file(dir.path().join(file_name(*base, "log")));
                                }
                            }
                        }
                    }
                    drop(log);
                    log = Log::open(dir.path(), config.clone(), now).unwrap();
                    dirty = 0;
                }
                Op::Reopen => {
                    log.close().unwrap();
                    log = Log::open(dir.path(), config.clone(), now).unwrap();
                }
            }
            check(&log, &written);
        }
    }
}

//! What a pass maps, and from where: batches past the end of its map, a
//! batch larger than the map (and its tombstones past the map), a
//! transaction open in a sealed segment, a checkpoint past the log's end.

use super::*;

/// A pass leaves what lies past the end of its map as it is: a tombstone
/// there neither gets its horizon nor goes, while the record it deletes,
/// before it and not yet superseded in any map, is still there. Dropping it
/// brought the deleted value back.
#[test]
fn records_past_the_map_are_left_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), expiring_at_once(), T0).unwrap();
    put(&mut log, "k", Some("old"), T0);
    // Two passes' worth of keys from "k" to its tombstone, in one segment.
    for i in 0..3 {
        put(&mut log, &format!("a{i}"), Some("x"), T0);
    }
    put(&mut log, "k", None, T0);
    for i in 0..40 {
        put(&mut log, &format!("b{i}"), Some("x"), T0);
    }
    // Room for two keys: each pass maps two batches.
    let passes = clean_in_two_key_passes(&mut log, &["k"]);
    assert!(passes > 1);
}

/// A transaction open in a sealed segment stops a pass at that segment's
/// base, not at its own first offset: the pass after it commits maps that
/// segment whole. Stopping at the transaction left the segment's start
/// unmapped for good: a tombstone there expired while the value it
/// deleted, never superseded, stayed.
#[test]
fn a_transaction_open_in_a_sealed_segment_leaves_nothing_unmapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), expiring_at_once(), T0).unwrap();
    let mut filler = 0;
    let mut fill_until_roll = |log: &mut Log| {
        let base = log.active_base_offset();
        while log.active_base_offset() == base {
            put(log, &format!("f{filler}"), Some("x"), T0);
            filler += 1;
        }
    };
    put(&mut log, "k", Some("old"), T0);
    fill_until_roll(&mut log);
    put(&mut log, "k", None, T0);
    let open = transactional_batch(7, 0, 0, 1, T0);
    log.append_transactional(&open, T0).unwrap();
    fill_until_roll(&mut log);
    // Past the transaction's start, in a sealed segment: the first pass
    // cleans only the segment before.
    let mut dirty = clean(&mut log, 0, T0);
    log.append_marker((7, 0), true, 0, T0).unwrap();
    // Rounds of new records and passes: one stamps the tombstone's
    // horizon, a later one may drop it.
    let mut passes = 0;
    for _ in 0..3 {
        fill_until_roll(&mut log);
        fill_until_roll(&mut log);
        while let Some(job) = log.clean_job(dirty, T0) {
            let cleaned = job.run(&mut OffsetMap::new(1 << 16), T0).unwrap();
            log.install_cleaned(&cleaned, T0).unwrap();
            dirty = cleaned.next_dirty;
            passes += 1;
            assert!(passes < 20);
            let k = latest(&read_records(&log)).get(b"k".as_slice()).cloned();
            assert!(
                k.as_ref().is_none_or(|(_, value)| value.is_none()),
                "pass {passes}: k is back: {k:?}"
            );
        }
    }
    assert!(passes >= 3);
}

/// A first dirty offset past the log's end (a tail lost in a crash after
/// the cleaner's checkpoint) starts over from the log start, as in Kafka,
/// instead of waiting for the log to grow past it.
#[test]
fn a_checkpoint_past_the_end_cleans_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    for i in 0..40 {
        put(&mut log, &format!("k{}", i % 4), Some("v"), T0);
    }
    let past = log.end_offset() + 100;
    let job = log.clean_job(past, T0).expect("a pass from the start");
    let cleaned = job.run(&mut OffsetMap::new(1 << 16), T0).unwrap();
    assert!(cleaned.next_dirty <= log.end_offset());
    log.install_cleaned(&cleaned, T0).unwrap();
    let sealed = log.active_base_offset();
    let rows: Rows = read_records(&log)
        .into_iter()
        .filter(|r| r.0 < sealed)
        .collect();
    assert_eq!(
        rows.len(),
        latest(&rows).len(),
        "one record per key below the active segment"
    );
}

/// A batch with more keys than the whole map holds is mapped part by part,
/// one pass after another, and its tombstones get their horizon only from
/// the pass that maps the last of them. Such a batch stopped every pass
/// before it, so the log was never cleaned again.
#[test]
fn a_batch_larger_than_the_map_is_cleaned_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), expiring_at_once(), T0).unwrap();
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let batch = |value: &dyn Fn(usize) -> Option<&'static [u8]>| {
        let records: Vec<_> = (0..keys.len())
            .map(|i| (Some(keys[i].as_bytes()), value(i)))
            .collect();
        keyed_batch(&records, T0)
    };
    log.append(&batch(&|_| Some(b"v1".as_slice())), T0).unwrap();
    // k0..k4 deleted, k5..k9 replaced, in one batch.
    let second = batch(&|i| (i >= 5).then_some(b"v2".as_slice()));
    let last = log.append(&second, T0).unwrap().base_offset + 9;
    seal_through(&mut log, last);
    // Room for two keys: a batch of ten takes five passes.
    let deleted: Vec<&str> = keys[..5].iter().map(String::as_str).collect();
    let passes = clean_in_two_key_passes(&mut log, &deleted);
    assert!(passes >= 10, "{passes} passes");
    let rows = read_records(&log);
    let sealed: Vec<String> = rows
        .iter()
        .filter(|(o, ..)| *o <= last)
        .map(|(_, k, v)| {
            let text = |b: &Option<Vec<u8>>| {
                b.as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            format!("{:?}={:?}", text(k), text(v))
        })
        .collect();
    let expected: Vec<String> = (5..10)
        .map(|i| format!("Some({:?})=Some(\"v2\")", format!("k{i}")))
        .collect();
    assert_eq!(
        sealed, expected,
        "only the latest values are left, their tombstones gone"
    );
}

/// A tombstone in the part of a batch past the map stays even when its
/// batch came with a delete horizon already past (a producer may set that
/// bit): it was never mapped, so the value it deletes was not removed.
/// Dropping it brought that value back.
#[test]
fn a_tombstone_past_the_map_stays_whatever_its_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    put(&mut log, "k", Some("old"), T0);
    let sent = keyed_batch(
        &[
            (Some(b"a".as_slice()), Some(b"x".as_slice())),
            (Some(b"b".as_slice()), Some(b"x".as_slice())),
            (Some(b"c".as_slice()), Some(b"x".as_slice())),
            (Some(b"k".as_slice()), None),
        ],
        T0,
    );
    let sent = RecordBatch::parse(&sent).unwrap();
    let raw = records::raw_records(&sent).unwrap();
    let all = records::parse(&sent, &raw).unwrap();
    let mut expired = Vec::new();
    records::rebuild(&sent, &all, Some(T0 - 1), &mut expired).unwrap();
    let last = log.append(&expired, T0).unwrap().base_offset + 3;
    seal_through(&mut log, last);
    // Room for two keys: the second pass maps the batch in part.
    clean_in_two_key_passes(&mut log, &["k"]);
}

/// Cleans with a map of room for two keys per pass until no pass is due,
/// checking that each pass gets on and that none of the `deleted` keys has
/// a value again after it; returns the number of passes.
fn clean_in_two_key_passes(log: &mut Log, deleted: &[&str]) -> usize {
    let mut dirty = 0;
    let mut passes = 0;
    while let Some(job) = log.clean_job(dirty, T0) {
        let cleaned = job
            .run(&mut OffsetMap::new(3 * offset_map::SLOT_BYTES), T0)
            .unwrap();
        log.install_cleaned(&cleaned, T0).unwrap();
        assert!(cleaned.next_dirty > dirty, "pass {passes} got nowhere");
        dirty = cleaned.next_dirty;
        passes += 1;
        assert!(passes < 100);
        let latest = latest(&read_records(log));
        for key in deleted {
            let value = latest.get(key.as_bytes()).map(|(_, v)| v.clone());
            assert!(
                value.as_ref().is_none_or(Option::is_none),
                "pass {passes}: {key} is back: {value:?}"
            );
        }
    }
    passes
}

/// Appends filler records until `last` lies in a sealed segment.
fn seal_through(log: &mut Log, last: i64) {
    let mut filler = 0;
    while log.active_base_offset() <= last {
        put(log, &format!("f{filler}"), Some("x"), T0);
        filler += 1;
    }
}

/// A compacted log whose tombstones may go on the pass after the one that
/// stamps their horizon.
fn expiring_at_once() -> LogConfig {
    LogConfig {
        delete_retention_ms: 0,
        ..compacted()
    }
}

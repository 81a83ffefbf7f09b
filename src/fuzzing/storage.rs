//! The `record_batch` and `recovery` targets: batches appended to scratch
//! logs, and partition directories left by a crash.

use std::sync::Mutex;

use super::{INPUTS_PER_SCRATCH, NOW_MS, Scratch, log_config};
use crate::storage::testing::as_stored;
use crate::storage::{Log, RecordBatch, TimestampType};

pub(super) static LOGS: Mutex<Option<Logs>> = Mutex::new(None);

pub(super) struct Logs {
    logs: Vec<Log>,
    inputs: u32,
    _dir: Scratch,
}

fn new_logs() -> Logs {
    let dir = Scratch::new("logs");
    let logs = [TimestampType::CreateTime, TimestampType::LogAppendTime]
        .into_iter()
        .enumerate()
        .map(|(i, t)| Log::open(&dir.0.join(format!("t-{i}")), log_config(t), NOW_MS).expect("log"))
        .collect();
    Logs {
        logs,
        inputs: 0,
        _dir: dir,
    }
}

/// Parses `data` as a record batch, then appends it to two scratch logs.
/// Panics if a view disagrees with its bytes or an append breaks the log.
pub fn record_batch(data: &[u8]) {
    if let Ok(batch) = RecordBatch::parse(data) {
        assert_eq!(batch.as_bytes().len(), batch.size());
        assert!(batch.size() <= data.len());
        if batch.validate().is_ok() {
            assert!(batch.record_count() > 0);
            assert_eq!(
                batch.last_offset(),
                batch
                    .base_offset()
                    .saturating_add(i64::from(batch.last_offset_delta()))
            );
        }
    }
    let mut slot = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|l| l.inputs >= INPUTS_PER_SCRATCH) {
        *slot = None;
        *slot = Some(new_logs());
    }
    let Some(logs) = slot.as_mut() else { return };
    logs.inputs += 1;
    for log in &mut logs.logs {
        append_checked(log, data);
    }
}

/// Appends `data`: either it reads back exactly as the log stores it (see
/// [`as_stored`]), after everything that was there, or nothing changes.
fn append_checked(log: &mut Log, data: &[u8]) {
    let end = log.end_offset();
    let before = read_all(log, log.start_offset());
    match log.append(data, NOW_MS) {
        Ok(info) if !info.duplicate => {
            assert_eq!(info.base_offset, end, "first offset assigned");
            assert_eq!(log.end_offset(), info.last_offset + 1, "end offset");
            let after = read_all(log, log.start_offset());
            let append_time = (info.log_append_time >= 0).then_some(info.log_append_time);
            let stored = as_stored(data, info.base_offset, append_time);
            assert_eq!(after.len(), before.len() + data.len(), "bytes appended");
            assert!(after[..before.len()] == before[..], "old bytes changed");
            assert!(after[before.len()..] == stored[..], "new bytes differ");
        }
        _ => {
            assert_eq!(log.end_offset(), end, "end offset moved");
            assert!(read_all(log, log.start_offset()) == before, "log changed");
        }
    }
}

/// Every byte from the batch holding `from` to the end offset. Panics unless
/// the reads return whole, CRC-valid batches with increasing offsets ending
/// there (gaps are allowed: a compacted log has them, and in a compacted log
/// the offsets up to the end may hold no batch at all).
fn read_all(log: &Log, from: i64) -> Vec<u8> {
    let end = log.end_offset();
    let compacted = log.config().cleanup_policy.compacts();
    let mut out = Vec::new();
    let mut offset = from;
    while offset < end {
        let bytes = log
            .read(offset, 64 * 1024)
            .and_then(|s| {
                s.read()
                    .map_err(|e| crate::storage::Error::io(log.dir(), e))
            })
            .unwrap_or_else(|e| panic!("read at {offset} (end {end}): {e}"));
        if bytes.is_empty() && compacted {
            return out;
        }
        assert!(!bytes.is_empty(), "nothing at {offset} below end {end}");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let batch = RecordBatch::parse(rest).expect("whole batch");
            batch.validate().expect("valid batch");
            if out.is_empty() {
                assert!(
                    batch.last_offset() >= offset,
                    "a read returns what holds {offset}"
                );
            } else {
                assert!(batch.base_offset() >= offset, "offsets increase");
            }
            out.extend_from_slice(batch.as_bytes());
            offset = batch.last_offset() + 1;
            rest = &rest[batch.size()..];
        }
    }
    assert_eq!(offset.max(from), end, "reads end at the end offset");
    out
}

/// Splits the input into length-prefixed (u16 BE) parts; the last part may be short.
fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return std::mem::take(data);
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (part, rest) = rest.split_at(len);
    *data = rest;
    part
}

/// Writes the partition directory described by `data` and opens it as a log
/// after a crash. Layout: a flags byte (bits 0-1: how many segments follow
/// the first, up to three; bit 2: the log is compacted, so its segments
/// may end before the next begins), then for each following segment a u32 BE gap
/// from the previous base offset (at least 1), then `.log`, `.index`,
/// `.timeindex` of each segment as u16-length-prefixed parts. Any of them
/// may be damaged.
pub fn recovery(data: &[u8]) {
    let mut data = data;
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    data = rest;
    let mut bases = vec![0i64];
    for _ in 0..(flags & 3) {
        let Some((gap, rest)) = data.split_first_chunk::<4>() else {
            return;
        };
        data = rest;
        let previous = bases.last().copied().unwrap_or(0);
        bases.push(previous + i64::from(u32::from_be_bytes(*gap)).max(1));
    }
    let dir = Scratch::new("recovery");
    let partition = dir.0.join("t-0");
    std::fs::create_dir_all(&partition).expect("partition dir");
    for base in &bases {
        for ext in ["log", "index", "timeindex"] {
            let path = partition.join(format!("{base:020}.{ext}"));
            std::fs::write(&path, take(&mut data)).expect("write segment file");
        }
    }
    let mut config = log_config(TimestampType::CreateTime);
    if flags & 4 != 0 {
        config.cleanup_policy = crate::storage::CleanupPolicy::Compact;
    }
    let Ok(mut log) = Log::open(&partition, config, NOW_MS) else {
        return;
    };
    // With no recovery point every segment was scanned: the whole log must
    // read back as whole, valid batches with increasing offsets.
    let start = log.start_offset();
    read_all(&log, start);
    let valid = crate::storage::testing::batch(&[(b"k", b"v")], NOW_MS);
    append_checked_from(&mut log, &valid, start);
}

/// [`append_checked`] with the strict reads starting at `from`.
fn append_checked_from(log: &mut Log, data: &[u8], from: i64) {
    let end = log.end_offset();
    let info = log.append(data, NOW_MS).expect("append after recovery");
    assert_eq!(info.base_offset, end);
    let after = read_all(log, from);
    let append_time = (info.log_append_time >= 0).then_some(info.log_append_time);
    let stored = as_stored(data, info.base_offset, append_time);
    assert!(after.ends_with(&stored), "appended batch reads back");
}

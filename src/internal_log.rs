//! Internal logs: `__consumer_offsets-0` and `__transaction_state-0` under
//! the data directory. Each is a compacted log of keyed records (Kafka's
//! key and value schemas, a null value deleting its key), replayed from its
//! start when the broker opens and kept small by the log cleaner, like any
//! compacted topic. Their owners (the coordinators) keep the state in memory
//! and serialise appends under their own lock.

use std::path::Path;

use bytes::Buf;

use crate::error::{Result, io_err};
use crate::storage::{CleanJob, Cleaned, CleanupPolicy, Log, LogConfig, LogFiles, SyncTarget};
use crate::util::now_ms;

/// Bytes of keys and values per batch of waiting records that
/// [`InternalLog::append_after`] writes.
const BATCH_BYTES: usize = 1024 * 1024;

/// The largest batch an internal log takes.
pub(crate) const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Bytes asked of the log per read while replaying.
const REPLAY_READ_BYTES: usize = 8 * 1024 * 1024;

/// One record: its key, and its value or `None` (a tombstone).
pub(crate) type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Where a replayed record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A plain batch: the record counts as it is read.
    Plain,
    /// A transactional batch of this producer: the record counts once a
    /// COMMIT marker of the producer follows, and never after an ABORT.
    Transaction(i64),
    /// The COMMIT (`true`) or ABORT marker of this producer's transaction.
    Marker(i64, bool),
}

/// An internal log; `None` once closed.
#[derive(Debug)]
pub(crate) struct InternalLog {
    log: Option<Log>,
}

impl InternalLog {
    /// Opens (creating if needed) `<data_dir>/<dir>` on `files` (the
    /// partition logs' disk and open-file bound) and replays every record
    /// into `apply(origin, offset, key, value)`, in offset order.
    pub(crate) fn open(
        (data_dir, files): (&Path, LogFiles),
        dir: &str,
        segment_bytes: u64,
        mut apply: impl FnMut(Origin, i64, &[u8], Option<&[u8]>),
    ) -> Result<InternalLog> {
        let config = LogConfig {
            segment_bytes,
            segment_index_bytes: 1024 * 1024,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: MAX_BATCH_BYTES as u32,
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        let log = Log::open_on(&data_dir.join(dir), config, now_ms(), 0, files)?;
        let mut position = log.start_offset();
        while position < log.end_offset() {
            let bytes = log
                .read(position, REPLAY_READ_BYTES)?
                .read()
                .map_err(io_err(log.dir()))?;
            match replay(&bytes, position, &mut apply) {
                Some(next) if next > position => position = next,
                _ => {
                    tracing::warn!(
                        dir,
                        position,
                        "unreadable batch in an internal log; stopped replaying there"
                    );
                    break;
                }
            }
        }
        Ok(InternalLog { log: Some(log) })
    }

    fn log(&mut self) -> Result<&mut Log> {
        self.log.as_mut().ok_or_else(|| {
            crate::Error::api(
                kafka_protocol::ResponseError::CoordinatorNotAvailable,
                "the internal log is closed",
            )
        })
    }

    /// Appends `records` as one batch; returns the offset of the last one.
    pub(crate) fn append(&mut self, records: &[KeyValue]) -> Result<i64> {
        self.append_after(&[], records)
    }

    /// Appends `waiting` (records a failed write left, however many) in
    /// batches of at most [`BATCH_BYTES`], then `records` as one batch, all
    /// or none; returns the offset of the last record.
    pub(crate) fn append_after(
        &mut self,
        waiting: &[KeyValue],
        records: &[KeyValue],
    ) -> Result<i64> {
        if waiting.is_empty() && records.is_empty() {
            return Ok(self.log()?.end_offset() - 1);
        }
        let now = now_ms();
        let mut batches = Vec::new();
        let mut rest = waiting;
        while !rest.is_empty() {
            let mut bytes = 0;
            let n = rest
                .iter()
                .take_while(|(key, value)| {
                    bytes += key.len() + value.as_ref().map_or(0, Vec::len);
                    bytes <= BATCH_BYTES
                })
                .count()
                .max(1);
            batches.extend(batch(&rest[..n], now));
            rest = &rest[n..];
        }
        if !records.is_empty() {
            batches.extend(batch(records, now));
        }
        let info = self.log()?.append(&batches, now)?;
        Ok(info.last_offset)
    }

    /// Appends `records` as one transactional batch of `producer` (id,
    /// epoch), next in its sequence: they count only once
    /// [`InternalLog::append_marker`] commits the producer's transaction.
    /// Returns the offset of the last.
    pub(crate) fn append_transactional(
        &mut self,
        records: &[KeyValue],
        (producer_id, epoch): (i64, i16),
    ) -> Result<i64> {
        let log = self.log()?;
        let sequence = match log.producer_state(producer_id) {
            Some((current, last)) if current == epoch => last.wrapping_add(1).max(0),
            _ => 0,
        };
        let now = now_ms();
        let batch = encode(records, now, Some((producer_id, epoch, sequence)));
        Ok(log.append_transactional(&batch, now)?.last_offset)
    }

    /// Ends `producer`'s transaction in this log with a COMMIT (`commit`)
    /// or ABORT marker; returns its offset.
    pub(crate) fn append_marker(&mut self, producer: (i64, i16), commit: bool) -> Result<i64> {
        let now = now_ms();
        Ok(self
            .log()?
            .append_marker(producer, commit, 0, now)?
            .last_offset)
    }

    /// The offset the next record gets (`i64::MAX` once closed).
    pub(crate) fn end_offset(&self) -> i64 {
        self.log.as_ref().map_or(i64::MAX, Log::end_offset)
    }

    /// Every transaction open in this log: (producer id, epoch, first offset).
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.log
            .as_ref()
            .map_or_else(Vec::new, Log::open_transactions)
    }

    /// Appends `records` and fsyncs before returning.
    pub(crate) fn append_durably(&mut self, records: &[KeyValue]) -> Result<()> {
        self.append(records)?;
        self.sync()
    }

    /// fsyncs everything appended so far.
    pub(crate) fn sync(&mut self) -> Result<()> {
        let log = self.log()?;
        let target = log.sync_target();
        if let Err(e) = target.sync() {
            if e.poisons {
                log.poison();
            }
            return Err(io_err(&e.path)(e.error));
        }
        log.mark_synced(&target);
        Ok(())
    }

    /// The cleaning the log needs now, if any.
    pub(crate) fn clean_job(&self, first_dirty: i64) -> Option<CleanJob> {
        self.log.as_ref()?.clean_job(first_dirty, now_ms())
    }

    /// Swaps in what a [`CleanJob`] wrote.
    pub(crate) fn install_cleaned(&mut self, cleaned: &Cleaned) -> Result<()> {
        self.log()?.install_cleaned(cleaned, now_ms())?;
        Ok(())
    }

    /// Files to fsync for everything appended so far, and the offsets they cover.
    pub(crate) fn sync_target(&mut self) -> Result<SyncTarget> {
        Ok(self.log()?.sync_target())
    }

    pub(crate) fn synced_offset(&self) -> i64 {
        self.log.as_ref().map_or(i64::MAX, Log::synced_offset)
    }

    pub(crate) fn mark_synced(&mut self, target: &SyncTarget) {
        if let Some(log) = self.log.as_mut() {
            log.mark_synced(target);
        }
    }

    pub(crate) fn poison(&mut self) {
        if let Some(log) = self.log.as_mut() {
            log.poison();
        }
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.log.as_ref().is_some_and(Log::is_poisoned)
    }

    /// Closes the log cleanly; later appends fail with COORDINATOR_NOT_AVAILABLE.
    pub(crate) fn close(&mut self) -> Result<()> {
        match self.log.take() {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }
}

/// Encodes `records` as one uncompressed RecordBatch v2 (base offset 0, no producer).
pub(crate) fn batch(records: &[KeyValue], timestamp: i64) -> Vec<u8> {
    encode(records, timestamp, None)
}

/// [`batch`], transactional when `producer` (id, epoch, base sequence) is given.
fn encode(records: &[KeyValue], timestamp: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let (producer_id, epoch, sequence) = producer.unwrap_or((-1, -1, -1));
    let attributes: i16 = if producer.is_some() { TRANSACTIONAL } else { 0 };
    let mut out = Vec::with_capacity(61 + 64 * records.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset, assigned by the log
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, patched below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    out.extend_from_slice(&attributes.to_be_bytes()); // no compression, CreateTime
    out.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&(records.len() as i32).to_be_bytes());
    for (delta, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0u8]; // record attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64);
        put_varint(&mut body, key.len() as i64);
        body.extend_from_slice(key);
        match value {
            Some(v) => {
                put_varint(&mut body, v.len() as i64);
                body.extend_from_slice(v);
            }
            None => put_varint(&mut body, -1),
        }
        put_varint(&mut body, 0); // headers
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crate::storage::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Batch attribute bits (Kafka's).
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

/// Walks whole batches in `bytes`, calling `f(origin, offset, key, value)`
/// for every record at or above `from`. Stops at the first malformed batch
/// and returns the next offset after the last batch walked.
pub(crate) fn replay(
    mut bytes: &[u8],
    from: i64,
    mut f: impl FnMut(Origin, i64, &[u8], Option<&[u8]>),
) -> Option<i64> {
    let mut next = None;
    while bytes.len() >= 61 {
        let base = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let len = usize::try_from(i32::from_be_bytes(bytes[8..12].try_into().ok()?)).ok()?;
        if len < 49 {
            return None;
        }
        let batch = bytes.get(..12 + len)?;
        let attributes = i16::from_be_bytes(batch[21..23].try_into().ok()?);
        let last_delta = i32::from_be_bytes(batch[23..27].try_into().ok()?);
        let producer_id = i64::from_be_bytes(batch[43..51].try_into().ok()?);
        if attributes & 0x07 != 0 {
            tracing::warn!(base, "skipping a compressed batch in an internal log");
        } else {
            let mut records = batch.get(61..)?;
            while !records.is_empty() {
                let (offset, key, value) = record(&mut records, base)?;
                let origin = if attributes & CONTROL != 0 {
                    // The control record's key: version, then type (1: COMMIT).
                    Origin::Marker(producer_id, key.get(2..4) == Some(&[0, 1]))
                } else if attributes & TRANSACTIONAL != 0 {
                    Origin::Transaction(producer_id)
                } else {
                    Origin::Plain
                };
                if offset >= from {
                    f(origin, offset, key, value);
                }
            }
        }
        next = Some(base + i64::from(last_delta) + 1);
        bytes = bytes.get(12 + len..)?;
    }
    next
}

type Record<'a> = (i64, &'a [u8], Option<&'a [u8]>);

fn record<'a>(b: &mut &'a [u8], base: i64) -> Option<Record<'a>> {
    let len = usize::try_from(get_varint(b)?).ok()?;
    let mut r = take(b, len)?;
    take(&mut r, 1)?; // attributes
    get_varint(&mut r)?; // timestamp delta
    let offset = base + get_varint(&mut r)?;
    let key_len = usize::try_from(get_varint(&mut r)?).ok()?;
    let key = take(&mut r, key_len)?;
    let value_len = get_varint(&mut r)?;
    let value = if value_len < 0 {
        None
    } else {
        Some(take(&mut r, value_len as usize)?)
    };
    Some((offset, key, value))
}

/// Big-endian integers of Kafka's key and value schemas, advancing `b`;
/// `None` when too few bytes are left.
pub(crate) fn get_i16(b: &mut &[u8]) -> Option<i16> {
    (b.len() >= 2).then(|| b.get_i16())
}

pub(crate) fn get_i32(b: &mut &[u8]) -> Option<i32> {
    (b.len() >= 4).then(|| b.get_i32())
}

pub(crate) fn get_i64(b: &mut &[u8]) -> Option<i64> {
    (b.len() >= 8).then(|| b.get_i64())
}

fn take<'a>(b: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, tail) = (b.get(..len)?, b.get(len..)?);
    *b = tail;
    Some(head)
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    crate::storage::put_varint(out, value);
}

fn get_varint(b: &mut &[u8]) -> Option<i64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *take(b, 1)?.first()?;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&mut out.as_slice()), Some(v));
        }
    }

    #[test]
    fn records_past_a_batchs_limit_are_appended_in_several_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = (dir.path(), crate::storage::real_unbounded());
        let mut log = InternalLog::open(at.clone(), "x-0", 64 << 20, |_, _, _, _| {}).unwrap();
        // 40 MiB waiting: more than the log takes in one batch (16 MiB).
        let records: Vec<KeyValue> = (0..40u8)
            .map(|i| (vec![i], Some(vec![i; 1024 * 1024])))
            .collect();
        assert_eq!(log.append_after(&records, &[]).unwrap(), 39);
        log.close().unwrap();
        let mut seen = Vec::new();
        InternalLog::open(at, "x-0", 64 << 20, |origin, offset, key, value| {
            assert_eq!(origin, Origin::Plain);
            seen.push((offset, key.to_vec(), value.map_or(0, <[u8]>::len)));
        })
        .unwrap();
        let want: Vec<_> = (0..40u8)
            .map(|i| (i64::from(i), vec![i], 1024 * 1024))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn records_round_trip_through_a_batch_and_a_replay() {
        let records: Vec<KeyValue> = vec![
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), None),
            (b"c".to_vec(), Some(Vec::new())),
        ];
        let mut bytes = batch(&records, 7);
        bytes[0..8].copy_from_slice(&10i64.to_be_bytes());
        let mut seen = Vec::new();
        let next = replay(&bytes, 11, |_, o, k, v| {
            seen.push((o, k.to_vec(), v.map(<[u8]>::to_vec)))
        });
        assert_eq!(next, Some(13));
        assert_eq!(
            seen,
            vec![
                (11, b"b".to_vec(), None),
                (12, b"c".to_vec(), Some(Vec::new()))
            ]
        );
    }
}

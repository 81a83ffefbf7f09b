//! Internal logs: `__consumer_offsets-0` and `__transaction_state-0` under
//! the data directory. Each is a compacted log of keyed records (Kafka's
//! key and value schemas, a null value deleting its key), replayed from its
//! start when the broker opens and kept small by the log cleaner, like any
//! compacted topic. Their owners (the coordinators) keep the state in memory
//! and serialise appends under their own lock.

use std::path::Path;

use crate::error::{Result, io_err};
use crate::storage::{CleanJob, Cleaned, CleanupPolicy, Log, LogConfig, LogFiles, SyncTarget};
use crate::util::now_ms;

mod batches;

use batches::encode;
pub(crate) use batches::{KeyValue, Origin, batch, get_i16, get_i32, get_i64, replay};

/// Bytes of keys and values per batch of waiting records that
/// [`InternalLog::append_after`] writes.
const BATCH_BYTES: usize = 1024 * 1024;

/// The largest batch an internal log takes.
pub(crate) const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Bytes asked of the log per read while replaying.
const REPLAY_READ_BYTES: usize = 8 * 1024 * 1024;

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

    /// Closes the log cleanly; later appends fail with COORDINATOR_NOT_AVAILABLE.
    pub(crate) fn close(&mut self) -> Result<()> {
        match self.log.take() {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }
}

/// For group commit of its fsyncs ([`crate::flush::FlushTurn`]); a closed
/// log has nothing left to sync.
impl crate::flush::Syncable for InternalLog {
    fn synced_offset(&self) -> i64 {
        self.log.as_ref().map_or(i64::MAX, Log::synced_offset)
    }
    /// Files to fsync for everything appended so far, and the offsets they cover.
    fn sync_target(&mut self) -> Result<SyncTarget> {
        Ok(self.log()?.sync_target())
    }
    fn mark_synced(&mut self, target: &SyncTarget) {
        if let Some(log) = self.log.as_mut() {
            log.mark_synced(target);
        }
    }
    fn poison(&mut self) {
        if let Some(log) = self.log.as_mut() {
            log.poison();
        }
    }
    fn is_poisoned(&self) -> bool {
        self.log.as_ref().is_some_and(Log::is_poisoned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

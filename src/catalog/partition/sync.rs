//! A partition's fsyncs: group commit, the flusher's passes, and what
//! readers see of a log under `flush = "always"` (only what is fsynced).

use std::sync::atomic::Ordering;

use kafka_protocol::ResponseError;

use super::lifecycle::lock;
use super::{Offsets, Partition};
use crate::error::{Error, Result};
use crate::storage::Log;

impl Partition {
    /// The offsets readers are given. Under `flush = "always"` the high
    /// watermark stops at what is fsynced, as producers are answered only
    /// then: a consumer must not read, and commit past, records that a
    /// power loss can still take (their producer, not answered, sends them
    /// again, and the group would skip them).
    pub(super) fn offsets_of(&self, log: &Log) -> Offsets {
        let mut offsets = Offsets::of(log);
        if self.synced_reads.load(Ordering::Acquire) {
            offsets.high_watermark = offsets.high_watermark.min(log.synced_records());
            offsets.last_stable = offsets.last_stable.min(offsets.high_watermark);
        }
        offsets
    }

    /// Wakes the background flusher when a roll left a sealed segment
    /// unsynced (once, until [`Partition::flush_rolled`] has run).
    pub(super) fn flush_if_rolled(&self, log: &Log) {
        if !log.is_poisoned() && log.synced_offset() < log.active_base_offset() {
            self.sync_later();
        }
    }

    /// Returns once everything below `offset + 1` is fsynced; concurrent
    /// callers share one fsync. A failed fsync fails the partition for good
    /// (KAFKA_STORAGE_ERROR until restart).
    pub async fn sync_through(&self, offset: i64) -> Result<()> {
        self.check_live()?;
        // A log not opened since the start has nothing unsynced.
        let Some(log) = self.log.get() else {
            return Ok(());
        };
        let what = || format!("{}-{}", self.topic, self.index);
        let synced = self.flush.sync_through(|| lock(log), offset, what).await;
        // Deleted while it ran: its files went with the directory.
        self.check_live()?;
        match &synced {
            // Readers waiting for what is fsynced see it now.
            Ok(()) => self.publish(&lock(log)),
            // Readers wait for it: the flusher tries again, unless the log
            // failed for good.
            Err(_) if self.synced_reads.load(Ordering::Acquire) && !lock(log).is_poisoned() => {
                self.sync_later()
            }
            Err(_) => {}
        }
        synced
    }

    /// Has the flusher sync the log: after a roll, or (under `flush =
    /// "always"`) a sync that failed without failing the log.
    pub(super) fn sync_later(&self) {
        if !self.rolled.swap(true, Ordering::AcqRel) {
            self.flush_wanted.notify_one();
        }
    }

    /// fsyncs everything appended so far, holding the log lock throughout:
    /// for start-up, before anything else uses the partition.
    pub(crate) fn flush_blocking(&self) -> Result<()> {
        let Some(log) = self.log.get() else {
            return Ok(());
        };
        let mut log = lock(log);
        if log.is_poisoned() {
            return Err(crate::flush::failed());
        }
        let target = log.sync_target();
        if let Err(e) = target.sync() {
            if e.poisons {
                log.poison();
            }
            return Err(Error::api(ResponseError::KafkaStorageError, e.to_string()));
        }
        log.mark_synced(&target);
        self.publish(&log);
        Ok(())
    }

    /// fsyncs everything appended so far.
    pub async fn flush(&self) -> Result<()> {
        // The log's end: the high watermark may wait for this very sync.
        let Some(log) = self.log.get() else {
            return Ok(());
        };
        let end = lock(log).end_offset();
        self.sync_through(end - 1).await
    }

    /// fsyncs the sealed segments if a roll left any unsynced (the active
    /// segment's bytes may be fsynced with them), or, under `flush =
    /// "always"`, all that [`Partition::sync_later`] asked for. A sync that
    /// failed without failing the log (out of descriptors) leaves them to
    /// the flusher's next pass.
    pub(crate) async fn flush_rolled(&self) -> Result<()> {
        if !self.rolled.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let through = {
            let log = self.log()?;
            // Under flush = "always" readers wait for all of it.
            if self.synced_reads.load(Ordering::Acquire) {
                log.end_offset()
            } else {
                log.active_base_offset()
            }
        };
        let synced = self.sync_through(through - 1).await;
        if synced.is_err() && !self.log()?.is_poisoned() {
            self.rolled.store(true, Ordering::Release);
        }
        synced
    }
}

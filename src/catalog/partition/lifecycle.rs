//! A partition's life: opened now or on first use, the transactions a
//! previous run left open aborted as its log opens, its settings and
//! recovery point readable whether it is open or not, and closed cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use kafka_protocol::ResponseError;
use tokio::sync::{Notify, watch};

use super::{Offsets, Partition};
use crate::error::{Error, Result};
use crate::flush::FlushTurn;
use crate::storage::{self, ClosedLog, Log, LogConfig, LogFiles};
use crate::util::now_ms;

/// The arguments of [`Log::open_on`] for a partition not opened yet.
#[derive(Debug)]
pub(super) struct Unopened {
    /// Shared by the topic's partitions.
    config: Arc<LogConfig>,
    recovery_point: i64,
    files: LogFiles,
    /// Once set (by the transaction coordinator's recovery), opening the
    /// log aborts the transactions left open in it by a previous run.
    abort_leftovers: Arc<AtomicBool>,
    /// What the clean close recorded, read when first asked.
    closed: OnceLock<Option<ClosedLog>>,
}

/// Locks `mutex`. A panic while holding a partition's locks cannot leave a
/// log half-written (appends are all-or-nothing), so poisoning is ignored.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Partition {
    /// The partition whose log is in `dir` on `disk`. With `lazily`, the log
    /// is opened when first used (a start on many partitions reads nothing
    /// of theirs until then); otherwise now, creating it if needed. After an
    /// unclean stop the segments at or past `recovery_point` are scanned
    /// when it opens. `flush_wanted` is notified when a rolled segment waits
    /// for its fsync; see [`Unopened`] for `abort_leftovers`.
    pub(crate) fn open(
        dir: &std::path::Path,
        (topic, index): (&str, i32),
        config: Arc<LogConfig>,
        (recovery_point, files, lazily): (i64, LogFiles, bool),
        (flush_wanted, abort_leftovers, synced_reads): (
            Arc<Notify>,
            Arc<AtomicBool>,
            Arc<AtomicBool>,
        ),
    ) -> Result<Partition> {
        let partition = Partition {
            topic: topic.to_string(),
            index,
            dir: dir.to_path_buf(),
            log: OnceLock::new(),
            unopened: Mutex::new(Some(Unopened {
                config,
                recovery_point,
                files,
                abort_leftovers,
                closed: OnceLock::new(),
            })),
            flush: FlushTurn::default(),
            offsets: watch::channel(Offsets {
                log_start: 0,
                high_watermark: 0,
                last_stable: 0,
            })
            .0,
            deleted: AtomicBool::new(false),
            rolled: AtomicBool::new(false),
            flush_wanted,
            synced_reads,
        };
        if !lazily {
            partition.opened()?;
        }
        Ok(partition)
    }

    /// The log's mutex, opening the log if this is its first use. A failed
    /// open (out of descriptors) is KAFKA_STORAGE_ERROR, and is tried again
    /// on the next use.
    pub(super) fn opened(&self) -> Result<&Mutex<Log>> {
        if let Some(log) = self.log.get() {
            return Ok(log);
        }
        // A deleted partition's directory must not be created again.
        self.check_live()?;
        let mut unopened = lock(&self.unopened);
        if let Some(log) = self.log.get() {
            return Ok(log);
        }
        // Deleted while this waited for the lock.
        self.check_live()?;
        let Some(how) = unopened.as_ref() else {
            return Err(Error::api(
                ResponseError::KafkaStorageError,
                "the partition's log is gone",
            ));
        };
        let mut log = Log::open_on(
            &self.dir,
            how.config.clone(),
            now_ms(),
            how.recovery_point,
            how.files.clone(),
        )
        .map_err(|e| Error::api(ResponseError::KafkaStorageError, e.to_string()))?;
        if how.abort_leftovers.load(Ordering::Acquire) {
            self.abort_leftovers(&mut log)?;
        }
        *unopened = None;
        self.publish(&log);
        Ok(self.log.get_or_init(|| Mutex::new(log)))
    }

    /// While the log is not opened, what its clean close recorded (see
    /// [`storage::closed_log`]): the status page, `/metrics` and ListOffsets
    /// show every partition without opening each one. Not for a log that
    /// stopped inside a transaction: opening it may abort that one, moving
    /// its offsets.
    pub(super) fn closed_summary(&self) -> Option<ClosedLog> {
        if self.log.get().is_some() || self.check_live().is_err() {
            return None;
        }
        let unopened = lock(&self.unopened);
        unopened
            .as_ref()?
            .closed
            .get_or_init(|| storage::closed_log(&self.dir))
            .filter(|closed| closed.last_stable_offset == closed.end_offset)
    }

    /// Aborts every transaction open in `log`. Right after a start no
    /// transaction is ongoing (the coordinator aborted or finished them all),
    /// so each one open here is a leftover of the previous run.
    fn abort_leftovers(&self, log: &mut Log) -> Result<()> {
        let open = log.open_transactions();
        for &(producer_id, epoch, _) in &open {
            tracing::warn!(topic = %self.topic, partition = self.index, producer_id, "aborting a transaction no state accounts for");
            log.append_marker((producer_id, epoch), false, 0, now_ms())?;
        }
        if !open.is_empty() && self.synced_reads.load(Ordering::Acquire) {
            // Readers wait for what is fsynced, and no produce syncs these.
            self.sync_later();
        }
        Ok(())
    }

    /// [`Partition::abort_leftovers`] of a log opened before the
    /// coordinator's recovery ended (those opened later do it as they open).
    pub(crate) fn abort_leftover_transactions(&self) -> Result<()> {
        if let Some(log) = self.log.get() {
            let mut log = lock(log);
            self.abort_leftovers(&mut log)?;
            self.publish(&log);
        }
        Ok(())
    }

    /// Locks the log, opening it first if needed.
    pub(super) fn log(&self) -> Result<MutexGuard<'_, Log>> {
        let log = lock(self.opened()?);
        // Deleted while this waited for the lock: the directory is being
        // removed, and nothing may open or create a file in it.
        self.check_live()?;
        Ok(log)
    }

    /// `read` of the log's config, whether the log is open or not.
    pub(super) fn config<T>(&self, read: impl FnOnce(&LogConfig) -> T) -> T {
        read(&self.shared_config())
    }

    /// The log's settings, as the handle the topic's partitions share.
    pub(crate) fn shared_config(&self) -> Arc<LogConfig> {
        self.open_or_not(Log::shared_config, |how| how.config.clone())
            .unwrap_or_default()
    }

    /// Every offset below this is fsynced.
    pub(crate) fn recovery_point(&self) -> i64 {
        self.open_or_not(Log::recovery_point, |how| how.recovery_point)
            .unwrap_or(0)
    }

    /// `open` of the log if it is open, else `unopened` of how it will
    /// open; neither (a partition deleted before its log opened) gives
    /// `None`. Never opens it.
    fn open_or_not<T>(
        &self,
        open: impl Fn(&Log) -> T,
        unopened: impl FnOnce(&Unopened) -> T,
    ) -> Option<T> {
        if let Some(log) = self.log.get() {
            return Some(open(&lock(log)));
        }
        // The log may open between the two looks; `unopened` is taken under
        // its lock as the log is published, so one of them holds the answer.
        let how = lock(&self.unopened);
        match (how.as_ref(), self.log.get()) {
            (Some(how), _) => Some(unopened(how)),
            (None, Some(log)) => Some(open(&lock(log))),
            (None, None) => None,
        }
    }

    pub(crate) fn set_config(&self, config: Arc<LogConfig>) {
        let mut unopened = lock(&self.unopened);
        match (unopened.as_mut(), self.log.get()) {
            (Some(how), _) => how.config = config,
            (None, Some(log)) => lock(log).set_config(config),
            (None, None) => {}
        }
    }

    /// Closes the log cleanly (fsync, trimmed indexes, clean-shutdown
    /// marker); returns its recovery point. A log never opened is left as
    /// it was found, with the recovery point it had.
    pub(crate) fn close(self) -> std::result::Result<i64, storage::Error> {
        match self.log.into_inner() {
            Some(log) => {
                let log = log.into_inner().unwrap_or_else(|e| e.into_inner());
                let end = log.end_offset();
                log.close()?;
                Ok(end)
            }
            None => Ok(lock(&self.unopened)
                .as_ref()
                .map_or(0, |how| how.recovery_point)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{DiskOp, FaultyDisk, batch, files_ending, transactional_batch};

    /// A partition in `dir` on `disk`, created now; with `synced_reads`, as
    /// under `flush = "always"`.
    fn partition_on(
        dir: &std::path::Path,
        disk: &Arc<FaultyDisk>,
        synced_reads: bool,
    ) -> Partition {
        Partition::open(
            dir,
            ("t", 0),
            Arc::new(LogConfig::default()),
            (0, disk.unbounded(), false),
            (
                Arc::new(Notify::new()),
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(synced_reads)),
            ),
        )
        .unwrap()
    }

    /// A sync that passed the deleted check just before a delete takes the
    /// log after it: the `.txnindex` entry it would have written late is
    /// not written into the directory being removed.
    #[test]
    fn a_deleted_partition_writes_no_late_txnindex_entry() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let partition = partition_on(dir.path(), &disk, false);
        {
            let mut log = partition.log().unwrap();
            log.append_transactional(&transactional_batch(7, 0, 0, 3, 0), 0)
                .unwrap();
            // The abort's entry cannot be written: it waits for the next sync.
            disk.fail(DiskOp::Open, ".txnindex", libc::EMFILE);
            log.append_marker((7, 0), false, 0, 0).unwrap();
        }
        disk.clear();
        partition.mark_deleted();
        let log = partition.log.get().unwrap();
        let target = lock(log).sync_target();
        target.sync().unwrap();
        assert_eq!(files_ending(dir.path(), ".txnindex"), Vec::<String>::new());
    }

    /// Under `flush = "always"` a failed sync has the flusher try again,
    /// unless the fsync failed: that log is failed until a restart, and
    /// the flusher would only fail with it.
    #[tokio::test]
    async fn a_log_whose_fsync_failed_is_not_handed_to_the_flusher() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let partition = partition_on(dir.path(), &disk, true);
        partition.append(&batch(&[(b"k", b"v")], 0)).unwrap();
        disk.fail(DiskOp::Sync, "", libc::EIO);
        assert!(partition.sync_through(0).await.is_err());
        assert!(partition.log().unwrap().is_poisoned());
        assert!(!partition.rolled.load(Ordering::Acquire));
    }

    /// Under `flush = "always"` DeleteRecords stops at the high watermark:
    /// records not fsynced yet are not readable, nor deleted.
    #[tokio::test]
    async fn delete_records_stops_at_the_high_watermark_of_what_is_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let partition = partition_on(dir.path(), &disk, true);
        partition.append(&batch(&[(b"k", b"a")], 0)).unwrap();
        partition.sync_through(0).await.unwrap();
        partition.append(&batch(&[(b"k", b"b")], 0)).unwrap();
        assert_eq!(partition.watch().borrow().high_watermark, 1);
        let past = partition.delete_records(2).unwrap_err();
        assert!(past.is(ResponseError::OffsetOutOfRange), "{past}");
        assert_eq!(partition.delete_records(-1).unwrap(), 1);
    }
}

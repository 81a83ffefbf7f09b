//! Flushing a log to disk by group commit: whoever holds the turn fsyncs everything appended so far, and
//! every waiter whose data that covered returns without an fsync of its own.
//! Used by partition logs (`flush = "always"`) and by the offsets log.

use std::ops::DerefMut;

use kafka_protocol::ResponseError;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::storage::{Log, SyncTarget};

/// What a group commit needs from the log it makes durable.
pub(crate) trait Syncable {
    /// Every offset below this is durable.
    fn synced_offset(&self) -> i64;
    /// The files to fsync and the end offset they cover.
    fn sync_target(&mut self) -> Result<SyncTarget>;
    /// Records that `target` was fsynced.
    fn mark_synced(&mut self, target: &SyncTarget);
    /// Refuses further appends: the fsync failed.
    fn poison(&mut self);
    /// True after [`Syncable::poison`].
    fn is_poisoned(&self) -> bool;
}

impl Syncable for Log {
    fn synced_offset(&self) -> i64 {
        Log::synced_offset(self)
    }
    fn sync_target(&mut self) -> Result<SyncTarget> {
        Ok(Log::sync_target(self))
    }
    fn mark_synced(&mut self, target: &SyncTarget) {
        Log::mark_synced(self, target);
    }
    fn poison(&mut self) {
        Log::poison(self);
    }
    fn is_poisoned(&self) -> bool {
        Log::is_poisoned(self)
    }
}

/// The turn to fsync one log.
#[derive(Debug, Default)]
pub(crate) struct FlushTurn {
    turn: Mutex<()>,
}

impl FlushTurn {
    /// Returns once everything up to `offset` is fsynced. `log` locks the log
    /// briefly; it is never held across the fsync, which runs on a blocking
    /// thread (a `.txnindex` entry written late is the exception:
    /// [`Log::sync_target`]). `what` names the log in the error logged if
    /// the fsync fails.
    pub(crate) async fn sync_through<L, G>(
        &self,
        log: impl Fn() -> G,
        offset: i64,
        what: impl Fn() -> String,
    ) -> Result<()>
    where
        L: Syncable,
        G: DerefMut<Target = L>,
    {
        if log().synced_offset() > offset {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        if log().synced_offset() > offset {
            return Ok(());
        }
        if log().is_poisoned() {
            // IMPORTANT: after a failed fsync, another one may succeed with
            // the dirty pages dropped: nothing counts as synced any more.
            return Err(failed());
        }
        let target = log().sync_target()?;
        let started = std::time::Instant::now();
        let synced = tokio::task::spawn_blocking(move || target.sync().map(|()| target)).await;
        crate::observe::observe_fsync(started.elapsed());
        match synced {
            Ok(Ok(target)) => {
                let mut log = log();
                if log.is_poisoned() {
                    // It failed while this fsync ran: this one counts for nothing.
                    return Err(failed());
                }
                log.mark_synced(&target);
                Ok(())
            }
            Ok(Err(e)) if !e.poisons => {
                // No fsync failed: a file could not be opened for want of a
                // descriptor or memory. Nothing is lost; this request fails
                // and a later sync tries again.
                tracing::warn!(log = %what(), error = %e, "could not sync");
                Err(Error::api(ResponseError::KafkaStorageError, e.to_string()))
            }
            failed => {
                // IMPORTANT: after a failed fsync the page cache cannot be trusted; stop.
                tracing::error!(log = %what(), ?failed, "fsync failed; the log refuses writes from now on");
                log().poison();
                Err(Error::api(ResponseError::KafkaStorageError, "fsync failed"))
            }
        }
    }
}

/// A log that failed (an fsync, or a cleaner swap) refuses writes until
/// the broker restarts.
pub(crate) fn failed() -> Error {
    Error::api(
        ResponseError::KafkaStorageError,
        "this log failed (an fsync or a cleaner swap) and refuses writes until the broker restarts",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::storage::LogConfig;
    use crate::storage::testing::{DiskOp, FaultyDisk, batch};

    /// A log on `disk` holding `appends` batches, in segments of 1 KiB.
    fn log_on(
        dir: &std::path::Path,
        disk: &std::sync::Arc<FaultyDisk>,
        appends: usize,
    ) -> StdMutex<Log> {
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let mut log = Log::open_on(dir, config, 0, 0, disk.unbounded()).unwrap();
        for _ in 0..appends {
            log.append(&batch(&[(b"k", &[7; 100])], 0), 0).unwrap();
        }
        StdMutex::new(log)
    }

    #[tokio::test]
    async fn after_a_failed_fsync_no_later_fsync_counts() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let log = log_on(dir.path(), &disk, 1);
        let lock = || log.lock().unwrap();
        let turn = FlushTurn::default();
        disk.fail_times(DiskOp::Sync, "", libc::EIO, Some(1));
        assert!(turn.sync_through(lock, 0, String::new).await.is_err());
        // The fault is gone and a second fsync would succeed, with whatever
        // pages the first one dropped: it is refused.
        assert!(turn.sync_through(lock, 0, String::new).await.is_err());
        assert_eq!(disk.injected(), 1);
        assert_eq!(lock().synced_offset(), 0);
        let target = lock().sync_target();
        target.sync().unwrap();
        lock().mark_synced(&target);
        assert_eq!(lock().synced_offset(), 0, "a poisoned log counts no sync");
    }

    #[tokio::test]
    async fn a_sync_that_cannot_open_a_file_fails_but_a_later_one_counts() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let log = log_on(dir.path(), &disk, 30);
        let lock = || log.lock().unwrap();
        let end = lock().end_offset();
        assert!(lock().active_base_offset() > 0, "the appends rolled");
        let turn = FlushTurn::default();
        // Out of descriptors when opening a sealed index to fsync it.
        disk.fail_times(DiskOp::Open, ".index", libc::EMFILE, Some(1));
        let refused = turn.sync_through(lock, end - 1, String::new).await;
        assert!(
            matches!(&refused, Err(e) if e.to_string().contains("Too many open files")),
            "{refused:?}"
        );
        assert_eq!(disk.injected(), 1);
        assert!(!lock().is_poisoned(), "no fsync failed");
        assert!(lock().synced_offset() < end);
        turn.sync_through(lock, end - 1, String::new).await.unwrap();
        assert_eq!(lock().synced_offset(), end);
        lock().append(&batch(&[(b"k", b"v")], 0), 0).unwrap();
    }

    #[tokio::test]
    async fn a_sync_that_cannot_open_a_file_for_another_reason_poisons_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let log = log_on(dir.path(), &disk, 30);
        let lock = || log.lock().unwrap();
        let end = lock().end_offset();
        disk.fail_times(DiskOp::Open, ".index", libc::EIO, Some(1));
        let turn = FlushTurn::default();
        assert!(turn.sync_through(lock, end - 1, String::new).await.is_err());
        assert!(
            lock().is_poisoned(),
            "an open that fails with EIO will not pass"
        );
    }
}

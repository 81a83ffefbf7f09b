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
}

/// The turn to fsync one log.
#[derive(Debug, Default)]
pub(crate) struct FlushTurn {
    turn: Mutex<()>,
}

impl FlushTurn {
    /// Returns once everything up to `offset` is fsynced. `log` locks the log
    /// briefly; it is never held across the fsync, which runs on a blocking
    /// thread. `what` names the log in the error logged if the fsync fails.
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
        let target = log().sync_target()?;
        let started = std::time::Instant::now();
        let synced = tokio::task::spawn_blocking(move || target.sync().map(|()| target)).await;
        crate::observe::observe_fsync(started.elapsed());
        match synced {
            Ok(Ok(target)) => {
                log().mark_synced(&target);
                Ok(())
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

//! The internal offsets log `<data_dir>/__consumer_offsets-0`: append entries
//! and replay them at start-up. It is a compacted log (Kafka's key and value
//! schemas, tombstones for deletions): the log cleaner keeps the latest
//! entry of each key, as for any compacted topic.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::codec::{self, Entry, GroupValue, OffsetValue};
use crate::storage::{CleanJob, Cleaned, CleanupPolicy, Log, LogConfig, SyncTarget};
use crate::util::now_ms;

/// Directory name of the internal partition.
pub(crate) const OFFSETS_DIR: &str = "__consumer_offsets-0";
/// Bytes asked of the log per read while replaying.
const REPLAY_READ_BYTES: usize = 8 * 1024 * 1024;

/// What replaying the log yields: the latest value of every live key.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) groups: HashMap<String, GroupValue>,
    pub(crate) offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>>,
}

impl Restored {
    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                let offsets = self.offsets.entry(group).or_default();
                match value {
                    Some(v) => offsets.insert((topic, partition), v),
                    None => offsets.remove(&(topic, partition)),
                };
            }
            Entry::Group {
                group,
                value: Some(v),
            } => {
                self.groups.insert(group, v);
            }
            Entry::Group { group, value: None } => {
                self.groups.remove(&group);
            }
        }
    }
}

/// The internal log. Not thread-safe: the coordinator keeps it under the
/// same lock as the group state, so the log order always matches the order
/// of in-memory changes.
#[derive(Debug)]
pub(crate) struct Store {
    log: Option<Log>,
}

impl Store {
    /// Opens (creating if needed) the internal log under `data_dir` and replays it.
    pub(crate) fn open(data_dir: &Path, segment_bytes: u64) -> crate::Result<(Store, Restored)> {
        let config = LogConfig {
            segment_bytes,
            segment_index_bytes: 1024 * 1024,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: 16 * 1024 * 1024,
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        let log = Log::open(&data_dir.join(OFFSETS_DIR), config, now_ms())?;
        let mut restored = Restored::default();
        let mut position = log.start_offset();
        while position < log.end_offset() {
            let bytes = log
                .read(position, REPLAY_READ_BYTES)?
                .read()
                .map_err(crate::error::io_err(log.dir()))?;
            match codec::replay(&bytes, position, |_, e| restored.apply(e)) {
                Some(next) if next > position => position = next,
                _ => {
                    tracing::warn!(
                        position,
                        "unreadable batch in the offsets log; stopped replaying there"
                    );
                    break;
                }
            }
        }
        Ok((Store { log: Some(log) }, restored))
    }

    fn log(&mut self) -> crate::Result<&mut Log> {
        self.log.as_mut().ok_or_else(|| {
            crate::Error::api(
                kafka_protocol::ResponseError::CoordinatorNotAvailable,
                "the offsets log is closed",
            )
        })
    }

    /// Appends `entries` as one batch; returns the offset of the last one.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> crate::Result<i64> {
        if entries.is_empty() {
            return Ok(self.log()?.end_offset() - 1);
        }
        let mut batch = codec::batch(entries, now_ms());
        let info = self.log()?.append(&mut batch, now_ms())?;
        Ok(info.last_offset)
    }

    /// The cleaning the log needs now, if any (see `storage::CleanJob`).
    pub(crate) fn clean_job(&self, first_dirty: i64) -> Option<CleanJob> {
        self.log.as_ref()?.clean_job(first_dirty, now_ms())
    }

    /// Swaps in what a [`CleanJob`] wrote.
    pub(crate) fn install_cleaned(&mut self, cleaned: &Cleaned) -> crate::Result<()> {
        self.log()?.install_cleaned(cleaned, now_ms())?;
        Ok(())
    }

    /// Files to fsync for everything appended so far, and the offsets they cover.
    pub(crate) fn sync_target(&mut self) -> crate::Result<SyncTarget> {
        Ok(self.log()?.sync_target())
    }

    pub(crate) fn synced_offset(&self) -> i64 {
        self.log.as_ref().map_or(i64::MAX, Log::synced_offset)
    }

    pub(crate) fn mark_synced(&mut self, end: i64) {
        if let Some(log) = self.log.as_mut() {
            log.mark_synced(end);
        }
    }

    pub(crate) fn poison(&mut self) {
        if let Some(log) = self.log.as_mut() {
            log.poison();
        }
    }

    /// Closes the log cleanly; later appends fail with COORDINATOR_NOT_AVAILABLE.
    pub(crate) fn close(&mut self) -> crate::Result<()> {
        match self.log.take() {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }
}

//! The log of one partition.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{LogConfig, Result};

/// Outcome of a successful [`Log::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record of the first batch.
    pub base_offset: i64,
    /// Offset of the last record of the last batch.
    pub last_offset: i64,
    /// The broker time written into the batches under LogAppendTime, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// The batch was an idempotent retry already stored: nothing was written.
    pub duplicate: bool,
}

/// Bytes of whole batches in one segment file, readable without the log lock.
#[derive(Debug, Clone)]
pub struct ReadSlice {
    file: Option<Arc<File>>,
    position: u64,
    len: usize,
}

impl ReadSlice {
    /// A slice of no bytes.
    pub fn empty() -> ReadSlice {
        ReadSlice {
            file: None,
            position: 0,
            len: 0,
        }
    }
    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Reads the bytes from the file (pread).
    pub fn read(&self) -> std::io::Result<Bytes> {
        let _ = (&self.file, self.position);
        todo!()
    }
}

/// Files to fsync for group commit; see [`Log::sync_target`].
#[derive(Debug)]
pub struct SyncTarget {
    /// The log end offset when the target was taken.
    pub end_offset: i64,
    files: Vec<Arc<File>>,
}

impl SyncTarget {
    /// fsyncs (sync_data) every file.
    pub fn sync(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// The log of one partition.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
}

#[allow(unused_variables)]
impl Log {
    /// Opens (creating if missing) the partition directory `dir`.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log> {
        todo!()
    }
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The current settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// Replaces the settings.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    /// Validates and appends batches.
    pub fn append(&mut self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo> {
        todo!()
    }
    /// Whole batches from the one containing `offset`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadSlice> {
        todo!()
    }
    /// Log start offset.
    pub fn start_offset(&self) -> i64 {
        todo!()
    }
    /// Log end offset.
    pub fn end_offset(&self) -> i64 {
        todo!()
    }
    /// Sum of segment sizes.
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }
    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        todo!()
    }
    /// First batch whose max timestamp >= ts.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        todo!()
    }
    /// Largest timestamp and its offset.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        todo!()
    }
    /// DeleteRecords.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        todo!()
    }
    /// Removes everything at and above `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        todo!()
    }
    /// Applies retention and time-based rolling.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        todo!()
    }
    /// Files to fsync for group commit.
    pub fn sync_target(&mut self) -> SyncTarget {
        todo!()
    }
    /// Records that a sync target was fsynced.
    pub fn mark_synced(&mut self, target_end_offset: i64) {
        todo!()
    }
    /// Offsets below this are fsynced.
    pub fn synced_offset(&self) -> i64 {
        todo!()
    }
    /// Marks the log failed.
    pub fn poison(&mut self) {
        todo!()
    }
    /// Clean close.
    pub fn close(self) -> Result<()> {
        todo!()
    }
    /// Deletes the directory.
    pub fn delete(self) -> Result<()> {
        todo!()
    }
    /// Idempotent-producer state.
    pub fn producer_state(&self, producer_id: i64) -> Option<(i16, i32)> {
        todo!()
    }
}

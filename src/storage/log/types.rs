//! The values a log hands out: append outcomes, read slices, sync targets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::storage::Disk;
use crate::storage::disk::DiskFile;

/// Outcome of a successful [`Log::append`](super::Log::append).
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
    /// The batch was an idempotent retry already stored: nothing was written
    /// and the offsets are the original ones.
    pub duplicate: bool,
}

/// Bytes of whole batches in one segment file. Reading needs no log lock:
/// the file only grows while the slice is in use (a concurrent truncation or
/// deletion makes [`ReadSlice::read`] fail or return the old bytes, never panic).
#[derive(Debug, Clone)]
pub struct ReadSlice {
    pub(super) file: Option<DiskFile>,
    pub(super) position: u64,
    pub(super) len: usize,
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
    /// The bytes, read with one `pread` into a new buffer.
    pub fn read(&self) -> std::io::Result<Bytes> {
        let Some(file) = &self.file else {
            return Ok(Bytes::new());
        };
        let mut buf = BytesMut::zeroed(self.len);
        file.read_at(&mut buf, self.position)?;
        Ok(buf.freeze())
    }

    /// The file and the position of the bytes, for a caller that has the
    /// kernel send them (`sendfile`) instead of reading them; `None` when
    /// there are none. The disk seam is asked first, as a read would be.
    pub fn send_from(&self) -> std::io::Result<Option<(&std::sync::Arc<std::fs::File>, u64)>> {
        let Some(file) = self.file.as_ref().filter(|_| self.len > 0) else {
            return Ok(None);
        };
        file.disk.check_send(&file.path)?;
        Ok(Some((&file.file, self.position)))
    }
}

/// Files written since the last completed sync, for group commit.
#[derive(Debug)]
pub struct SyncTarget {
    /// The log end offset when the target was taken: once [`SyncTarget::sync`]
    /// succeeds, every offset below it is durable.
    pub end_offset: i64,
    pub(super) files: Vec<DiskFile>,
    /// Index files of the segments sealed since the last sync. Below the
    /// recovery point an unclean open does not check them against the
    /// `.log`, so they are made durable with it, as Kafka flushes a
    /// segment's indexes with its log.
    pub(super) indexes: Vec<PathBuf>,
    /// The log's count of seals when the target was taken: the indexes of
    /// every segment sealed until then are in `indexes`.
    pub(super) seals: u64,
    /// The log's count of segments created when the target was taken.
    pub(super) created: u64,
    /// The partition directory, when a roll since the last sync created
    /// the files of a new segment in it.
    pub(super) dir: Option<PathBuf>,
    pub(super) disk: Arc<dyn Disk>,
}

impl SyncTarget {
    /// fsyncs (`sync_data`) every file. When [`SyncError::poisons`], the
    /// caller must [`Log::poison`](super::Log::poison) the log.
    pub fn sync(&self) -> Result<(), SyncError> {
        for file in &self.files {
            file.sync().map_err(SyncError::fsync(&file.path))?;
        }
        for path in &self.indexes {
            // One deleted since, by retention or a truncation, has nothing
            // left to make durable.
            match self.disk.open_to_sync(path) {
                Ok(file) => self
                    .disk
                    .sync(path, &file)
                    .map_err(SyncError::fsync(path))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SyncError::open(path)(e)),
            }
        }
        if let Some(dir) = &self.dir {
            let file = self.disk.open_to_sync(dir).map_err(SyncError::open(dir))?;
            self.disk
                .sync_dir(dir, &file)
                .map_err(SyncError::fsync(dir))?;
        }
        Ok(())
    }
}

/// Why a [`SyncTarget::sync`] did not complete.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct SyncError {
    pub path: PathBuf,
    pub error: std::io::Error,
    /// The log must be poisoned: an fsync failed, and the page cache can no
    /// longer be trusted, or a file could not be opened for a reason that
    /// will not pass (EIO, EACCES, ...). False when the open ran out of
    /// descriptors or memory: nothing was lost and a later sync may complete.
    pub poisons: bool,
}

impl SyncError {
    fn fsync(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
        move |error| SyncError {
            path: path.to_path_buf(),
            error,
            poisons: true,
        }
    }
    fn open(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
        move |error| SyncError {
            path: path.to_path_buf(),
            poisons: !matches!(
                error.raw_os_error(),
                Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
            ),
            error,
        }
    }
}

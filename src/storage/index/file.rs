//! One index file of fixed-size entries: mapped read-only for lookups, its
//! newest entries kept in a small tail written with `pwrite` (see the
//! parent module for why not through the mapping).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::storage::{Error, Result};

/// New entries are written to the file once this many bytes of them wait.
pub(super) const TAIL_BYTES: usize = 4096;

/// Beyond this many bytes of entries the file could not take, new entries
/// are left out (the index stays sparse and monotone).
const MAX_TAIL_BYTES: usize = 64 * 1024;

fn open_file(path: &Path, fresh: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(fresh)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn map(file: &File, path: &Path) -> Result<Option<Mmap>> {
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(None);
    }
    #[allow(unsafe_code)]
    // SAFETY: the index file lives in this partition's directory and is only
    // resized by the `IndexFile` owning this map, which drops the map before
    // every `set_len`; no other process is expected to touch the directory.
    let mmap = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    Ok(Some(mmap))
}

/// One mapped index file of fixed-size entries.
#[derive(Debug)]
pub(super) struct IndexFile {
    path: PathBuf,
    mmap: Option<Mmap>,
    pub(super) entries: usize,
    /// Entries below this are in the file (and the mapping).
    written: usize,
    /// Entries from `written` on, not yet in the file.
    tail: Vec<u8>,
    entry_bytes: usize,
}

impl IndexFile {
    /// Opens (creating) `path`. With `fresh` the old content is discarded. The
    /// entry count is taken from the file length; `exact` says whether that
    /// length was a whole number of entries. Then the file is sized to at least
    /// `capacity_bytes` (rounded down to entries).
    pub(super) fn open(
        path: &Path,
        entry_bytes: usize,
        capacity_bytes: u64,
        fresh: bool,
    ) -> Result<(IndexFile, bool)> {
        let file = open_file(path, fresh)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let exact = len % entry_bytes as u64 == 0;
        let entries = (len / entry_bytes as u64) as usize;
        let wanted = capacity_bytes - capacity_bytes % entry_bytes as u64;
        let size = wanted.max(entries as u64 * entry_bytes as u64);
        if size != len {
            file.set_len(size).map_err(|e| Error::io(path, e))?;
        }
        let index = IndexFile {
            path: path.to_path_buf(),
            mmap: map(&file, path)?,
            entries,
            written: entries,
            tail: Vec::new(),
            entry_bytes,
        };
        Ok((index, exact))
    }

    pub(super) fn is_full(&self) -> bool {
        self.entries >= self.capacity()
    }

    fn capacity(&self) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len() / self.entry_bytes)
    }

    pub(super) fn entry(&self, i: usize) -> Option<&[u8]> {
        if i >= self.entries {
            return None;
        }
        if i >= self.written {
            let at = (i - self.written) * self.entry_bytes;
            return self.tail.get(at..at + self.entry_bytes);
        }
        let at = i * self.entry_bytes;
        self.mmap.as_ref()?.get(at..at + self.entry_bytes)
    }

    /// Appends an entry; false when the file is full, or when it could not
    /// take the entries waiting for it and [`MAX_TAIL_BYTES`] of them wait.
    pub(super) fn push(&mut self, entry: &[u8]) -> bool {
        if self.is_full() || self.tail.len() + entry.len() > MAX_TAIL_BYTES {
            return false;
        }
        self.tail.extend_from_slice(entry);
        self.entries += 1;
        if self.tail.len() >= TAIL_BYTES
            && let Err(e) = self.write_tail(None)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "index entries not written yet");
        }
        true
    }

    /// Keeps only the first `entries` entries.
    pub(super) fn truncate(&mut self, entries: usize) {
        let entries = entries.min(self.entries);
        if entries < self.written {
            self.written = entries;
            self.tail.clear();
        } else {
            self.tail
                .truncate((entries - self.written) * self.entry_bytes);
        }
        self.entries = entries;
    }

    /// Writes the waiting entries into `file` (or the file opened for it).
    fn write_tail(&mut self, file: Option<&File>) -> Result<()> {
        if self.tail.is_empty() {
            return Ok(());
        }
        let opened;
        let file = match file {
            Some(file) => file,
            None => {
                opened = open_file(&self.path, false)?;
                &opened
            }
        };
        let at = (self.written * self.entry_bytes) as u64;
        file.write_all_at(&self.tail, at)
            .map_err(|e| Error::io(&self.path, e))?;
        self.written = self.entries;
        self.tail.clear();
        Ok(())
    }

    /// Resizes the file to `bytes` (whole entries, never below the entry count) and remaps.
    fn resize(&mut self, bytes: u64) -> Result<()> {
        let bytes = bytes - bytes % self.entry_bytes as u64;
        let bytes = bytes.max((self.entries * self.entry_bytes) as u64);
        let file = open_file(&self.path, false)?;
        self.write_tail(Some(&file))?;
        self.mmap = None;
        file.set_len(bytes).map_err(|e| Error::io(&self.path, e))?;
        self.mmap = map(&file, &self.path)?;
        Ok(())
    }

    pub(super) fn trim(&mut self) -> Result<()> {
        self.resize((self.entries * self.entry_bytes) as u64)
    }

    /// Writes the waiting entries and fsyncs the file.
    pub(super) fn sync(&mut self) -> Result<()> {
        let file = open_file(&self.path, false)?;
        self.write_tail(Some(&file))?;
        file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}

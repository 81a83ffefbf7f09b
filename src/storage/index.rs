//! Sparse offset index and time index of a segment, each one memory-mapped file.
//!
//! `.index`: 8-byte entries, relative offset u32 BE + position u32 BE, both
//! strictly increasing; an entry says "the batch with this base offset starts
//! at this position". `.timeindex`: 12-byte entries, timestamp i64 BE +
//! relative offset u32 BE, timestamps strictly increasing; an entry says "the
//! largest timestamp up to and including this offset is this".
//!
//! Each file is mapped read-only for lookups and holds no descriptor: a
//! partition's open files are its `.log`s only. The active segment's files
//! are preallocated (sparse); new entries gather in a small buffer that is
//! written with `pwrite`, through a descriptor opened for the purpose, once
//! it holds [`TAIL_BYTES`], and on sync, trim and resize. Writing through
//! the mapping instead would turn a full disk into SIGBUS; `pwrite` turns
//! it into ENOSPC. Files are caches: a length that is not an entry
//! multiple, non-monotone entries or positions past the log make the
//! caller rebuild them from the `.log`, and entries that never reached the
//! file before a crash are rebuilt the same way.

use std::path::Path;

use super::Result;

mod file;

use file::IndexFile;
#[cfg(test)]
use file::TAIL_BYTES;

pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;
pub(crate) const TIME_ENTRY_BYTES: usize = 12;

/// Index of the last entry whose key is <= `target` (keys must be sorted).
fn floor<K: Ord>(len: usize, key_at: impl Fn(usize) -> Option<K>, target: &K) -> Option<usize> {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match key_at(mid) {
            Some(k) if k <= *target => lo = mid + 1,
            _ => hi = mid,
        }
    }
    lo.checked_sub(1)
}

fn u32_at(entry: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(entry.get(at..at + 4)?.try_into().ok()?))
}

/// Sparse map from offset to byte position in the segment's `.log`.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    /// Opens the index; the bool is false when the file length was not a whole
    /// number of entries (the caller must rebuild).
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        capacity_bytes: u64,
        fresh: bool,
    ) -> Result<(Self, bool)> {
        let (file, exact) = IndexFile::open(path, OFFSET_ENTRY_BYTES, capacity_bytes, fresh)?;
        Ok((OffsetIndex { file, base_offset }, exact))
    }

    pub(crate) fn len(&self) -> usize {
        self.file.entries
    }
    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// The `i`-th entry as (offset, position).
    pub(crate) fn entry(&self, i: usize) -> Option<(i64, u32)> {
        let e = self.file.entry(i)?;
        Some((self.base_offset + i64::from(u32_at(e, 0)?), u32_at(e, 4)?))
    }

    /// The last entry whose offset is <= `offset`.
    pub(crate) fn lookup(&self, offset: i64) -> Option<(i64, u32)> {
        let i = floor(self.len(), |i| self.entry(i).map(|e| e.0), &offset)?;
        self.entry(i)
    }

    /// The last entry whose position is <= `position` (positions grow with offsets).
    pub(crate) fn lookup_position(&self, position: u64) -> Option<(i64, u32)> {
        let i = floor(
            self.len(),
            |i| self.entry(i).map(|e| u64::from(e.1)),
            &position,
        )?;
        self.entry(i)
    }

    /// Adds an entry; false when the index is full or the entry would not be increasing.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> bool {
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return false;
        };
        let last = self.len().checked_sub(1).and_then(|i| self.entry(i));
        if last.is_some_and(|(o, p)| offset <= o || position <= p) {
            return false;
        }
        let mut entry = [0u8; OFFSET_ENTRY_BYTES];
        entry[..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&entry)
    }

    /// Drops entries for offsets >= `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep =
            floor(self.len(), |i| self.entry(i).map(|e| e.0), &(offset - 1)).map_or(0, |i| i + 1);
        self.file.truncate(keep);
    }

    /// Entries strictly increasing and every position inside a log of `log_len` bytes.
    pub(crate) fn is_consistent(&self, log_len: u64) -> bool {
        let mut previous: Option<(i64, u32)> = None;
        for i in 0..self.len() {
            let Some(e) = self.entry(i) else { return false };
            if u64::from(e.1) >= log_len || previous.is_some_and(|p| e.0 <= p.0 || e.1 <= p.1) {
                return false;
            }
            previous = Some(e);
        }
        true
    }

    pub(crate) fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync()
    }
}

/// Map from timestamp to the offset by which the segment had reached it.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    /// Opens the index; see [`OffsetIndex::open`].
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        capacity_bytes: u64,
        fresh: bool,
    ) -> Result<(Self, bool)> {
        let (file, exact) = IndexFile::open(path, TIME_ENTRY_BYTES, capacity_bytes, fresh)?;
        Ok((TimeIndex { file, base_offset }, exact))
    }

    pub(crate) fn len(&self) -> usize {
        self.file.entries
    }
    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// The `i`-th entry as (timestamp, offset).
    pub(crate) fn entry(&self, i: usize) -> Option<(i64, i64)> {
        let e = self.file.entry(i)?;
        let timestamp = i64::from_be_bytes(e.get(..8)?.try_into().ok()?);
        Some((timestamp, self.base_offset + i64::from(u32_at(e, 8)?)))
    }

    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.len().checked_sub(1).and_then(|i| self.entry(i))
    }

    /// The last entry whose timestamp is strictly below `timestamp`.
    pub(crate) fn lookup_before(&self, timestamp: i64) -> Option<(i64, i64)> {
        let i = floor(
            self.len(),
            |i| self.entry(i).map(|e| e.0),
            &(timestamp.checked_sub(1)?),
        )?;
        self.entry(i)
    }

    /// Adds (timestamp, offset) if the timestamp grew; false if it did not or the index is full.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) -> bool {
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return false;
        };
        if self
            .last_entry()
            .is_some_and(|(t, o)| timestamp <= t || offset < o)
        {
            return false;
        }
        let mut entry = [0u8; TIME_ENTRY_BYTES];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&relative.to_be_bytes());
        self.file.push(&entry)
    }

    /// Drops entries for offsets >= `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = (0..self.len())
            .take_while(|&i| self.entry(i).is_some_and(|e| e.1 < offset))
            .count();
        self.file.truncate(keep);
    }

    /// Timestamps strictly increasing, offsets non-decreasing and below `next_offset`.
    pub(crate) fn is_consistent(&self, next_offset: i64) -> bool {
        let mut previous: Option<(i64, i64)> = None;
        for i in 0..self.len() {
            let Some(e) = self.entry(i) else { return false };
            if e.1 >= next_offset || previous.is_some_and(|p| e.0 <= p.0 || e.1 < p.1) {
                return false;
            }
            previous = Some(e);
        }
        true
    }

    pub(crate) fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync()
    }
}

#[cfg(test)]
mod tests;

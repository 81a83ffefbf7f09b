//! A segment: one `.log` store plus its `.index` and `.timeindex`, named by
//! its base offset (`{base:020}.log`), the first offset it holds.
//!
//! Index entries are added when at least `index.interval.bytes` of batches
//! were appended since the last entry: the offset entry points at the current
//! batch (its base offset and position); the time entry, added at the same
//! moments when the segment's max timestamp grew, holds that max and the last
//! offset of the batch that set it. Sealing adds a final time entry and trims
//! both files. Sealed segments map their indexes only on first use and check
//! them then; a file that does not add up is rebuilt from the `.log`.

use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicU8;

use super::disk::DiskFile;
use super::index::{OffsetIndex, TimeIndex};
use super::open_segments::LogFiles;
use super::record::BatchHeader;
use super::store::Store;
use super::{Error, LogConfig, Result};
pub(crate) use recover::IndexWriter;
use recover::{finish_seal, index_batch};

/// `{base:020}.{ext}`.
pub(crate) fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Splits `{offset:020}.{ext}` into its offset and extension.
pub(crate) fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) offset: OffsetIndex,
    pub(crate) time: TimeIndex,
}

/// The settings a segment needs, copied from the log's config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentConfig {
    pub(crate) index_interval_bytes: u64,
    pub(crate) index_capacity_bytes: u64,
}

impl From<&LogConfig> for SegmentConfig {
    fn from(c: &LogConfig) -> Self {
        SegmentConfig {
            index_interval_bytes: u64::from(c.index_interval_bytes),
            index_capacity_bytes: u64::from(c.segment_index_bytes),
        }
    }
}

/// A segment's offset index matches its log as far as reads know.
const INDEX_OK: u8 = 0;
/// A read found an offset index entry that does not match the log.
const INDEX_DAMAGED: u8 = 1;
/// Rebuilding the damaged index failed: reads keep walking past it.
const INDEX_UNREPAIRED: u8 = 2;

/// What the active segment knows about its tail.
#[derive(Debug, Clone, Copy, Default)]
struct Tail {
    max_timestamp: Option<(i64, i64)>,
    bytes_since_index: u64,
}

/// One segment of a log. Sealed segments are read-only.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    dir: PathBuf,
    store: Store,
    next_offset: i64,
    indexes: OnceLock<Indexes>,
    config: SegmentConfig,
    tail: Tail,
    sealed: bool,
    created_ms: i64,
    /// [`INDEX_OK`], [`INDEX_DAMAGED`] once an offset index entry was found
    /// not to match the log (warned about once, not on every read), or
    /// [`INDEX_UNREPAIRED`] once rebuilding it failed.
    index_state: AtomicU8,
}

impl Segment {
    /// Creates a new, empty active segment (discarding any files of that name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
        (disk, open): LogFiles,
    ) -> Result<Segment> {
        let store = Store::open(&dir.join(file_name(base_offset, "log")), disk, open)?;
        let mut segment = Segment::with_store(dir, base_offset, config, now_ms, store);
        if let Err(e) = segment
            .store
            .truncate_to(0)
            .and_then(|()| segment.load_indexes(true).map(drop))
        {
            // Leave no files of a segment that is not there.
            let _ = segment.delete();
            return Err(e);
        }
        segment.set_sealed(false);
        Ok(segment)
    }

    /// Opens an existing segment as sealed; its `.log` is opened and its
    /// indexes are mapped on first use. The log sets its next offset (the
    /// next segment's base) or activates it.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
        (disk, open): LogFiles,
    ) -> Result<Segment> {
        let store = Store::open_lazily(&dir.join(file_name(base_offset, "log")), disk, open)?;
        Ok(Segment::with_store(dir, base_offset, config, now_ms, store))
    }

    fn with_store(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
        store: Store,
    ) -> Segment {
        Segment {
            base_offset,
            dir: dir.to_path_buf(),
            store,
            next_offset: base_offset,
            indexes: OnceLock::new(),
            config,
            tail: Tail::default(),
            sealed: true,
            created_ms: now_ms,
            index_state: AtomicU8::new(INDEX_OK),
        }
    }

    /// True once sealed (read-only), false for the active segment.
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn set_next_offset(&mut self, next_offset: i64) {
        self.next_offset = next_offset;
    }
    pub(crate) fn size(&self) -> u64 {
        self.store.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.store.len() == 0
    }
    /// The `.log`, opened now if nothing has read it yet.
    pub(crate) fn log_file(&self) -> Result<DiskFile> {
        self.store.file()
    }
    pub(crate) fn log_path(&self) -> &Path {
        self.store.path()
    }
    pub(crate) fn set_config(&mut self, config: SegmentConfig) {
        self.config = config;
    }

    /// Makes this segment the active one after a clean stop: preallocates the
    /// indexes and finds the end by walking the batches after the last entry.
    pub(crate) fn activate(&mut self) -> Result<()> {
        self.set_sealed(false);
        // A tail that does not walk is recovered; one that cannot be read
        // fails the open (recovering would cut what could not be read).
        let consistent = self.load_indexes(false)?
            && match self.walk_tail() {
                Ok(()) => true,
                Err(e) if recover::ends_scan(&e) => false,
                Err(e) => return Err(e),
            };
        let time_ok = self
            .indexes()?
            .time
            .last_entry()
            .is_none_or(|(_, o)| o < self.next_offset);
        if !consistent || !time_ok {
            tracing::warn!(path = %self.log_path().display(), "inconsistent segment, recovering");
            self.recover()?;
        }
        Ok(())
    }

    /// Recomputes next offset, max timestamp and bytes since the last index entry.
    fn walk_tail(&mut self) -> Result<()> {
        let indexes = self.indexes()?;
        let last_entry = indexes
            .offset
            .len()
            .checked_sub(1)
            .and_then(|i| indexes.offset.entry(i))
            .filter(|&(o, p)| self.batch_at(u64::from(p), o));
        let (mut next_offset, start) =
            last_entry.map_or((self.base_offset, 0), |(o, p)| (o, u64::from(p)));
        let mut max_timestamp = indexes.time.last_entry();
        let mut scanner = self.store.headers_from(start);
        while let Some((_, header)) = scanner.next_header()? {
            if max_timestamp.is_none_or(|(t, _)| header.max_timestamp > t) {
                max_timestamp = Some((header.max_timestamp, header.last_offset()));
            }
            next_offset = header.last_offset() + 1;
        }
        self.next_offset = next_offset;
        self.tail = Tail {
            max_timestamp,
            bytes_since_index: self.store.len() - start,
        };
        Ok(())
    }

    /// Appends `bufs`, back to back (whole batches with offsets assigned;
    /// `batches` are their headers in order). On error nothing changed.
    pub(crate) fn append(&mut self, bufs: &[IoSlice<'_>], batches: &[BatchHeader]) -> Result<()> {
        let config = self.config;
        self.indexes_mut()?;
        let mut position = self.store.append(bufs)?;
        let mut tail = self.tail;
        let indexes = self.indexes_mut()?;
        for header in batches {
            index_batch(indexes, &mut tail, config, position, header);
            position += header.size as u64;
        }
        self.tail = tail;
        if let Some(last) = batches.last() {
            self.next_offset = last.last_offset() + 1;
        }
        Ok(())
    }

    /// True when the next append of `incoming_bytes` ending at `last_offset` must go to a new segment.
    pub(crate) fn should_roll(
        &self,
        config: &LogConfig,
        now_ms: i64,
        incoming_bytes: u64,
        last_offset: i64,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let full_index = self
            .indexes
            .get()
            .is_none_or(|i| i.offset.is_full() || i.time.is_full());
        self.size() + incoming_bytes > config.segment_bytes
            || now_ms.saturating_sub(self.created_ms) >= config.segment_ms
            || full_index
            || last_offset - self.base_offset > i64::from(i32::MAX)
    }

    /// Time-based roll check alone (for retention ticks).
    pub(crate) fn is_expired(&self, config: &LogConfig, now_ms: i64) -> bool {
        !self.is_empty() && now_ms.saturating_sub(self.created_ms) >= config.segment_ms
    }

    /// Seals the segment: final time-index entry, indexes trimmed to their entries.
    pub(crate) fn seal(&mut self) -> Result<()> {
        let tail = self.tail;
        let indexes = self.indexes_mut()?;
        finish_seal(indexes, tail)?;
        self.set_sealed(true);
        Ok(())
    }

    /// A sealed segment's `.log` counts toward the bound on open sealed
    /// files (see [`OpenSegments`]); the active one's stays open.
    fn set_sealed(&mut self, sealed: bool) {
        self.sealed = sealed;
        self.store.set_sealed(sealed);
    }

    /// fsyncs the `.log` and, if mapped, the indexes.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.store.sync()?;
        if let Some(indexes) = self.indexes.get_mut() {
            indexes.offset.sync()?;
            indexes.time.sync()?;
        }
        Ok(())
    }

    /// Removes every batch whose last offset is >= `offset`; the segment becomes active.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if self.sealed {
            if !self.load_indexes(false)? {
                self.recover()?;
            }
            self.set_sealed(false);
        }
        if let Some((position, header)) = self.find_batch(offset)? {
            self.store.truncate_to(position)?;
            let indexes = self.indexes_mut()?;
            indexes.offset.truncate_to(header.base_offset);
            indexes.time.truncate_to(header.base_offset);
        }
        self.walk_tail()
    }

    /// Removes the segment's files.
    pub(crate) fn delete(self) -> Result<()> {
        self.remove_files(true)
    }

    /// Removes the segment's `.log` (its descriptor, if open, stays usable
    /// until dropped); [`Segment::delete_except_log`] then removes the rest.
    pub(crate) fn remove_log(&self) -> Result<()> {
        match self.store.disk().remove(self.log_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(self.log_path(), e))
            }
            _ => Ok(()),
        }
    }

    /// Removes the segment's other files but not its `.log` (which a cleaned
    /// segment is about to replace, or [`Segment::remove_log`] removed).
    pub(crate) fn delete_except_log(self) -> Result<()> {
        self.remove_files(false)
    }

    fn remove_files(self, with_log: bool) -> Result<()> {
        // A `.log` that stays keeps its indexes.
        if with_log {
            self.remove_log()?;
        }
        let (offset_path, time_path) = self.index_paths();
        let txn_path = self.dir.join(file_name(self.base_offset, "txnindex"));
        let disk = self.store.disk().clone();
        drop(self);
        // Each index is tried even after one fails; the first failure is
        // returned. What stays behind goes at the next open (`remove_orphans`).
        let mut first_failure = Ok(());
        for path in [offset_path, time_path, txn_path] {
            match disk.remove(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && first_failure.is_ok() => {
                    first_failure = Err(Error::io(&path, e));
                }
                _ => {}
            }
        }
        first_failure
    }

    /// The file modification time in ms, for segments without timestamps.
    pub(crate) fn modified_ms(&self) -> Option<i64> {
        let modified = std::fs::metadata(self.store.path()).ok()?.modified().ok()?;
        let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(since.as_millis()).ok()
    }
}

mod indexes;
mod read;
mod recover;
#[cfg(test)]
mod tests;

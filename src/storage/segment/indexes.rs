//! A segment's two index files: opened and checked against the `.log`,
//! mapped for writing while the segment is active, and mapped (and rebuilt
//! if they do not add up) on first use once it is sealed.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use super::recover::IndexWriter;
use super::{INDEX_DAMAGED, INDEX_OK, INDEX_UNREPAIRED, Indexes, Segment, file_name};
use crate::storage::index::{OffsetIndex, TimeIndex};
use crate::storage::{Error, Result};

/// The suffix of index files being rebuilt beside the ones they replace.
const REBUILT: &str = "rebuilt";

impl Segment {
    pub(crate) fn index_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join(file_name(self.base_offset, "index")),
            self.dir.join(file_name(self.base_offset, "timeindex")),
        )
    }

    /// Opens the index files (`fresh`: emptied). True when they existed and
    /// look consistent with a log ending before `next_offset`.
    pub(super) fn open_indexes(
        &self,
        fresh: bool,
        capacity_bytes: u64,
        next_offset: i64,
    ) -> Result<(Indexes, bool)> {
        let (offset_path, time_path) = self.index_paths();
        let existed = offset_path.exists() && time_path.exists();
        let (offset, offset_exact) =
            OffsetIndex::open(&offset_path, self.base_offset, capacity_bytes, fresh)?;
        let (time, time_exact) =
            TimeIndex::open(&time_path, self.base_offset, capacity_bytes, fresh)?;
        // A non-empty segment always has a time entry once sealed or cleanly closed.
        let ok = existed
            && offset_exact
            && time_exact
            && (self.store.len() == 0 || time.len() > 0)
            && offset.is_consistent(self.store.len())
            && time.is_consistent(next_offset);
        Ok((Indexes { offset, time }, ok))
    }

    /// Maps the indexes for writing (preallocated), replacing any mapped ones.
    pub(super) fn load_indexes(&mut self, fresh: bool) -> Result<bool> {
        // Unmap first: the files may be resized below.
        self.indexes.take();
        let bound = if self.sealed {
            self.next_offset
        } else {
            i64::MAX
        };
        let (indexes, ok) = self.open_indexes(fresh, self.config.index_capacity_bytes, bound)?;
        self.indexes = OnceLock::from(indexes);
        Ok(ok)
    }

    /// The indexes, mapped (and checked, rebuilt if needed) on first use.
    pub(crate) fn indexes(&self) -> Result<&Indexes> {
        if let Some(indexes) = self.indexes.get() {
            return Ok(indexes);
        }
        let (mut indexes, ok) = self.open_indexes(false, 0, self.next_offset)?;
        if !ok {
            tracing::warn!(path = %self.log_path().display(), "inconsistent index files, rebuilding");
            drop(indexes);
            self.replace_indexes()?;
            indexes = self.open_indexes(false, 0, self.next_offset)?.0;
        }
        Ok(self.indexes.get_or_init(|| indexes))
    }

    /// True when a read found an offset index entry that does not match the
    /// log, and the index was not rebuilt since (nor did rebuilding fail).
    pub(crate) fn index_mismatched(&self) -> bool {
        self.index_state.load(Ordering::Relaxed) == INDEX_DAMAGED
    }

    /// Rebuilds the indexes of a sealed segment whose offset index a read
    /// found not to match the log: until then every read of it walks from
    /// the file's start. The active segment is left to its next recovery.
    /// Should that fail, the files are whole but may still be the damaged
    /// ones (see [`Segment::replace_indexes`]; reads walk past a bad entry)
    /// and it is not tried again until the next open.
    pub(crate) fn repair_indexes(&mut self) {
        if !self.sealed || !self.index_mismatched() {
            return;
        }
        match self.rebuild_indexes() {
            Ok(()) => {
                tracing::info!(path = %self.log_path().display(), "rebuilt the indexes of a segment a read found damaged");
            }
            Err(e) => {
                self.index_state.store(INDEX_UNREPAIRED, Ordering::Relaxed);
                tracing::warn!(path = %self.log_path().display(), error = %e, "cannot rebuild a damaged index; reads walk its segment from the start");
            }
        }
    }

    /// Rewrites both index files of this sealed segment from its `.log`.
    pub(crate) fn rebuild_indexes(&mut self) -> Result<()> {
        // Unmap first: the files are replaced; the next use maps the new ones.
        self.indexes.take();
        self.replace_indexes()?;
        self.index_state.store(INDEX_OK, Ordering::Relaxed);
        Ok(())
    }

    /// Writes both index files of this sealed segment anew from its `.log`,
    /// beside them under [`REBUILT`] names, trimmed and fsynced (the segment
    /// may sit below the recovery point, where an unclean open does not
    /// check them again), then renames them over the old ones. A failure
    /// leaves the old ones in place, but for the offset index when only the
    /// time index's rename fails: each file is whole either way, and reads
    /// check offset index entries. Nothing may have them mapped.
    fn replace_indexes(&self) -> Result<()> {
        let names = ["index", "timeindex"].map(|ext| {
            let name = |ext: &str| self.dir.join(file_name(self.base_offset, ext));
            (name(&format!("{ext}.{REBUILT}")), name(ext))
        });
        let disk = self.store.disk();
        let remove_rebuilt = || {
            for (rebuilt, _) in &names {
                let _ = disk.remove(rebuilt);
            }
        };
        if let Err(e) = self.write_rebuilt_indexes() {
            remove_rebuilt();
            return Err(e);
        }
        for (rebuilt, path) in &names {
            if let Err(e) = disk.rename(rebuilt, path) {
                remove_rebuilt();
                return Err(Error::io(path, e));
            }
        }
        Ok(())
    }

    fn write_rebuilt_indexes(&self) -> Result<()> {
        let mut writer = IndexWriter::create(&self.dir, self.base_offset, self.config, REBUILT)?;
        let mut scanner = self.store.headers_from(0);
        while let Some((position, header)) = scanner.next_header()? {
            writer.add(position, &header);
        }
        writer.finish()
    }

    pub(super) fn indexes_mut(&mut self) -> Result<&mut Indexes> {
        self.indexes()?;
        self.indexes
            .get_mut()
            .ok_or_else(|| Error::io(self.store.path(), std::io::Error::other("index not loaded")))
    }
}

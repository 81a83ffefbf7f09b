//! The log of one partition: ordered segments in `<topic>-<partition>/`.
//!
//! Invariants: there is always at least one segment and the last one is the
//! active segment, the only one written; segment base offsets are increasing
//! and each segment ends where the next begins; `start_offset` is at least
//! the first segment's base (more after DeleteRecords, persisted in
//! `log-start-offset`). Opening after a clean close (`.clean-shutdown`
//! present) reads only directory names, file sizes and the active segment's
//! tail. After an unclean stop every segment holding offsets at or past the
//! recovery point (below which everything was fsynced) is scanned batch by
//! batch; the log is cut at the first incomplete or corrupt batch, later
//! segments are removed and the scanned indexes rebuilt, as Kafka does.
//! Sealed segments' indexes are checked when first used.
//!
//! Not internally synchronized: callers hold a `Mutex<Log>` and read the
//! returned [`ReadSlice`]s outside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::disk::{Disk, DiskFile};
use super::open_segments::{LogFiles, OpenSegments};
use super::producer::ProducerStates;
use super::segment::{Segment, SegmentConfig};
use super::{Error, LogConfig, Result};

mod append;
mod files;
mod maintenance;
mod marker;
mod open;
mod sync;
#[cfg(test)]
mod tests;
mod transactions;
mod types;

use files::{list_snapshots, remove_snapshot};
use marker::CLEAN_SHUTDOWN;
pub use marker::{ClosedLog, closed_cleanly, closed_log};
pub use types::{AppendInfo, ReadSlice, SyncError, SyncTarget};

const START_OFFSET_FILE: &str = "log-start-offset";
/// The leader epoch stamped into every appended batch: a single broker has
/// only ever had epoch 0.
pub(crate) const LEADER_EPOCH: i32 = 0;
/// Producer snapshots kept after writing a new one.
const SNAPSHOTS_KEPT: usize = 2;

/// The log of one partition. See the module docs for invariants.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    /// Shared by a topic's partitions.
    config: Arc<LogConfig>,
    segments: BTreeMap<i64, Box<Segment>>,
    start_offset: i64,
    producers: ProducerStates,
    /// `.log` files written since the last sync, with the end offset after their last write.
    unsynced: Vec<(DiskFile, i64)>,
    /// Index files of segments sealed since the last sync that covered
    /// them: (path, the segment's base offset, the seal's number). The
    /// recovery point stays at or below the base of each (see
    /// [`Log::synced_offset`]).
    unsynced_indexes: Vec<(PathBuf, i64, u64)>,
    /// Segments sealed so far by rolls, numbering them for `unsynced_indexes`.
    seals: u64,
    /// Segments created so far (by rolls, and a truncation that empties
    /// the log), and how many of them a completed sync covered: while they
    /// differ, a sync fsyncs the directory too.
    created: u64,
    created_synced: u64,
    synced_offset: i64,
    poisoned: bool,
    disk: Arc<dyn Disk>,
    /// The bound on sealed segment files open, shared with other logs.
    open_segments: Arc<OpenSegments>,
    /// Aborted transactions by marker offset (see `transactions.rs`).
    aborted: BTreeMap<i64, super::AbortedTxn>,
    /// Those of `aborted` whose `.txnindex` entry could not be written yet,
    /// by marker offset: each sync tries again, and until then
    /// [`Log::recovery_point`] stays at the first (so an unclean open
    /// replays its marker) and a close fails (so the next open is unclean).
    unwritten_aborts: BTreeMap<i64, super::AbortedTxn>,
    /// Offsets of the producer snapshots on disk, ascending, once a snapshot
    /// write listed them; `None` before, and after a truncation removed some.
    snapshots: Option<Vec<i64>>,
    /// A read found a sealed segment's offset index not matching its log:
    /// [`Log::repair_indexes`] has work to do.
    damaged_indexes: AtomicBool,
}

/// The base of the segment holding `offset`: the last one based at or below it.
fn base_holding(segments: &BTreeMap<i64, Box<Segment>>, offset: i64) -> Option<i64> {
    segments.range(..=offset).next_back().map(|(b, _)| *b)
}

/// fsyncs a directory so that file creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(disk: &dyn Disk, dir: &Path) -> Result<()> {
    super::disk::fsync_dir(disk, dir).map_err(|e| Error::io(dir, e))
}

impl Log {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The current settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// The current settings, as the handle other logs of the topic share.
    pub fn shared_config(&self) -> Arc<LogConfig> {
        self.config.clone()
    }
    /// Replaces the settings; they apply from the next append, roll or retention check.
    pub fn set_config(&mut self, config: impl Into<Arc<LogConfig>>) {
        let config = config.into();
        if let Some(active) = self.segments.values_mut().next_back() {
            active.set_config(SegmentConfig::from(&*config));
        }
        self.config = config;
    }

    fn active(&self) -> Result<&Segment> {
        self.segments
            .values()
            .next_back()
            .map(|s| &**s)
            .ok_or_else(|| self.no_segment())
    }
    fn active_mut(&mut self) -> Result<&mut Segment> {
        let err = self.no_segment();
        self.segments
            .values_mut()
            .next_back()
            .map(|s| &mut **s)
            .ok_or(err)
    }
    fn no_segment(&self) -> Error {
        Error::io(&self.dir, std::io::Error::other("log has no segment"))
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes` but
    /// always at least one batch if any exists at or after `offset`, all from
    /// one segment. `offset == end_offset` gives an empty slice; outside
    /// `[start_offset, end_offset]` is `OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadSlice> {
        self.read_below(offset, max_bytes, i64::MAX)
    }

    /// [`Log::read`] of the batches below `upto` only (a read_committed
    /// fetch passes the last stable offset, a batch boundary).
    pub fn read_below(&self, offset: i64, max_bytes: usize, upto: i64) -> Result<ReadSlice> {
        let end = self.end_offset();
        if offset < self.start_offset || offset > end {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: self.start_offset,
                end,
            });
        }
        if offset >= upto {
            return Ok(ReadSlice::empty());
        }
        let floor = base_holding(&self.segments, offset).unwrap_or(i64::MIN);
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            let found = segment.read(offset, max_bytes)?;
            if segment.index_mismatched() && segment.is_sealed() {
                self.damaged_indexes.store(true, Ordering::Relaxed);
            }
            let Some((position, mut len)) = found else {
                continue;
            };
            if upto < segment.next_offset()
                && let Some((cut, _)) = segment.find_batch(upto)?
            {
                len = len.min(cut.saturating_sub(position) as usize);
            }
            if len == 0 {
                return Ok(ReadSlice::empty());
            }
            return Ok(ReadSlice {
                file: Some(segment.log_file()?),
                position,
                len,
            });
        }
        Ok(ReadSlice::empty())
    }

    /// Rebuilds the indexes of the sealed segments that reads found not
    /// matching their logs (each read of one walks it from its start until
    /// then). Cheap when there are none: fetches call it after each read.
    pub fn repair_indexes(&mut self) {
        // A failed log changes no file until a reopen recovers it.
        if self.poisoned
            || !self.damaged_indexes.load(Ordering::Relaxed)
            || !self.damaged_indexes.swap(false, Ordering::Relaxed)
        {
            return;
        }
        for segment in self.segments.values_mut() {
            segment.repair_indexes();
        }
    }

    /// Log start offset: the first offset that can be read.
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }
    /// Log end offset: the offset the next record will get.
    pub fn end_offset(&self) -> i64 {
        self.active()
            .map_or(self.start_offset, Segment::next_offset)
    }
    /// Base offset of the active segment: every offset below it is in a sealed segment.
    pub fn active_base_offset(&self) -> i64 {
        self.segments
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.start_offset)
    }
    /// Sum of the segments' `.log` sizes.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }
    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The first batch whose max timestamp is >= `ts`: (its base offset, or the
    /// start offset if larger; its max timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        for segment in self.segments.values() {
            if let Some((offset, timestamp)) = segment.offset_for_timestamp(ts)? {
                return Ok(Some((offset.max(self.start_offset), timestamp)));
            }
        }
        Ok(None)
    }

    /// Largest timestamp in the log and the last offset of the batch holding it.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let mut max: Option<(i64, i64)> = None;
        for segment in self.segments.values() {
            if let Some(m) = segment.largest_timestamp()?
                && max.is_none_or(|(t, _)| m.0 > t)
            {
                max = Some(m);
            }
        }
        Ok(max)
    }

    /// Every producer that wrote here: (producer id, epoch, last sequence,
    /// first offset of its open transaction).
    pub fn active_producers(&self) -> Vec<(i64, i16, i32, Option<i64>)> {
        self.producers.active()
    }

    /// Idempotent-producer state: (epoch, last sequence) of `producer_id`.
    pub fn producer_state(&self, producer_id: i64) -> Option<(i16, i32)> {
        self.producers.get(producer_id)
    }

    /// fsyncs everything, trims the active indexes, writes a producer snapshot
    /// and then the clean-shutdown marker. A poisoned log writes no marker and
    /// returns `Error::Poisoned`, so the next open recovers.
    pub fn close(mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let end = self.end_offset();
        self.write_aborts()?;
        self.active_mut()?.seal()?;
        self.sync_target()
            .sync()
            .map_err(|e| Error::io(e.path, e.error))?;
        self.active_mut()?.sync()?;
        self.write_snapshot(end, true)?;
        marker::write(
            &self.dir,
            &ClosedLog {
                start_offset: self.start_offset,
                end_offset: end,
                last_stable_offset: self.last_stable_offset(),
                size_bytes: self.size_bytes(),
            },
        )?;
        // DURABILITY: the marker (and the snapshot) must be durable before we call it clean.
        sync_dir(&*self.disk, &self.dir)
    }

    pub(crate) fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }

    /// What a new segment of this log is opened with.
    pub(crate) fn files(&self) -> LogFiles {
        (self.disk.clone(), self.open_segments.clone())
    }

    /// Sealed segments, oldest first: (base, next offset, size, largest
    /// timestamp). Nothing is opened for it.
    pub(crate) fn sealed_segments(&self) -> Vec<(i64, i64, u64, Option<i64>)> {
        let sealed = self.segments.len().saturating_sub(1);
        self.segments
            .iter()
            .take(sealed)
            .map(|(base, s)| {
                let largest = s.largest_timestamp().ok().flatten().map(|(t, _)| t);
                (*base, s.next_offset(), s.size(), largest)
            })
            .collect()
    }

    /// The first timestamp of the batch holding `offset` (or the next one).
    pub(crate) fn first_timestamp_at(&self, offset: i64) -> Option<i64> {
        let (_, segment) = self.segments.range(..=offset).next_back()?;
        let (_, header) = segment.find_batch(offset).ok()??;
        Some(header.base_timestamp)
    }

    /// Every aborted transaction the log knows.
    pub(crate) fn all_aborted(&self) -> impl Iterator<Item = &super::AbortedTxn> {
        self.aborted.values()
    }

    pub(crate) fn segment_at(&self, base: i64) -> Option<&Segment> {
        self.segments.get(&base).map(|s| &**s)
    }

    /// Removes the sealed segment at `base` from the log (not its files).
    pub(crate) fn take_segment(&mut self, base: i64) -> Option<Segment> {
        if self.segments.keys().next_back() == Some(&base) {
            return None;
        }
        self.segments.remove(&base).map(|s| *s)
    }

    /// Puts a cleaned segment covering `[base, next)` in place; the aborted
    /// transactions marked inside it are gone with their records.
    pub(crate) fn put_segment(&mut self, segment: Segment, base: i64, next: i64) {
        self.forget_aborted_in(base, next);
        self.segments.insert(base, Box::new(segment));
    }

    /// Deletes the directory and everything in it.
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))
    }
}

//! Opening a log: listing its segments, recovering after an unclean stop
//! from the recovery point, loading producer state and aborted transactions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::files::{list_segments, read_start_offset};
use super::{CLEAN_SHUTDOWN, Log, base_holding, sync_dir};
use crate::storage::disk::Disk;
use crate::storage::producer::ProducerStates;
use crate::storage::segment::{Segment, SegmentConfig};
use crate::storage::{Error, LogConfig, LogFiles, Result, real_unbounded};

/// The base of the first segment an unclean open scans: the one holding
/// `recovery_point` (everything below it was fsynced).
fn first_unflushed(segments: &BTreeMap<i64, Box<Segment>>, recovery_point: i64) -> i64 {
    base_holding(segments, recovery_point).unwrap_or(i64::MIN)
}

/// After an unclean stop: scans every segment from [`first_unflushed`] on,
/// in order. The first one that loses bytes, or does not
/// end where the next begins, becomes the last: the segments after it are
/// removed. In a `compacted` log a segment may end early (the cleaner
/// removed its last records), so only lost bytes count there. Scanned
/// segments other than the last are sealed again; all are fsynced.
fn recover_unflushed(
    disk: &dyn Disk,
    dir: &Path,
    segments: &mut BTreeMap<i64, Box<Segment>>,
    (recovery_point, compacted): (i64, bool),
) -> Result<()> {
    let floor = first_unflushed(segments, recovery_point);
    if floor == recovery_point
        && let Some((_, sealed)) = segments.range_mut(..floor).next_back()
    {
        // The checkpoint may have been written while the segment before was
        // active and ended at the point: its log was fsynced, but maybe not
        // the time index entry its seal wrote later. Checking for it walks
        // the batches after the last entry; rebuilding walks them all.
        let whole = sealed.time_index_is_whole().unwrap_or(false);
        if !whole && let Err(e) = sealed.rebuild_indexes() {
            // Reads check every offset index entry they use (see `Segment::find_batch`).
            tracing::warn!(dir = %dir.display(), error = %e, "cannot rebuild the indexes of the segment before the recovery point");
        }
    }
    let bases: Vec<i64> = segments.range(floor..).map(|(b, _)| *b).collect();
    for (i, base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let Some(segment) = segments.get_mut(base) else {
            continue;
        };
        let dropped = segment.recover()?;
        // A segment never runs into the next one; in a compacted log it may
        // end before the next begins (the cleaner removed its last records).
        let ends_early = next_base.is_some_and(|next| {
            segment.next_offset() > next || (!compacted && segment.next_offset() != next)
        });
        if let (Some(next), 0, false) = (next_base, dropped, ends_early) {
            // A compacted segment that ends early still ends where the next begins.
            segment.set_next_offset(next);
            segment.seal()?;
            segment.sync()?;
            continue;
        }
        segment.sync()?;
        let later: Vec<i64> = bases[i + 1..].to_vec();
        if !later.is_empty() {
            tracing::warn!(dir = %dir.display(), segments = later.len(), end = segment.next_offset(), "removing segments after a damaged one");
        }
        for base in later {
            if let Some(removed) = segments.remove(&base) {
                removed.delete()?;
            }
        }
        // DURABILITY: the removals must survive a crash before anything is appended.
        sync_dir(disk, dir)?;
        break;
    }
    Ok(())
}

impl Log {
    /// Opens (creating if missing) the partition directory `dir` (named
    /// `<topic>-<partition>` by the caller). Recovers the active segment if
    /// there is no clean-shutdown marker. Never panics on damaged files: the
    /// result is a prefix of what was appended, with the same offsets.
    /// After an unclean stop every segment is scanned (see
    /// [`Log::open_from_recovery_point`]).
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log> {
        Log::open_on(dir, config, now_ms, 0, real_unbounded())
    }

    /// [`Log::open`] knowing that every offset below `recovery_point` was
    /// fsynced before the stop: after an unclean stop only the segments
    /// holding offsets at or past it are scanned.
    pub fn open_from_recovery_point(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        recovery_point: i64,
    ) -> Result<Log> {
        Log::open_on(dir, config, now_ms, recovery_point, real_unbounded())
    }

    /// [`Log::open_from_recovery_point`] with every file operation on
    /// `disk`, its sealed segment files counted in `open` (shared by the
    /// logs of a broker).
    pub fn open_on(
        dir: &Path,
        config: impl Into<Arc<LogConfig>>,
        now_ms: i64,
        recovery_point: i64,
        (disk, open): LogFiles,
    ) -> Result<Log> {
        let config = config.into();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let marker = dir.join(CLEAN_SHUTDOWN);
        let clean = marker.exists();
        let persisted_start = read_start_offset(&*disk, dir)?;
        let seg_config = SegmentConfig::from(&*config);
        crate::storage::clean::finish_interrupted(&*disk, dir)?;
        let listing = list_segments(dir)?;
        remove_orphans(&*disk, &listing.orphans);
        let files = (disk.clone(), open.clone());
        let mut segments = open_listed(dir, &listing.segments, seg_config, now_ms, &files)?;
        match segments.values_mut().next_back() {
            Some(active) if clean => active.activate()?,
            Some(_) => {
                let compacted = config.cleanup_policy.compacts();
                recover_unflushed(&*disk, dir, &mut segments, (recovery_point, compacted))?
            }
            None => {
                let base = persisted_start.unwrap_or(0);
                segments.insert(
                    base,
                    Box::new(Segment::create(
                        dir,
                        base,
                        seg_config,
                        now_ms,
                        (disk.clone(), open.clone()),
                    )?),
                );
                sync_dir(&*disk, dir)?;
            }
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            start_offset: persisted_start.unwrap_or(first_base).max(first_base),
            producers: ProducerStates::default(),
            unsynced: Vec::new(),
            unsynced_indexes: Vec::new(),
            seals: 0,
            created: 0,
            created_synced: 0,
            synced_offset: 0,
            poisoned: false,
            disk,
            open_segments: open,
            aborted: BTreeMap::new(),
            unwritten_aborts: BTreeMap::new(),
            snapshots: None,
            damaged_indexes: AtomicBool::new(false),
        };
        log.finish_open(clean, recovery_point, &listing.txn_indexes)?;
        Ok(log)
    }
}

/// Removes index files whose segment is gone, as Kafka's log loader does:
/// retention or DeleteRecords removes a segment's `.log` first, and may have
/// failed (or crashed) before its indexes went. One that cannot be removed
/// now is tried again at the next open.
fn remove_orphans(disk: &dyn Disk, orphans: &[std::path::PathBuf]) {
    for path in orphans {
        tracing::warn!(path = %path.display(), "removing an index file whose segment is gone");
        if let Err(e) = disk.remove(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an orphaned index file");
        }
    }
}

/// Opens the segments at `bases`, each told where the next one begins.
fn open_listed(
    dir: &Path,
    bases: &[i64],
    config: SegmentConfig,
    now_ms: i64,
    files: &LogFiles,
) -> Result<BTreeMap<i64, Box<Segment>>> {
    let mut segments = BTreeMap::new();
    for &base in bases {
        segments.insert(
            base,
            Box::new(Segment::open(dir, base, config, now_ms, files.clone())?),
        );
    }
    let bases: Vec<i64> = segments.keys().copied().collect();
    for (base, next) in bases.iter().zip(bases.iter().skip(1)) {
        if let Some(segment) = segments.get_mut(base) {
            segment.set_next_offset(*next);
        }
    }
    Ok(segments)
}

impl Log {
    /// The rest of opening, once the segments are in place: the start
    /// offset checked against the end, aborted transactions and producer
    /// state loaded (after an unclean stop, replayed from before the first
    /// scanned segment), and the clean-shutdown marker removed.
    fn finish_open(&mut self, clean: bool, recovery_point: i64, txn_indexes: &[i64]) -> Result<()> {
        self.synced_offset = self.end_offset();
        if self.start_offset > self.end_offset() {
            // A power loss took unsynced records that DeleteRecords had
            // already moved the start offset past: as Kafka does, the log
            // starts again, empty, at its start offset.
            tracing::warn!(dir = %self.dir.display(), start = self.start_offset, end = self.end_offset(), "log ends before its start offset after recovery; restarting it empty there");
            self.truncate_fully(self.start_offset)?;
        }
        self.load_aborted(txn_indexes)?;
        // After an unclean stop the producer state (and the aborted
        // transactions) are replayed from before the first scanned segment.
        let replay_limit = if clean {
            i64::MAX
        } else {
            let end = self.end_offset();
            // Their files are rewritten with the rest below.
            self.forget_aborted_from(end);
            // Taken of records the recovery cut: once offsets pass them
            // again, they would describe producers of other records.
            self.remove_snapshots_after(end)?;
            first_unflushed(&self.segments, recovery_point)
        };
        self.load_producer_state(replay_limit)?;
        if clean {
            let marker = self.dir.join(CLEAN_SHUTDOWN);
            self.disk
                .remove(&marker)
                .map_err(|e| Error::io(&marker, e))?;
            // DURABILITY: the marker must be gone before any append, or a crash would skip recovery.
            sync_dir(&*self.disk, &self.dir)?;
        } else {
            self.rewrite_txn_indexes_from(replay_limit)?;
        }
        Ok(())
    }
}

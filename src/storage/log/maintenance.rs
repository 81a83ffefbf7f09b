//! Log operations that move its boundaries: DeleteRecords, truncation,
//! retention, and the producer snapshots that must follow them.

use std::ops::Bound;

use super::{
    Log, SNAPSHOTS_KEPT, START_OFFSET_FILE, base_holding, list_snapshots, remove_snapshot, sync_dir,
};
use crate::storage::disk::{read_file, rename_durably};
use crate::storage::producer::ProducerStates;
use crate::storage::producer::{LEGACY_SNAPSHOT_EXT, SNAPSHOT_EXT};
use crate::storage::segment::{Segment, SegmentConfig};
use crate::storage::{Error, Result};

impl Log {
    /// DeleteRecords: moves the log start offset to `offset` (which must be <=
    /// the end offset, else `OffsetOutOfRange`) and deletes the sealed
    /// segments entirely below it. The new start offset is persisted before
    /// any file is deleted, so it survives a crash. Returns the start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let end = self.end_offset();
        if offset > end || offset < 0 {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: self.start_offset,
                end,
            });
        }
        if offset <= self.start_offset {
            return Ok(self.start_offset);
        }
        self.persist_start_offset(offset)?;
        self.start_offset = offset;
        self.delete_sealed_segments_while(|segment, _| segment.next_offset() <= offset)?;
        Ok(self.start_offset)
    }

    /// Removes every batch holding an offset >= `offset`. If `offset` falls
    /// inside a batch, that whole batch goes and the end offset is its base.
    /// Below the start offset the log is emptied and restarted at `offset`.
    /// A truncation that fails part way fails the log (until a reopen).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if offset < 0 {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: self.start_offset,
                end: self.end_offset(),
            });
        }
        if offset >= self.end_offset() {
            return Ok(());
        }
        let truncated = self.truncate_past(offset);
        self.poisoned |= truncated.is_err();
        truncated
    }

    fn truncate_past(&mut self, offset: i64) -> Result<()> {
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        if offset < self.start_offset || offset < first_base {
            return self.truncate_fully(offset);
        }
        let later: Vec<i64> = self
            .segments
            .range((Bound::Excluded(offset), Bound::Unbounded))
            .map(|(b, _)| *b)
            .collect();
        // Last first: a failure part way leaves the log whole up to there,
        // on disk and in the map.
        for base in later.into_iter().rev() {
            if let Some(segment) = self.segments.get(&base) {
                segment.remove_log()?;
            }
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete_except_log()?;
            }
        }
        self.active_mut()?.truncate_to(offset)?;
        sync_dir(&*self.disk, &self.dir)?;
        let end = self.end_offset();
        self.synced_offset = self.synced_offset.min(end);
        self.remove_snapshots_after(end)?;
        self.drop_aborted_from(end)?;
        self.load_producer_state(end)
    }

    /// Deletes every segment and starts the log empty at `offset`. A
    /// failure leaves the segments not yet deleted in the map (the caller
    /// fails the log, or the open).
    pub(super) fn truncate_fully(&mut self, offset: i64) -> Result<()> {
        while let Some(segment) = self.segments.first_entry() {
            segment.get().remove_log()?;
            segment.remove().delete_except_log()?;
        }
        self.aborted.clear();
        self.unwritten_aborts.clear();
        self.snapshots = None;
        for ext in [SNAPSHOT_EXT, LEGACY_SNAPSHOT_EXT] {
            for snapshot in list_snapshots(&self.dir, ext)? {
                remove_snapshot(&self.dir, snapshot, ext);
            }
        }
        let config = SegmentConfig::from(&*self.config);
        let segment = Segment::create(&self.dir, offset, config, 0, self.files())?;
        self.created += 1;
        self.segments.insert(offset, Box::new(segment));
        self.synced_offset = self.synced_offset.min(offset);
        // DURABILITY: this fsyncs the directory with the new segment in it.
        self.persist_start_offset(offset)?;
        self.start_offset = offset;
        self.synced_offset = offset;
        self.producers = ProducerStates::default();
        Ok(())
    }

    /// Rolls the active segment if `segment.ms` has passed (and it is not
    /// empty), then deletes sealed segments whose largest timestamp is older
    /// than `now_ms - retention.ms`, then the oldest sealed segments as long as
    /// the log stays at or above `retention.bytes` without them (Kafka's rule).
    /// Returns the number of segments deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        // A failed log changes nothing until a reopen has recovered it (a
        // cleaner's swap may be pending, which the reopen completes).
        if self.poisoned {
            return Ok(0);
        }
        if self.active()?.is_expired(&self.config, now_ms) {
            self.roll(now_ms)?;
        }
        // Whatever the policy, segments wholly below the start offset go:
        // DeleteRecords moved it past them but could not remove them all.
        let start = self.start_offset;
        let mut deleted =
            self.delete_sealed_segments_while(|segment, _| segment.next_offset() <= start)?;
        if !self.config.cleanup_policy.deletes() {
            return Ok(deleted);
        }
        if self.config.retention_ms >= 0 {
            let cutoff = now_ms.saturating_sub(self.config.retention_ms);
            deleted += self.delete_sealed_segments_while(|segment, _| {
                let largest = match segment.largest_timestamp() {
                    Ok(Some((t, _))) if t >= 0 => Some(t),
                    _ => segment.modified_ms(),
                };
                largest.is_some_and(|t| t < cutoff)
            })?;
        }
        if self.config.retention_bytes >= 0 {
            let limit = self.config.retention_bytes as u64;
            deleted +=
                self.delete_sealed_segments_while(|segment, size| size - segment.size() >= limit)?;
        }
        Ok(deleted)
    }

    /// Deletes the oldest sealed segments while `f(segment, log size)` holds,
    /// then advances the start offset and fsyncs the directory. Stops at
    /// the first file it cannot remove and returns that error (after the
    /// fsync) with the segments before it deleted.
    fn delete_sealed_segments_while(
        &mut self,
        mut f: impl FnMut(&Segment, u64) -> bool,
    ) -> Result<usize> {
        let mut deleted = 0;
        let mut failed = Ok(());
        while self.segments.len() > 1 {
            let size = self.size_bytes();
            let Some(mut entry) = self.segments.first_entry() else {
                break;
            };
            if !f(entry.get_mut(), size) {
                break;
            }
            // The `.log` goes first, while the segment is still the log's:
            // should it stay, so does the segment, or a later open would
            // find it before a gap (and an unclean one cut the log there).
            failed = entry.get().remove_log();
            if failed.is_err() {
                break;
            }
            let base = *entry.key();
            let removed = entry.remove();
            self.forget_aborted_in(base, removed.next_offset());
            deleted += 1;
            // The rest are caches and markers: the start offset moves past
            // the segment even if one of them stays.
            failed = removed.delete_except_log();
            if failed.is_err() {
                break;
            }
        }
        let mut synced = Ok(());
        if deleted > 0 {
            let first_base = self
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(self.start_offset);
            self.start_offset = self.start_offset.max(first_base);
            // DURABILITY: make the deletions durable before reporting them.
            synced = sync_dir(&*self.disk, &self.dir);
            if let (Err(_), Err(e)) = (&failed, &synced) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot fsync the directory after a failed removal");
            }
        }
        failed.and(synced).map(|()| deleted)
    }

    /// Writes `log-start-offset` atomically: temp file, fsync, rename, fsync dir.
    fn persist_start_offset(&self, offset: i64) -> Result<()> {
        let path = self.dir.join(START_OFFSET_FILE);
        let tmp = self.dir.join(format!("{START_OFFSET_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut &file, format!("{offset}\n").as_bytes())?;
            file.sync_all()
        };
        write().map_err(|e| Error::io(&tmp, e))?;
        // DURABILITY: the rename must survive a crash before segments are
        // deleted. A failure leaves no temp file behind (one that was
        // renamed is gone already).
        rename_durably(&*self.disk, &tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }

    /// Removes the producer snapshots taken past `end`: they describe
    /// records the log no longer holds. One left behind could be loaded once
    /// offsets pass it again, so failing to remove it fails the caller.
    pub(super) fn remove_snapshots_after(&mut self, end: i64) -> Result<()> {
        self.snapshots = None;
        for ext in [SNAPSHOT_EXT, LEGACY_SNAPSHOT_EXT] {
            for snapshot in list_snapshots(&self.dir, ext)?
                .into_iter()
                .filter(|s| *s > end)
            {
                if !remove_snapshot(&self.dir, snapshot, ext) {
                    let path = self
                        .dir
                        .join(crate::storage::segment::file_name(snapshot, ext));
                    return Err(Error::io(
                        path,
                        std::io::Error::other("cannot remove a producer snapshot past the log end"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the producer snapshot for `offset` and keeps only the newest
    /// few. The directory is listed once (removing snapshots under their old
    /// name too); later writes, one per roll, go by the offsets kept in
    /// memory. `durable`: fsynced (see [`ProducerStates::write_snapshot`]).
    pub(super) fn write_snapshot(&mut self, offset: i64, durable: bool) -> Result<()> {
        self.producers.write_snapshot(&self.dir, offset, durable)?;
        let mut snapshots = match self.snapshots.take() {
            Some(known) => known,
            None => {
                for legacy in list_snapshots(&self.dir, LEGACY_SNAPSHOT_EXT)? {
                    remove_snapshot(&self.dir, legacy, LEGACY_SNAPSHOT_EXT);
                }
                list_snapshots(&self.dir, SNAPSHOT_EXT)?
            }
        };
        if let Err(at) = snapshots.binary_search(&offset) {
            snapshots.insert(at, offset);
        }
        let old = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
        let pruned: Vec<i64> = snapshots.drain(..old).collect();
        // One that could not be removed is tried again at the next roll.
        let kept = pruned
            .into_iter()
            .filter(|s| !remove_snapshot(&self.dir, *s, SNAPSHOT_EXT));
        snapshots.splice(0..0, kept);
        self.snapshots = Some(snapshots);
        Ok(())
    }

    /// Loads the newest readable snapshot at or below both the end offset and
    /// `at_most`, and replays the batch headers after it; the transaction
    /// markers replayed restore any aborted-transaction entries missing.
    pub(super) fn load_producer_state(&mut self, at_most: i64) -> Result<()> {
        let end = self.end_offset();
        let limit = end.min(at_most);
        let mut states = ProducerStates::default();
        let mut from = self.segments.keys().next().copied().unwrap_or(0);
        let newest_first = |ext| -> Result<Vec<(i64, &str)>> {
            let found = list_snapshots(&self.dir, ext)?;
            Ok(found.into_iter().rev().map(|s| (s, ext)).collect())
        };
        let candidates = newest_first(SNAPSHOT_EXT)?
            .into_iter()
            .chain(newest_first(LEGACY_SNAPSHOT_EXT)?)
            .filter(|(s, _)| *s <= limit);
        for (snapshot, ext) in candidates {
            let path = self
                .dir
                .join(crate::storage::segment::file_name(snapshot, ext));
            // One that cannot be read fails the open: falling back to an
            // older one loses the producers whose records are gone since.
            let bytes = read_file(&*self.disk, &path).map_err(|e| Error::io(&path, e))?;
            if let Some(loaded) = bytes.and_then(|b| ProducerStates::decode(&b)) {
                states = loaded;
                from = from.max(snapshot);
                break;
            }
            tracing::warn!(path = %path.display(), "ignoring damaged producer snapshot");
        }
        let floor = base_holding(&self.segments, from).unwrap_or(i64::MIN);
        let mut markers = Vec::new();
        for (base, segment) in self.segments.range(floor..) {
            segment.for_each_header(from, |position, h| {
                if let Some(first) = states.update(h) {
                    markers.push((*base, position, *h, first));
                }
            })?;
        }
        self.producers = states;
        for (base, position, header, first) in markers {
            let batch = match self.segments.get(&base) {
                Some(segment) => segment.read_batch(position, header.size)?,
                None => continue,
            };
            self.note_marker(&header, &batch, first);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

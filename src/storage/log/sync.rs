//! Making a log durable: the files a group commit fsyncs, what its
//! completion proves (the recovery point), and the fail-stop after a
//! failed fsync.

use super::{Log, SyncTarget};

impl Log {
    /// For group commit: the end offset and the files written since the last
    /// completed sync. The caller fsyncs them without the log lock, then calls
    /// [`Log::mark_synced`] (or [`Log::poison`] if the fsync failed). Only
    /// `.txnindex` entries that could not be written before are written (and
    /// fsynced) here, under the lock: that is rare, and they are small.
    pub fn sync_target(&mut self) -> SyncTarget {
        if !self.unwritten_aborts.is_empty() {
            // Still failing: the recovery point stays at the first.
            let _ = self.write_aborts();
        }
        SyncTarget {
            end_offset: self.end_offset(),
            files: self.unsynced.iter().map(|(f, _)| f.clone()).collect(),
            indexes: self
                .unsynced_indexes
                .iter()
                .map(|(p, ..)| p.clone())
                .collect(),
            seals: self.seals,
            created: self.created,
            // A roll since the last sync created files in the directory.
            dir: (self.created > self.created_synced).then(|| self.dir.clone()),
            disk: self.disk.clone(),
        }
    }

    /// Records that `target` was fsynced.
    pub fn mark_synced(&mut self, target: &SyncTarget) {
        if self.poisoned {
            return;
        }
        self.synced_offset = self
            .synced_offset
            .max(target.end_offset.min(self.end_offset()));
        self.unsynced.retain(|(_, end)| *end > target.end_offset);
        self.unsynced_indexes
            .retain(|(.., seal)| *seal > target.seals);
        self.created_synced = self.created_synced.max(target.created);
    }

    /// Every record below this is known to be on disk (the index files of a
    /// segment sealed since the last sync may not be: see
    /// [`Log::synced_offset`]). It never moves back while the log is open.
    pub fn synced_records(&self) -> i64 {
        self.synced_offset.min(self.end_offset())
    }

    /// Every offset below this is known to be on disk, and so are the index
    /// files of the sealed segments below it: a recovery point. A segment
    /// sealed since the last sync changed its indexes after that sync, as
    /// its last time entry was written and its files trimmed, so the point
    /// stays at its base until a sync covers them.
    pub fn synced_offset(&self) -> i64 {
        // Segments deleted since, or active again after a truncation, do
        // not count: nothing below the point needs them.
        let active = self.active_base_offset();
        self.unsynced_indexes
            .iter()
            .map(|(_, base, _)| *base)
            .filter(|base| *base < active && self.segments.contains_key(base))
            .fold(self.synced_offset, i64::min)
    }

    /// Where an unclean open must start replaying: [`Log::synced_offset`],
    /// or an ABORT marker before it whose `.txnindex` entry is not written
    /// yet (the replay writes it). The checkpoint records this one.
    pub fn recovery_point(&self) -> i64 {
        let unwritten = self.unwritten_aborts.keys().next().copied();
        unwritten.map_or(self.synced_offset(), |marker| {
            marker.min(self.synced_offset())
        })
    }

    /// Marks the log failed (fail-stop after a failed fsync): every later
    /// append returns `Error::Poisoned` until the log is reopened.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// True once [`Log::poison`]ed: no sync may count any more (a second
    /// fsync after a failed one can succeed with the dirty pages dropped).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

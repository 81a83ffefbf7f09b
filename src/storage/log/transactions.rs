//! Transactions in a log: transactional appends, COMMIT/ABORT markers, the
//! last stable offset and the aborted transactions a read_committed fetch
//! must skip.
//!
//! The aborted transactions are kept in memory (one small entry per aborted
//! transaction) and in each segment's `.txnindex`, Kafka's file, in the
//! segment holding the ABORT marker. On open the files are read, entries
//! past the log end are dropped, and the markers replayed (from the producer
//! snapshot; after an unclean stop, from the recovery point) are added again
//! if missing; after an unclean stop the replayed segments' files are then
//! rewritten. Below
//! the recovery point nothing rebuilds them: an entry that cannot be written
//! is kept (`unwritten_aborts`) and holds the recovery point until it is.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::PathBuf;

use super::{Log, base_holding};
use crate::storage::disk::read_file;
use crate::storage::record::{Admit, BatchHeader};
use crate::storage::segment::file_name;
use crate::storage::txn::{self, AbortedTxn};
use crate::storage::{AppendInfo, Error, Result};

const TXN_INDEX: &str = "txnindex";

impl Log {
    /// [`Log::append`] admitting transactional batches, for a partition the
    /// transaction coordinator has added to the producer's transaction. The
    /// first such batch of a producer opens its transaction here, holding
    /// back the last stable offset until its marker.
    pub fn append_transactional(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_admitting(batches, now_ms, Admit::Transactional)
    }

    /// Writes a COMMIT (`commit`) or ABORT marker for `producer_id` at
    /// `epoch`, ending its transaction in this partition. An ABORT of an open
    /// transaction is recorded in the aborted-transaction index.
    pub fn append_marker(
        &mut self,
        (producer_id, epoch): (i64, i16),
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let batch = txn::control_batch(producer_id, epoch, commit, coordinator_epoch, now_ms);
        self.append_admitting(&batch, now_ms, Admit::Markers)
    }

    /// The offset below which no transaction is open: the first offset of the
    /// earliest open transaction, else the log end offset.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .unwrap_or_else(|| self.end_offset())
    }

    /// Every open transaction: (producer id, epoch, first offset).
    pub fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.producers.open_transactions()
    }

    /// The aborted transactions overlapping `[from, upto)`, by marker offset.
    pub fn aborted_transactions(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        self.aborted
            .range(from..)
            .map(|(_, t)| *t)
            .filter(|t| t.first_offset < upto)
            .collect()
    }

    /// After a marker in `batch` ended a transaction that began at `first`:
    /// records it if it was aborted.
    pub(super) fn note_marker(&mut self, header: &BatchHeader, batch: &[u8], first: i64) {
        if txn::is_commit(header, batch) != Some(false) {
            return;
        }
        let entry = AbortedTxn {
            producer_id: header.producer_id,
            first_offset: first,
            last_offset: header.base_offset,
            last_stable_offset: self
                .producers
                .first_unstable_offset()
                .unwrap_or(header.base_offset + 1),
        };
        self.record_abort(entry);
    }

    fn record_abort(&mut self, entry: AbortedTxn) {
        if self.aborted.contains_key(&entry.last_offset) {
            return;
        }
        self.aborted.insert(entry.last_offset, entry);
        self.unwritten_aborts.insert(entry.last_offset, entry);
        let _ = self.write_aborts();
    }

    /// Writes the `.txnindex` entries not written yet, in order; stops at
    /// the first that fails (the log keeps it, see `unwritten_aborts`).
    pub(super) fn write_aborts(&mut self) -> Result<()> {
        while let Some((&last, entry)) = self.unwritten_aborts.first_key_value() {
            let path = self.txn_index_path(last);
            if let Err(e) = txn::append_entry(&*self.disk, &path, entry) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the aborted-transaction index; will try again at the next sync");
                return Err(Error::io(&path, e));
            }
            self.unwritten_aborts.remove(&last);
        }
        Ok(())
    }

    /// For a log being deleted: the `.txnindex` entries not written yet go,
    /// so that a sync already under way writes nothing into the directory
    /// being removed.
    pub fn forget_unwritten_aborts(&mut self) {
        self.unwritten_aborts.clear();
    }

    /// The `.txnindex` of the segment holding `offset`.
    fn txn_index_path(&self, offset: i64) -> PathBuf {
        self.txn_index_of(self.segment_base_of(offset))
    }

    /// The base of the segment holding `offset`.
    fn segment_base_of(&self, offset: i64) -> i64 {
        base_holding(&self.segments, offset).unwrap_or(0)
    }

    /// The `.txnindex` of the segment based at `base`.
    fn txn_index_of(&self, base: i64) -> PathBuf {
        self.dir.join(file_name(base, TXN_INDEX))
    }

    /// Reads the `.txnindex` files found at open (`bases`), of segments
    /// that exist. One that cannot be read fails the open: below the
    /// recovery point nothing would bring its aborts back.
    pub(super) fn load_aborted(&mut self, bases: &[i64]) -> Result<()> {
        for base in bases.iter().filter(|b| self.segments.contains_key(b)) {
            let path = self.txn_index_of(*base);
            let bytes = read_file(&*self.disk, &path).map_err(|e| Error::io(&path, e))?;
            for entry in AbortedTxn::decode_all(&bytes.unwrap_or_default()) {
                self.aborted.insert(entry.last_offset, entry);
            }
        }
        Ok(())
    }

    /// Forgets the aborted transactions whose markers are at or past
    /// `offset` and rewrites the index files that held them.
    pub(super) fn drop_aborted_from(&mut self, offset: i64) -> Result<()> {
        for base in self.forget_aborted_from(offset) {
            self.rewrite_txn_index(base)?;
        }
        Ok(())
    }

    /// Forgets the aborted transactions whose markers are at or past
    /// `offset`, leaving their index files as they are; returns the bases
    /// of the segments whose files held them.
    pub(super) fn forget_aborted_from(&mut self, offset: i64) -> BTreeSet<i64> {
        let dropped: Vec<i64> = self.aborted.range(offset..).map(|(o, _)| *o).collect();
        let bases = dropped.iter().map(|o| self.segment_base_of(*o)).collect();
        for o in dropped {
            self.aborted.remove(&o);
            self.unwritten_aborts.remove(&o);
        }
        bases
    }

    /// Rewrites, if it exists, the `.txnindex` of the segment based at
    /// `base` with the entries the log holds for it (fsynced). An unwritten
    /// one is left out: it is written when its turn comes.
    fn rewrite_txn_index(&self, base: i64) -> Result<()> {
        let path = self.txn_index_of(base);
        if !path.exists() {
            return Ok(());
        }
        // The segment's markers: from its base to where the next one begins.
        let next = self
            .segments
            .range((Bound::Excluded(base), Bound::Unbounded))
            .next()
            .map_or(i64::MAX, |(b, _)| *b);
        let kept: Vec<u8> = self
            .aborted
            .range(base..next)
            .filter(|(marker, _)| !self.unwritten_aborts.contains_key(marker))
            .flat_map(|(_, t)| t.encode())
            .collect();
        txn::rewrite(&*self.disk, &path, &kept).map_err(|e| Error::io(&path, e))
    }

    /// After an unclean stop: the `.txnindex` files of the segments from
    /// `floor` on may hold entries that reached the page cache but not the
    /// disk (the stop came between their write and their fsync, or the
    /// fsync failed). Nothing would write them again, since the replay finds
    /// them loaded; so each is rewritten (fsynced, and the directory too).
    pub(super) fn rewrite_txn_indexes_from(&self, floor: i64) -> Result<()> {
        let bases: Vec<i64> = self.segments.range(floor..).map(|(b, _)| *b).collect();
        for base in bases {
            self.rewrite_txn_index(base)?;
        }
        Ok(())
    }

    /// Forgets the aborted transactions of a deleted segment `[base, next)`.
    pub(super) fn forget_aborted_in(&mut self, base: i64, next: i64) {
        let gone: Vec<i64> = self.aborted.range(base..next).map(|(o, _)| *o).collect();
        for o in gone {
            self.aborted.remove(&o);
            self.unwritten_aborts.remove(&o);
        }
    }
}

//! Offsets of transactions (TxnOffsetCommit), as Kafka keeps them: written
//! to the offsets log when sent, as a transactional batch of the producer
//! (fsynced before the answer under `flush = "always"`), and counted once
//! a COMMIT marker of the producer follows there (EndTxn, or the end of a
//! transaction decided before a stop); an ABORT marker drops them. A
//! committed transaction so never loses its offsets to a crash, and they
//! stay invisible to OffsetFetch until it commits. Of two commits of one
//! partition the later record wins, and a tombstone drops the staged
//! commits before it: what the log's compaction keeps is what counts.

use kafka_protocol::ResponseError;

use super::codec::Entry;
use super::offsets::offset_entries;
use super::store::StagedOffset;
use super::{Commit, Coordinator, Inner, commit_error, fail_successes, group_entry};

impl Coordinator {
    /// TxnOffsetCommit: writes `commits` to `group_id` in `producer`'s (id,
    /// epoch) transaction. Per commit: `Ok`, or why it was refused.
    pub(crate) async fn stage(
        &self,
        group_id: &str,
        producer: (i64, i16),
        commits: &[Commit],
    ) -> Vec<Result<(), ResponseError>> {
        let max_metadata = self.config.offset_metadata_max_bytes;
        let (mut results, last) = self.lock().stage(group_id, producer, commits, max_metadata);
        self.settle(last, &mut results).await;
        results
    }

    /// Ends `producer`'s transaction in the offsets log, if it sent
    /// offsets: a COMMIT marker counts them, an ABORT marker drops them.
    /// Returns once the marker (this one, or the one a failed try wrote) is
    /// durable under `flush = "always"`.
    pub(crate) async fn end_transaction(
        &self,
        producer: (i64, i16),
        commit: bool,
    ) -> crate::Result<()> {
        let Some(marker) = self.lock().end_transaction(producer, commit)? else {
            return Ok(());
        };
        self.sync_through(marker).await?;
        // Durable: a retry has nothing left to wait for.
        let mut inner = self.lock();
        if inner.markers.get(&producer.0) == Some(&marker) {
            inner.markers.remove(&producer.0);
        }
        Ok(())
    }

    /// The partitions of `group` whose offsets wait in a transaction not
    /// yet ended (OffsetFetch with `require_stable` answers
    /// UNSTABLE_OFFSET_COMMIT for them).
    pub(crate) fn pending_offsets(&self, group: &str) -> std::collections::BTreeSet<(String, i32)> {
        self.lock().staged.partitions_of(group)
    }

    /// At start-up, ends every transaction left open in the offsets log as
    /// `decide(producer id)` says (epoch, commit), and with an ABORT where
    /// it knows nothing of the producer. Blocking: fsyncs the markers under
    /// `flush = "always"`.
    pub(crate) fn end_transactions_left(
        &self,
        decide: impl Fn(i64) -> Option<(i16, bool)>,
    ) -> crate::Result<()> {
        let mut inner = self.lock();
        let open = inner.store.open_transactions();
        for &(producer_id, epoch, _) in &open {
            let (decided, commit) = decide(producer_id).unwrap_or((epoch, false));
            tracing::info!(
                producer_id,
                commit,
                "ending the offsets of a transaction left open"
            );
            inner.end_transaction((producer_id, epoch.max(decided)), commit)?;
        }
        // Staged offsets with no transaction open (replay stopped early).
        inner.staged.clear();
        if self.flush_always && !open.is_empty() {
            inner.store.sync()?;
        }
        // Durable (or, under flush = "os", never waited for).
        inner.markers.clear();
        Ok(())
    }
}

impl Inner {
    fn stage(
        &mut self,
        group_id: &str,
        (producer_id, epoch): (i64, i16),
        commits: &[Commit],
        max_metadata: usize,
    ) -> (Vec<Result<(), ResponseError>>, Option<i64>) {
        if group_id.is_empty() {
            return (
                vec![Err(ResponseError::InvalidGroupId); commits.len()],
                None,
            );
        }
        let (entries, mut results) = offset_entries(group_id, commits, max_metadata);
        if entries.is_empty() {
            return (results, None);
        }
        let written = self.flush_unwritten().and_then(|()| {
            let records: Vec<_> = entries.iter().map(Entry::encode).collect();
            self.store
                .append_transactional(&records, (producer_id, epoch))
        });
        let last = match written {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "transactional offsets could not be written");
                fail_successes(&mut results, commit_error(&e));
                return (results, None);
            }
        };
        // The group exists from its first commit, as in Kafka: DeleteGroups
        // and OffsetDelete can then reach what waits here.
        group_entry(&mut self.groups, group_id);
        let first = last + 1 - entries.len() as i64;
        if !self.in_transaction(producer_id, first) {
            // Left by a replay that stopped early: not this transaction's.
            self.staged.take(producer_id);
        }
        let staged = (first..)
            .zip(entries)
            .filter_map(|(record, entry)| StagedOffset::at(record, entry));
        self.staged.add(producer_id, staged);
        (results, Some(last))
    }

    /// Drops the staged commits of the partitions `entries` write
    /// tombstones for: they come before them in the log.
    pub(super) fn drop_staged_under(&mut self, entries: &[Entry]) {
        for entry in entries {
            if let Entry::Offset {
                group,
                topic,
                partition,
                value: None,
            } = entry
            {
                self.staged.drop_partition(group, topic, *partition);
            }
        }
    }

    /// Whether `producer_id`'s transaction in the offsets log began before
    /// `offset`.
    fn in_transaction(&self, producer_id: i64, offset: i64) -> bool {
        self.store
            .open_transactions()
            .iter()
            .any(|&(pid, _, first)| pid == producer_id && first < offset)
    }

    /// Writes what a failed write left, if anything, so that what comes
    /// next follows it in the log.
    fn flush_unwritten(&mut self) -> crate::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        self.append(&[]).map(drop)
    }

    /// Writes the marker ending `producer`'s transaction, if one is open in
    /// the offsets log, and on COMMIT counts its offsets. Returns the
    /// offset of the producer's last marker (this one, or an earlier one a
    /// retried end must see durable).
    fn end_transaction(
        &mut self,
        (producer_id, epoch): (i64, i16),
        commit: bool,
    ) -> crate::Result<Option<i64>> {
        let open = self
            .store
            .open_transactions()
            .iter()
            .any(|(pid, ..)| *pid == producer_id);
        if !open {
            return Ok(self.markers.get(&producer_id).copied());
        }
        self.flush_unwritten()?;
        let marker = self.store.append_marker((producer_id, epoch), commit)?;
        self.markers.insert(producer_id, marker);
        for staged in self.staged.take(producer_id) {
            if commit {
                let group = group_entry(&mut self.groups, &staged.group);
                staged.commit_into(&mut group.offsets);
            }
        }
        Ok(Some(marker))
    }
}

#[cfg(test)]
mod tests;

//! Offsets of transactions (TxnOffsetCommit), as Kafka keeps them: written
//! to the offsets log when sent, as a transactional batch of the producer
//! (fsynced before the answer under `flush = "always"`), and counted once
//! a COMMIT marker of the producer follows there (EndTxn, or the end of a
//! transaction decided before a stop); an ABORT marker drops them. A
//! committed transaction so never loses its offsets to a crash, and they
//! stay invisible to OffsetFetch until it commits.

use kafka_protocol::ResponseError;

use super::codec::Entry;
use super::offsets::offset_entries;
use super::state::Group;
use super::{Commit, Coordinator, Inner, response_error};
use crate::util::now_ms;

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
    /// Returns once the marker is durable under `flush = "always"`.
    pub(crate) async fn end_transaction(
        &self,
        producer: (i64, i16),
        commit: bool,
    ) -> crate::Result<()> {
        let last = self.lock().end_transaction(producer, commit)?;
        match last {
            Some(last) => self.sync_through(last).await,
            None => Ok(()),
        }
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
        if self.flush_always && !open.is_empty() {
            inner.store.sync()?;
        }
        Ok(())
    }
}

impl Inner {
    fn stage(
        &mut self,
        group_id: &str,
        producer: (i64, i16),
        commits: &[Commit],
        max_metadata: usize,
    ) -> (Vec<Result<(), ResponseError>>, Option<i64>) {
        let (entries, mut results) = offset_entries(group_id, commits, max_metadata);
        if entries.is_empty() {
            return (results, None);
        }
        // What a failed write left goes first, in a batch of its own.
        let flushed = if self.unwritten.is_empty() {
            Ok(())
        } else {
            self.append(&[]).map(drop)
        };
        let records: Vec<_> = entries.iter().map(Entry::encode).collect();
        let written = flushed.and_then(|()| self.store.append_transactional(&records, producer));
        match written {
            Ok(last) => {
                self.staged.entry(producer.0).or_default().extend(entries);
                (results, Some(last))
            }
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "transactional offsets could not be written");
                let code = response_error(&e);
                results
                    .iter_mut()
                    .filter(|r| r.is_ok())
                    .for_each(|r| *r = Err(code));
                (results, None)
            }
        }
    }

    /// Writes the marker ending `producer`'s transaction, if one is open in
    /// the offsets log, and on COMMIT applies its offsets; returns the
    /// marker's offset.
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
            self.staged.remove(&producer_id);
            return Ok(None);
        }
        let last = self.store.append_marker((producer_id, epoch), commit)?;
        let staged = self.staged.remove(&producer_id).unwrap_or_default();
        if commit {
            for entry in staged {
                self.apply_committed(entry);
            }
        }
        Ok(Some(last))
    }

    fn apply_committed(&mut self, entry: Entry) {
        if let Entry::Offset {
            group,
            topic,
            partition,
            value: Some(value),
        } = entry
        {
            self.groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now_ms()))
                .offsets
                .insert((topic, partition), value);
        }
    }
}

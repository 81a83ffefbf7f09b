//! Ending transactions: EndTxn, the decision carried out in every
//! partition (and, on commit, in the consumer groups), and the timeout check.

use kafka_protocol::ResponseError;

use super::{Status, TxnCoordinator, TxnMeta, recover, refuse};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::util::now_ms;

impl TxnCoordinator {
    /// EndTxn: writes the markers, in the offsets log and the partitions.
    pub(crate) async fn end(
        &self,
        catalog: &Catalog,
        txn_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<()> {
        let _ending = self.ending.hold(txn_id).await;
        let mut meta = self.with_current(txn_id, producer, |meta| meta.clone())?;
        if let Some(decided) = meta.pending_decision() {
            // A retry after a failure half way: carry the decision out.
            if decided != commit {
                return Err(refuse(
                    ResponseError::InvalidTxnState,
                    "the transaction is already being ended the other way",
                ));
            }
            return self.finish(catalog, txn_id, &mut meta, commit).await;
        }
        if !meta.is_open() {
            // A retry of an EndTxn whose answer was lost (a restart) gets it again.
            let done = if commit {
                Status::CompleteCommit
            } else {
                Status::CompleteAbort
            };
            return if meta.status == done {
                Ok(())
            } else {
                Err(refuse(
                    ResponseError::InvalidTxnState,
                    "no transaction is open",
                ))
            };
        }
        self.finish(catalog, txn_id, &mut meta, commit).await
    }

    /// Records the decision (Prepare*, fsynced under `flush = "always"`)
    /// unless it already is; ends the transaction's offsets (a marker in
    /// the offsets log); writes a marker in every partition of `meta`; then
    /// records the end. `meta` and the live state become the ended
    /// transaction. A failure part way
    /// leaves the decision recorded, in memory too: a retried EndTxn, a new
    /// InitProducerId, the timeout check or the next start-up carries it
    /// out; nothing ever ends it the other way.
    pub(super) async fn finish(
        &self,
        catalog: &Catalog,
        txn_id: &str,
        meta: &mut TxnMeta,
        commit: bool,
    ) -> Result<()> {
        let (prepare, complete) = if commit {
            (Status::PrepareCommit, Status::CompleteCommit)
        } else {
            (Status::PrepareAbort, Status::CompleteAbort)
        };
        if meta.pending_decision().is_none() {
            self.persist(txn_id, &meta.record(prepare), true).await?;
            meta.status = prepare;
            meta.last_update_ms = now_ms();
            self.lock().insert(txn_id.to_string(), meta.clone());
        }
        // Before the markers: a client told the transaction committed finds
        // its offsets committed too.
        self.groups
            .end_transaction((meta.producer_id, meta.epoch), commit)
            .await?;
        recover::write_markers(catalog, meta, commit, self.durable).await?;
        meta.status = complete;
        meta.partitions.clear();
        meta.started_ms = -1;
        meta.last_update_ms = now_ms();
        self.persist(txn_id, &meta.record(complete), false).await?;
        self.lock().insert(txn_id.to_string(), meta.clone());
        Ok(())
    }

    /// Aborts the open transactions older than their timeout, bumping the
    /// epoch so the producer learns it was fenced.
    pub(crate) async fn abort_expired(&self, catalog: &Catalog) {
        let now = now_ms();
        let expired: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, m)| {
                let open_too_long = m.is_open() && now - m.started_ms > i64::from(m.timeout_ms);
                // A decision stuck half way (a failed marker) is retried.
                let stuck = m.pending_decision().is_some()
                    && now - m.last_update_ms > i64::from(m.timeout_ms).min(10_000);
                open_too_long || stuck
            })
            .map(|(id, _)| id.clone())
            .collect();
        for txn_id in expired {
            // An id busy with a request (an EndTxn awaiting its fsync) is
            // looked at again on the next tick: it holds up no other.
            let Some(_ending) = self.ending.try_hold(&txn_id) else {
                continue;
            };
            let Some(mut meta) = self.lock().get(&txn_id).cloned() else {
                continue;
            };
            if let Some(commit) = meta.pending_decision() {
                if let Err(e) = self.finish(catalog, &txn_id, &mut meta, commit).await {
                    tracing::warn!(txn_id, error = %e, "could not finish a decided transaction");
                }
                continue;
            }
            if !meta.is_open() {
                continue;
            }
            meta.epoch = meta.epoch.saturating_add(1);
            tracing::info!(
                txn_id,
                producer_id = meta.producer_id,
                "transaction timed out; aborting"
            );
            if let Err(e) = self.finish(catalog, &txn_id, &mut meta, false).await {
                tracing::warn!(txn_id, error = %e, "could not abort a timed-out transaction");
            }
        }
    }
}

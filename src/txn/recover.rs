//! Start-up of the transaction coordinator, and the markers that end a
//! transaction in its partitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::state_log::{self, STATE_DIR, Status, TxnRecord};
use super::{TxnCoordinator, TxnMeta};
use crate::catalog::{Catalog, Partition};
use crate::error::Result;
use crate::group::Coordinator;
use crate::internal_log::InternalLog;
use kafka_protocol::ResponseError;

/// Segment size of `__transaction_state-0` (Kafka's
/// `transaction.state.log.segment.bytes` is 100 MiB; the log is compacted,
/// so a smaller segment keeps it smaller).
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The coordinator's state file before `__transaction_state` (read no more).
const LEGACY_FILE: &str = "transaction-decisions";

/// Writes a COMMIT or ABORT marker of `meta`'s producer in each of its
/// partitions where that producer has a transaction open; returns those
/// partitions and their markers' offsets.
fn append_markers(
    catalog: &Catalog,
    meta: &TxnMeta,
    commit: bool,
) -> Result<Vec<(Arc<Partition>, i64)>> {
    let mut written = Vec::new();
    for (topic, index) in &meta.partitions {
        let Ok(partition) = catalog.partition(topic, *index) else {
            continue;
        };
        let transactions = match partition.open_transactions() {
            // Deleted meanwhile: nothing to end there.
            Err(e) if e.is(ResponseError::UnknownTopicOrPartition) => continue,
            other => other?,
        };
        let open = transactions
            .into_iter()
            .any(|(pid, ..)| pid == meta.producer_id);
        if !open {
            continue;
        }
        let info = match partition.append_marker((meta.producer_id, meta.epoch), commit) {
            Err(e) if e.is(ResponseError::UnknownTopicOrPartition) => continue,
            other => other?,
        };
        written.push((partition, info.last_offset));
    }
    Ok(written)
}

/// [`append_markers`], then, with `durable`, fsyncs every partition of the
/// transaction before returning.
pub(super) async fn write_markers(
    catalog: &Catalog,
    meta: &TxnMeta,
    commit: bool,
    durable: bool,
) -> Result<()> {
    append_markers(catalog, meta, commit)?;
    if !durable {
        return Ok(());
    }
    // Every partition of the transaction, whichever sync fails, and not
    // only those given a marker now: a retry of the end appends none where
    // an earlier try did, and that marker may not be fsynced yet.
    let mut result = Ok(());
    for (topic, index) in &meta.partitions {
        let Ok(partition) = catalog.partition(topic, *index) else {
            continue;
        };
        match partition.flush().await {
            // Deleted meanwhile: nothing to end there.
            Err(e) if e.is(ResponseError::UnknownTopicOrPartition) => {}
            Err(e) if result.is_ok() => result = Err(e),
            _ => {}
        }
    }
    result
}

impl TxnCoordinator {
    /// Opens `__transaction_state-0` and finishes what a previous run left:
    /// a prepared transaction is completed as decided, an ongoing one is
    /// aborted, the offsets still open in the offsets log end as their
    /// transaction did, and any transaction still
    /// open in a partition that no state accounts for is aborted (when its
    /// log opens, see [`Catalog::abort_leftover_transactions`]). Runs
    /// before the broker serves (inside a blocking task).
    pub(crate) fn recover(
        catalog: &Catalog,
        groups: Arc<Coordinator>,
        (durable, max_timeout_ms): (bool, i32),
    ) -> Result<TxnCoordinator> {
        let mut records: HashMap<String, TxnRecord> = HashMap::new();
        let log = InternalLog::open(
            (catalog.data_dir(), catalog.files()),
            STATE_DIR,
            SEGMENT_BYTES,
            |_, _, key, value| {
                let Some(id) = state_log::decode_key(key) else {
                    return;
                };
                match value.and_then(state_log::decode_value) {
                    Some(record) => records.insert(id, record),
                    None => records.remove(&id),
                };
            },
        )?;
        let legacy = catalog.data_dir().join(LEGACY_FILE);
        if legacy.exists() {
            tracing::warn!(path = %legacy.display(), "removing the old transaction state file; transactions it had open are aborted");
            let _ = std::fs::remove_file(&legacy);
        }
        let coordinator = TxnCoordinator {
            txns: Mutex::new(HashMap::new()),
            ending: Default::default(),
            log: Mutex::new(log),
            sync_turn: Default::default(),
            durable,
            max_timeout_ms,
            groups,
        };
        let mut txns = HashMap::new();
        for (id, record) in records {
            let mut meta = TxnMeta::from_record(record);
            coordinator.finish_left_open(catalog, &id, &mut meta)?;
            txns.insert(id, meta);
        }
        // Offsets of a transaction count as it ended; a producer no state
        // knows of had its transaction aborted.
        coordinator.groups.end_transactions_left(|producer_id| {
            let meta = txns.values().find(|m| m.producer_id == producer_id)?;
            Some((meta.epoch, meta.status == Status::CompleteCommit))
        })?;
        // Every other transaction open in a partition is a leftover: aborted
        // now where the log is open, and as each other log opens.
        catalog.abort_leftover_transactions()?;
        *coordinator.lock() = txns;
        Ok(coordinator)
    }

    /// Completes a prepared transaction as decided, and aborts an ongoing
    /// one, recording its end; a transaction in any other state is left as it is.
    fn finish_left_open(&self, catalog: &Catalog, id: &str, meta: &mut TxnMeta) -> Result<()> {
        let commit = match meta.status {
            Status::PrepareCommit => true,
            Status::PrepareAbort | Status::PrepareEpochFence | Status::Ongoing => false,
            _ => return Ok(()),
        };
        tracing::info!(txn_id = %id, producer_id = meta.producer_id, status = meta.status.name(), commit, "finishing a transaction left open");
        // DURABILITY: the markers are on disk before the end is recorded.
        for (partition, _) in append_markers(catalog, meta, commit)? {
            partition.flush_blocking()?;
        }
        let status = if commit {
            Status::CompleteCommit
        } else {
            Status::CompleteAbort
        };
        meta.status = status;
        meta.partitions.clear();
        meta.started_ms = -1;
        self.append_state(id, &meta.record(status)).map(drop)
    }
}

//! What the coordinator knows of one transactional id, and its record in
//! the transaction state log.

use std::collections::BTreeSet;

use super::state_log::{Status, TxnRecord};
use crate::util::now_ms;

/// One transactional id.
#[derive(Debug, Clone)]
pub(crate) struct TxnMeta {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) status: Status,
    /// Partitions in the open transaction.
    pub(crate) partitions: BTreeSet<(String, i32)>,
    /// When the open transaction started (ms), -1 when none is open.
    pub(crate) started_ms: i64,
    pub(crate) last_update_ms: i64,
}

impl TxnMeta {
    pub(super) fn from_record(r: TxnRecord) -> TxnMeta {
        TxnMeta {
            producer_id: r.producer_id,
            epoch: r.epoch,
            timeout_ms: r.timeout_ms,
            status: r.status,
            partitions: r.partitions,
            started_ms: r.start_ms,
            last_update_ms: r.last_update_ms,
        }
    }

    pub(super) fn record(&self, status: Status) -> TxnRecord {
        TxnRecord {
            producer_id: self.producer_id,
            epoch: self.epoch,
            timeout_ms: self.timeout_ms,
            status,
            partitions: self.partitions.clone(),
            last_update_ms: now_ms(),
            start_ms: self.started_ms,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.status == Status::Ongoing
    }

    /// The decision recorded and not yet carried out (a marker or the
    /// offsets failed): `Some(true)` to commit.
    pub(super) fn pending_decision(&self) -> Option<bool> {
        match self.status {
            Status::PrepareCommit => Some(true),
            Status::PrepareAbort | Status::PrepareEpochFence => Some(false),
            _ => None,
        }
    }
}

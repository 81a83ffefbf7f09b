//! The transaction coordinator: transactional ids, their producer ids and
//! epochs, the partitions of each open transaction, and COMMIT/ABORT
//! markers written through the partitions and the offsets log.
//!
//! State is kept in memory and in the internal log `__transaction_state-0`
//! ([`state_log`], Kafka's schemas), appended before it is acted on: the
//! id's producer (Empty), each partition added (Ongoing, before the client
//! may produce to it), the decision (PrepareCommit / PrepareAbort, before
//! any marker) and the end (CompleteCommit / CompleteAbort). With
//! `flush = "always"` the first three are fsynced before they are relied on.
//! TxnOffsetCommit offsets go to the offsets log in the transaction (see
//! [`crate::group::Coordinator::stage`]) and count with its COMMIT marker
//! there. At start-up ([`TxnCoordinator::recover`]) a prepared transaction
//! is completed, offsets and all, and an ongoing one is aborted. A client
//! retrying EndTxn after a restart gets the outcome reached.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::group::{Commit, Coordinator};
use crate::internal_log::InternalLog;
use crate::util::now_ms;

mod end;
mod locks;
mod meta;
mod recover;
mod state_log;

pub(crate) use meta::TxnMeta;
pub(crate) use state_log::Status;
use state_log::TxnRecord;

/// The coordinator of every transactional id.
#[derive(Debug)]
pub(crate) struct TxnCoordinator {
    txns: Mutex<HashMap<String, TxnMeta>>,
    /// Per transactional id: serialises its decisions and their markers,
    /// its new producers, its added partitions and its TxnOffsetCommits.
    ending: locks::IdLocks,
    log: Mutex<InternalLog>,
    /// Group commit of the state log's fsyncs.
    sync_turn: crate::flush::FlushTurn,
    /// fsync markers before answering (`flush = "always"`).
    durable: bool,
    /// `transaction_max_timeout_ms`: the longest timeout a producer may ask for.
    max_timeout_ms: i32,
    /// Where transactions' consumer-group offsets go, and are ended.
    groups: std::sync::Arc<Coordinator>,
}

fn refuse(code: ResponseError, message: &str) -> Error {
    Error::api(code, message)
}

impl TxnCoordinator {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, TxnMeta>> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `id`'s new state to the internal log; a state others depend
    /// on (`must_hold`) is fsynced first when the broker runs with
    /// `flush = "always"`. Under `flush = "os"` it is in the page cache, as
    /// the records it speaks of are: a killed broker keeps both, and a power
    /// loss may take both, which is what that setting accepts.
    async fn persist(&self, id: &str, record: &TxnRecord, must_hold: bool) -> Result<()> {
        let offset = self.append_state(id, record)?;
        if must_hold && self.durable {
            // DURABILITY: on disk before the client learns of it, or a
            // marker is written. By group commit, off the async threads.
            let what = || state_log::STATE_DIR.to_string();
            self.sync_turn
                .sync_through(|| self.state_log(), offset, what)
                .await?;
        }
        Ok(())
    }

    /// Appends `id`'s new state to the internal log, not fsynced; returns
    /// its offset.
    fn append_state(&self, id: &str, record: &TxnRecord) -> Result<i64> {
        let entry = [(
            state_log::encode_key(id),
            Some(state_log::encode_value(record)),
        )];
        self.state_log().append(&entry)
    }

    fn state_log(&self) -> MutexGuard<'_, InternalLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One cleaner pass over the internal log; the next first dirty offset.
    pub(crate) fn clean(&self, map_bytes: usize, first_dirty: i64) -> Result<Option<i64>> {
        let job = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clean_job(first_dirty);
        let Some(job) = job else {
            return Ok(None);
        };
        let mut map = crate::storage::OffsetMap::new(map_bytes);
        let cleaned = job.run(&mut map, now_ms())?;
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .install_cleaned(&cleaned)?;
        Ok(Some(cleaned.next_dirty))
    }

    /// The transaction state log's end offset.
    pub(crate) fn end_offset(&self) -> i64 {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .end_offset()
    }

    /// Closes the internal log cleanly.
    pub(crate) fn close(&self) -> Result<()> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).close()
    }

    /// InitProducerId with a transactional id: a new producer id, or the
    /// same one at the next epoch, fencing the previous producer; an open
    /// transaction of the id is aborted first. `producer` (KIP-360): the
    /// caller's current id and epoch, or (-1, -1).
    pub(crate) async fn init(
        &self,
        catalog: &Catalog,
        txn_id: &str,
        timeout_ms: i32,
        producer: (i64, i16),
    ) -> Result<(i64, i16)> {
        if !(1..=self.max_timeout_ms).contains(&timeout_ms) {
            return Err(refuse(
                ResponseError::InvalidTransactionTimeout,
                "transaction timeout out of range",
            ));
        }
        let _ending = self.ending.hold(txn_id).await;
        let (producer_id, epoch) = self.next_producer(catalog, txn_id, producer).await?;
        let meta = TxnMeta {
            producer_id,
            epoch,
            timeout_ms,
            status: Status::Empty,
            partitions: BTreeSet::new(),
            started_ms: -1,
            last_update_ms: now_ms(),
        };
        // DURABILITY: the id's producer is on disk before the client learns it.
        self.persist(txn_id, &meta.record(Status::Empty), true)
            .await?;
        self.lock().insert(txn_id.to_string(), meta);
        Ok((producer_id, epoch))
    }

    /// The producer id and epoch the next producer of `txn_id` gets, after
    /// carrying out a decision left pending and aborting an open
    /// transaction. Called with `txn_id`'s `ending` lock held.
    async fn next_producer(
        &self,
        catalog: &Catalog,
        txn_id: &str,
        producer: (i64, i16),
    ) -> Result<(i64, i16)> {
        let previous = self.lock().get(txn_id).cloned();
        if let Some(mut old) = previous
            && let Some(commit) = old.pending_decision()
        {
            // A decision taken but not carried out is carried out first.
            self.finish(catalog, txn_id, &mut old, commit).await?;
        }
        let previous = self.lock().get(txn_id).cloned();
        if let (Some(old), true) = (&previous, producer.0 >= 0) {
            // KIP-360: only the current producer (or its previous epoch,
            // when the bump's answer was lost) may ask for a bump.
            if producer.0 != old.producer_id || producer.1 < old.epoch.saturating_sub(1) {
                return Err(refuse(
                    ResponseError::ProducerFenced,
                    "a newer producer has this id",
                ));
            }
        }
        let Some(mut old) = previous else {
            return Ok((catalog.next_producer_id()?, 0));
        };
        if old.is_open() {
            // The new epoch fences the old producer in every partition.
            old.epoch = old.epoch.saturating_add(1);
            self.finish(catalog, txn_id, &mut old, false).await?;
        }
        match old.epoch.checked_add(1) {
            Some(e) if e < i16::MAX => Ok((old.producer_id, e)),
            _ => Ok((catalog.next_producer_id()?, 0)),
        }
    }

    /// Runs `f` on the transaction of `txn_id` if `producer` is its current one.
    fn with_current<T>(
        &self,
        txn_id: &str,
        (producer_id, epoch): (i64, i16),
        f: impl FnOnce(&mut TxnMeta) -> T,
    ) -> Result<T> {
        let mut txns = self.lock();
        let meta = txns.get_mut(txn_id).ok_or_else(|| {
            refuse(
                ResponseError::InvalidProducerIdMapping,
                "unknown transactional id",
            )
        })?;
        if meta.producer_id != producer_id {
            return Err(refuse(
                ResponseError::InvalidProducerIdMapping,
                "another producer id",
            ));
        }
        if meta.epoch != epoch {
            return Err(refuse(
                ResponseError::ProducerFenced,
                "a newer producer has this id",
            ));
        }
        Ok(f(meta))
    }

    /// Adds `partitions` (and, for offsets, nothing) to the open transaction,
    /// starting one if none is open: the Ongoing state is on disk before
    /// this returns, so a crash never forgets a partition a client may
    /// have written to. Under the id's lock: a decision (a timeout's abort,
    /// a new producer's) taken while the state waited for its fsync would
    /// otherwise be overwritten by it, its markers missing the partition.
    async fn join(
        &self,
        txn_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
    ) -> Result<()> {
        let _ending = self.ending.hold(txn_id).await;
        let wanted = self.with_current(txn_id, producer, |meta| {
            let new = partitions.iter().any(|p| !meta.partitions.contains(p));
            (!meta.is_open() || new).then(|| {
                let mut next = meta.clone();
                next.status = Status::Ongoing;
                if !meta.is_open() {
                    next.started_ms = now_ms();
                    next.partitions.clear();
                }
                next.partitions.extend(partitions.iter().cloned());
                next
            })
        })?;
        let Some(next) = wanted else {
            return Ok(());
        };
        self.persist(txn_id, &next.record(Status::Ongoing), true)
            .await?;
        self.with_current(txn_id, producer, |meta| *meta = next)
    }

    /// AddPartitionsToTxn: the partitions must exist.
    pub(crate) async fn add_partitions(
        &self,
        catalog: &Catalog,
        txn_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), ResponseError>>> {
        let results: Vec<_> = partitions
            .iter()
            .map(|(t, p)| {
                catalog
                    .partition(t, *p)
                    .map(|_| ())
                    .map_err(|_| ResponseError::UnknownTopicOrPartition)
            })
            .collect();
        if results.iter().any(Result::is_err) {
            // Kafka adds none when one fails; the others answer OPERATION_NOT_ATTEMPTED.
            return Ok(results
                .into_iter()
                .map(|r| r.and(Err(ResponseError::OperationNotAttempted)))
                .collect());
        }
        self.join(txn_id, producer, partitions).await?;
        Ok(results)
    }

    /// AddOffsetsToTxn: opens the transaction, if it is not, for the
    /// group's offsets (TxnOffsetCommit writes them).
    pub(crate) async fn add_offsets(&self, txn_id: &str, producer: (i64, i16)) -> Result<()> {
        self.join(txn_id, producer, &[]).await
    }

    /// TxnOffsetCommit: offsets written to the offsets log in the
    /// transaction, to count when it commits; per commit `Ok` or why it was
    /// refused. Not while a transaction ends: its marker could otherwise
    /// come before them.
    pub(crate) async fn commit_offsets(
        &self,
        txn_id: &str,
        producer: (i64, i16),
        group: &str,
        commits: Vec<Commit>,
    ) -> Result<Vec<std::result::Result<(), ResponseError>>> {
        let _ending = self.ending.hold(txn_id).await;
        self.with_current(txn_id, producer, |meta| {
            if meta.is_open() {
                Ok(())
            } else {
                Err(refuse(
                    ResponseError::InvalidTxnState,
                    "AddOffsetsToTxn first",
                ))
            }
        })??;
        Ok(self.groups.stage(group, producer, &commits).await)
    }

    /// Produce of a transactional batch: the producer must be current and its
    /// open transaction must include the partition.
    pub(crate) fn check_produce(
        &self,
        (producer_id, epoch): (i64, i16),
        topic: &str,
        partition: i32,
    ) -> Result<()> {
        let txns = self.lock();
        let Some(meta) = txns.values().find(|m| m.producer_id == producer_id) else {
            return Err(refuse(
                ResponseError::InvalidProducerIdMapping,
                "unknown producer id",
            ));
        };
        if epoch < meta.epoch {
            return Err(refuse(
                ResponseError::InvalidProducerEpoch,
                "a newer producer has this id",
            ));
        }
        if !meta.is_open() || !meta.partitions.contains(&(topic.to_string(), partition)) {
            return Err(refuse(
                ResponseError::InvalidTxnState,
                "the partition was not added to the transaction",
            ));
        }
        Ok(())
    }

    /// Every transactional id and its state, for ListTransactions and
    /// DescribeTransactions.
    pub(crate) fn snapshot(&self) -> Vec<(String, TxnMeta)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

//! The transaction coordinator: transactional ids, their producer ids and
//! epochs, the partitions and consumer-group offsets of each open
//! transaction, and COMMIT/ABORT markers written through the partitions.
//!
//! State is kept in memory, and what must survive a crash is in
//! [`decisions`] before it is acted on: each transactional id's producer id
//! and epoch, each decision (before its markers) and how each transaction
//! ended. At start-up every transaction still open in a partition is
//! finished as decided or aborted ([`TxnCoordinator::recover`]), so
//! read_committed consumers never wait on a transaction nobody will end, and
//! a client retrying EndTxn after a restart gets the answer it missed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::group::{Commit, Coordinator};
use crate::util::now_ms;

mod decisions;

use decisions::{Decisions, IdState, Key};

/// Kafka's default `transaction.max.timeout.ms`: 15 minutes.
pub(crate) const MAX_TIMEOUT_MS: i32 = 15 * 60 * 1000;

/// One transactional id.
#[derive(Debug)]
struct TxnMeta {
    producer_id: i64,
    epoch: i16,
    timeout_ms: i32,
    /// Partitions in the open transaction (empty: none open).
    partitions: BTreeSet<(String, i32)>,
    /// Offsets committed in the transaction, by group.
    offsets: BTreeMap<String, Vec<Commit>>,
    /// When the open transaction started (ms), for its timeout.
    started_ms: i64,
    /// How the last transaction ended (`Some(true)`: committed).
    ended: Option<bool>,
}

impl TxnMeta {
    fn new(state: IdState) -> TxnMeta {
        TxnMeta {
            producer_id: state.producer_id,
            epoch: state.epoch,
            timeout_ms: MAX_TIMEOUT_MS,
            partitions: BTreeSet::new(),
            offsets: BTreeMap::new(),
            started_ms: 0,
            ended: state.ended,
        }
    }

    fn state(&self) -> IdState {
        IdState {
            producer_id: self.producer_id,
            epoch: self.epoch,
            ended: self.ended,
        }
    }

    fn is_open(&self) -> bool {
        !self.partitions.is_empty() || !self.offsets.is_empty()
    }
}

/// The coordinator of every transactional id.
#[derive(Debug)]
pub(crate) struct TxnCoordinator {
    txns: Mutex<HashMap<String, TxnMeta>>,
    /// Serialises decisions and their markers.
    ending: tokio::sync::Mutex<()>,
    decisions: Decisions,
    /// fsync markers before answering (`flush = "always"`).
    durable: bool,
}

fn refuse(code: ResponseError, message: &str) -> Error {
    Error::api(code, message)
}

impl TxnCoordinator {
    /// Finishes the transactions a previous run left open in `catalog`'s
    /// partitions: as decided where a decision was recorded, else aborted.
    pub(crate) fn recover(catalog: &Catalog, durable: bool) -> Result<TxnCoordinator> {
        let decisions = Decisions::new(catalog.data_dir());
        let read = decisions.read();
        for topic in catalog.topics() {
            for partition in topic.partitions() {
                for (producer_id, epoch, first_offset) in partition.open_transactions() {
                    let key = Key {
                        topic: topic.name.clone(),
                        partition: partition.index,
                        producer_id,
                        first_offset,
                    };
                    let commit = read.decided.get(&key).copied().unwrap_or(false);
                    tracing::info!(topic = %topic.name, partition = partition.index, producer_id, commit, "finishing a transaction left open");
                    partition.append_marker((producer_id, epoch), commit)?;
                }
            }
        }
        decisions.rewrite(&read.ids)?;
        let txns = read
            .ids
            .into_iter()
            .map(|(id, state)| (id, TxnMeta::new(state)))
            .collect();
        Ok(TxnCoordinator {
            txns: Mutex::new(txns),
            ending: tokio::sync::Mutex::new(()),
            decisions,
            durable,
        })
    }

    /// Records the state of every id afresh when the file has grown large.
    fn compact_if_large(&self) -> Result<()> {
        if !self.decisions.is_large() {
            return Ok(());
        }
        let ids = self
            .lock()
            .iter()
            .map(|(id, m)| (id.clone(), m.state()))
            .collect();
        self.decisions.rewrite(&ids)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TxnMeta>> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// InitProducerId with a transactional id: a new producer id, or the
    /// same one at the next epoch, fencing the previous producer; an open
    /// transaction of the id is aborted first.
    pub(crate) async fn init(
        &self,
        catalog: &Catalog,
        txn_id: &str,
        timeout_ms: i32,
    ) -> Result<(i64, i16)> {
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(refuse(
                ResponseError::InvalidTransactionTimeout,
                "transaction timeout out of range",
            ));
        }
        let _ending = self.ending.lock().await;
        let previous = self.lock().remove(txn_id);
        let (producer_id, epoch) = match previous {
            Some(mut old) => {
                if old.is_open() {
                    // The new epoch fences the old producer in every partition.
                    old.epoch = old.epoch.saturating_add(1);
                    self.finish(catalog, &mut old, false).await?;
                }
                match old.epoch.checked_add(1) {
                    Some(e) if e < i16::MAX => (old.producer_id, e),
                    _ => (catalog.next_producer_id()?, 0),
                }
            }
            None => (catalog.next_producer_id()?, 0),
        };
        self.compact_if_large()?;
        // DURABILITY: the id's producer is on disk before the client learns it.
        self.decisions.record_init(txn_id, producer_id, epoch)?;
        let mut meta = TxnMeta::new(IdState {
            producer_id,
            epoch,
            ended: None,
        });
        meta.timeout_ms = timeout_ms;
        self.lock().insert(txn_id.to_string(), meta);
        Ok((producer_id, epoch))
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

    /// The first addition to a new transaction: recorded (fsynced) as begun,
    /// so that after a crash a retried EndTxn learns it was aborted instead
    /// of being taken for a retry of the previous transaction's EndTxn.
    fn begin_if_new(&self, txn_id: &str, producer: (i64, i16)) -> Result<()> {
        let new = self.with_current(txn_id, producer, |meta| !meta.is_open())?;
        if new {
            self.decisions
                .record_begin(txn_id, producer.0, producer.1)?;
            self.with_current(txn_id, producer, |meta| {
                meta.started_ms = now_ms();
                meta.ended = None;
            })?;
        }
        Ok(())
    }

    /// AddPartitionsToTxn: the partitions must exist.
    pub(crate) fn add_partitions(
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
        self.begin_if_new(txn_id, producer)?;
        self.with_current(txn_id, producer, |meta| {
            meta.partitions.extend(partitions.iter().cloned());
        })?;
        Ok(results)
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
    pub(crate) fn add_offsets(
        &self,
        txn_id: &str,
        producer: (i64, i16),
        group: &str,
    ) -> Result<()> {
        self.begin_if_new(txn_id, producer)?;
        self.with_current(txn_id, producer, |meta| {
            meta.offsets.entry(group.to_string()).or_default();
        })
    }

    /// TxnOffsetCommit: offsets held until the transaction commits.
    pub(crate) fn commit_offsets(
        &self,
        txn_id: &str,
        producer: (i64, i16),
        group: &str,
        commits: Vec<Commit>,
    ) -> Result<()> {
        self.with_current(txn_id, producer, |meta| {
            meta.offsets
                .entry(group.to_string())
                .or_default()
                .extend(commits);
        })
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
        if !meta.partitions.contains(&(topic.to_string(), partition)) {
            return Err(refuse(
                ResponseError::InvalidTxnState,
                "the partition was not added to the transaction",
            ));
        }
        Ok(())
    }

    /// EndTxn: writes the markers and, on commit, the group offsets.
    pub(crate) async fn end(
        &self,
        catalog: &Catalog,
        groups: &Coordinator,
        txn_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<()> {
        let _ending = self.ending.lock().await;
        let (mut meta, ended) = self.with_current(txn_id, producer, |meta| {
            let mut taken = TxnMeta::new(meta.state());
            taken.partitions = std::mem::take(&mut meta.partitions);
            taken.offsets = std::mem::take(&mut meta.offsets);
            (taken, meta.ended)
        })?;
        if !meta.is_open() {
            // A retry of an EndTxn whose answer was lost (a restart) gets it again.
            return match ended {
                Some(e) if e == commit => Ok(()),
                _ => Err(refuse(
                    ResponseError::InvalidTxnState,
                    "no transaction is open",
                )),
            };
        }
        let offsets = std::mem::take(&mut meta.offsets);
        self.compact_if_large()?;
        self.finish(catalog, &mut meta, commit).await?;
        if commit {
            for (group, commits) in offsets {
                let results = groups.commit_transactional(&group, &commits).await;
                if results.iter().any(Result::is_err) {
                    tracing::warn!(
                        group,
                        ?results,
                        "offsets of a committed transaction were not all written"
                    );
                }
            }
        }
        self.ended(txn_id, &mut meta, commit)
    }

    /// Records how `txn_id`'s transaction ended, in memory and on disk.
    fn ended(&self, txn_id: &str, meta: &mut TxnMeta, commit: bool) -> Result<()> {
        meta.ended = Some(commit);
        if let Some(live) = self.lock().get_mut(txn_id)
            && (live.producer_id, live.epoch) == (meta.producer_id, meta.epoch)
        {
            live.ended = Some(commit);
        }
        self.decisions.record_end(txn_id, meta.state())
    }

    /// Records the decision, then writes a marker in every partition of `meta`.
    async fn finish(&self, catalog: &Catalog, meta: &mut TxnMeta, commit: bool) -> Result<()> {
        let producer = (meta.producer_id, meta.epoch);
        let mut keys = Vec::new();
        let mut targets = Vec::new();
        for (topic, index) in std::mem::take(&mut meta.partitions) {
            let Ok(partition) = catalog.partition(&topic, index) else {
                continue;
            };
            let open = partition
                .open_transactions()
                .into_iter()
                .find(|(pid, ..)| *pid == meta.producer_id);
            if let Some((_, _, first_offset)) = open {
                keys.push(Key {
                    topic,
                    partition: index,
                    producer_id: meta.producer_id,
                    first_offset,
                });
            }
            targets.push(partition);
        }
        meta.offsets.clear();
        self.decisions.record(&keys, commit)?;
        for partition in targets {
            let info = partition.append_marker(producer, commit)?;
            if self.durable {
                partition.sync_through(info.last_offset).await?;
            }
        }
        Ok(())
    }

    /// Aborts the open transactions older than their timeout, bumping the
    /// epoch so the producer learns it was fenced.
    pub(crate) async fn abort_expired(&self, catalog: &Catalog) {
        let now = now_ms();
        let expired: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, m)| m.is_open() && now - m.started_ms > i64::from(m.timeout_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for txn_id in expired {
            let _ending = self.ending.lock().await;
            let Some(mut meta) = self.lock().remove(&txn_id) else {
                continue;
            };
            meta.epoch = meta.epoch.saturating_add(1);
            tracing::info!(
                txn_id,
                producer_id = meta.producer_id,
                "transaction timed out; aborting"
            );
            if let Err(e) = self.finish(catalog, &mut meta, false).await {
                tracing::warn!(txn_id, error = %e, "could not abort a timed-out transaction");
            }
            self.lock()
                .insert(txn_id.clone(), TxnMeta::new(meta.state()));
            if let Err(e) = self.ended(&txn_id, &mut meta, false) {
                tracing::warn!(txn_id, error = %e, "could not record a timed-out transaction");
            }
        }
    }
}

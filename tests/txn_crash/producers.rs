//! The workload: transactional producers, each running transactions in a
//! loop, and the ledger of every transaction with the outcome its client saw.
//! Most transactions are committed, every [`ABORT_EVERY`]-th is aborted and
//! every [`ABANDON_EVERY`]-th abandoned on purpose.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::common::*;
use crate::{ABANDON_EVERY, ABORT_EVERY, OP_WAIT, PARTITIONS, RECORDS, Rng, TXN_TIMEOUT_MS};

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

/// How a transaction is meant to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    Commit,
    Abort,
    /// Drop the producer once everything is sent, without ending the
    /// transaction: the next producer with the same transactional.id (or
    /// the broker's start-up) must abort it.
    Abandon,
}

impl Plan {
    /// The plan of a producer's `number`-th transaction.
    pub(crate) fn of(number: u64) -> Plan {
        if number % ABANDON_EVERY == ABANDON_EVERY / 2 {
            Plan::Abandon
        } else if number % ABORT_EVERY == ABORT_EVERY - 1 {
            Plan::Abort
        } else {
            Plan::Commit
        }
    }
}

/// What the client was told about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not finished (yet): the thread is still in it.
    Open,
    /// commit_transaction succeeded.
    Committed,
    /// abort_transaction succeeded and commit was never attempted.
    Aborted,
    /// Sent whole, then the producer was dropped ([`Plan::Abandon`]).
    Abandoned,
    /// An error left the outcome open. `after_commit`: commit_transaction
    /// was attempted and failed; `abort_ok`: a later abort_transaction
    /// succeeded (librdkafka then considers the transaction not committed).
    Unknown { after_commit: bool, abort_ok: bool },
}

/// One transaction as its producer ran it.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub(crate) producer: usize,
    pub(crate) number: u64,
    /// The partition of each planned record, by index.
    pub(crate) partitions: Vec<i32>,
    pub(crate) plan: Plan,
    pub(crate) outcome: Outcome,
    /// The first error the client reported, if any.
    pub(crate) error: Option<String>,
}

/// The value of record `index` of `count` in a producer's transaction.
pub(crate) fn value_of(producer: usize, number: u64, index: usize, count: usize) -> String {
    format!("p{producer}-t{number}-r{index}-of{count}")
}

/// `(producer, transaction, index, count)` back from a value.
pub(crate) fn parse_value(value: &str) -> Option<(usize, u64, usize, usize)> {
    let mut parts = value.split('-');
    let producer = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let number = parts.next()?.strip_prefix('t')?.parse().ok()?;
    let index = parts.next()?.strip_prefix('r')?.parse().ok()?;
    let count = parts.next()?.strip_prefix("of")?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((producer, number, index, count))
}

/// Every transaction of every producer, in the order they began.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    txns: Mutex<Vec<Txn>>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Vec<Txn>> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self, txn: Txn) -> usize {
        let mut txns = self.lock();
        txns.push(txn);
        txns.len() - 1
    }

    fn settle(&self, at: usize, outcome: Outcome, error: Option<String>) {
        let txn = &mut self.lock()[at];
        txn.outcome = outcome;
        txn.error = error;
    }

    /// How many transactions have `outcome`.
    pub(crate) fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.lock().iter().filter(|t| pred(&t.outcome)).count()
    }

    pub(crate) fn take(&self) -> Vec<Txn> {
        std::mem::take(&mut *self.lock())
    }
}

/// What one producer thread did besides its transactions.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Lives {
    /// Producers created and initialised.
    pub(crate) lives: usize,
    /// Attempts to create and initialise one that failed.
    pub(crate) init_failures: usize,
}

/// Runs transactions until `stop`; a producer that cannot continue is
/// dropped and a new one with the same transactional.id initialised.
pub(crate) fn run_producer(
    slot: usize,
    bootstrap: String,
    topic: String,
    stop: Arc<AtomicBool>,
    ledger: Arc<Ledger>,
    seed: u64,
) -> Lives {
    let mut rng = Rng(seed ^ (slot as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    let mut lives = Lives::default();
    let mut producer: Option<TxnProducer> = None;
    let mut number = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let p = match producer.take() {
            Some(p) => p,
            None => match new_producer(&bootstrap, slot) {
                Ok(p) => {
                    lives.lives += 1;
                    p
                }
                Err(_) => {
                    lives.init_failures += 1;
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            },
        };
        let count = rng.between(RECORDS) as usize;
        let partitions: Vec<i32> = (0..count)
            .map(|_| rng.between((0, PARTITIONS as u64 - 1)) as i32)
            .collect();
        let txn = Txn {
            producer: slot,
            number,
            partitions,
            plan: Plan::of(number),
            outcome: Outcome::Open,
            error: None,
        };
        let at = ledger.begin(txn.clone());
        let (outcome, error, keep) = run_one(&p, &topic, &txn);
        ledger.settle(at, outcome, error);
        if keep {
            producer = Some(p);
        }
        number += 1;
    }
    lives
}

/// A transactional producer, initialised (bounded by [`OP_WAIT`]).
fn new_producer(bootstrap: &str, slot: usize) -> Result<TxnProducer, KafkaError> {
    let producer: TxnProducer = producer_config(bootstrap)
        .set("transactional.id", format!("txn-crash-{slot}"))
        .set("transaction.timeout.ms", TXN_TIMEOUT_MS.to_string())
        // librdkafka wants these within the transaction timeout.
        .set("message.timeout.ms", "5000")
        .set("request.timeout.ms", "5000")
        .set("linger.ms", "2")
        .create()?;
    producer.init_transactions(OP_WAIT)?;
    Ok(producer)
}

/// One transaction: begin, send, flush, then commit or abort. Returns the
/// outcome, the first error and whether the producer may go on.
fn run_one(p: &TxnProducer, topic: &str, txn: &Txn) -> (Outcome, Option<String>, bool) {
    if let Err(e) = p.begin_transaction() {
        return failed(p, e, "begin", false);
    }
    let count = txn.partitions.len();
    for (index, partition) in txn.partitions.iter().enumerate() {
        let value = value_of(txn.producer, txn.number, index, count);
        let record = BaseRecord::<(), str>::to(topic)
            .partition(*partition)
            .payload(&value);
        if let Err((e, _)) = p.send(record) {
            return failed(p, e, "send", false);
        }
    }
    // Everything must be sent before the end: abort would drop the rest.
    if let Err(e) = p.flush(OP_WAIT) {
        return failed(p, e, "flush", false);
    }
    match txn.plan {
        Plan::Abandon => (Outcome::Abandoned, None, false),
        Plan::Abort => match p.abort_transaction(OP_WAIT) {
            Ok(()) => (Outcome::Aborted, None, true),
            Err(e) => failed(p, e, "abort", false),
        },
        Plan::Commit => match p.commit_transaction(OP_WAIT) {
            Ok(()) => (Outcome::Committed, None, true),
            Err(e) => failed(p, e, "commit", true),
        },
    }
}

/// After an error in step `step`: unless it is fatal, abort (librdkafka's
/// way out of abortable errors, and of timeouts before the commit); a
/// producer that cannot abort is dropped.
fn failed(
    p: &TxnProducer,
    e: KafkaError,
    step: &str,
    after_commit: bool,
) -> (Outcome, Option<String>, bool) {
    let (fatal, requires_abort) = match &e {
        KafkaError::Transaction(t) => (t.is_fatal(), t.txn_requires_abort()),
        _ => (false, false),
    };
    let fatal = fatal || p.client().fatal_error().is_some();
    let kind = match (fatal, requires_abort) {
        (true, _) => "fatal",
        (false, true) => "abortable",
        _ => "other",
    };
    let error = Some(format!("{step} ({kind}): {e}"));
    let unknown = |abort_ok| Outcome::Unknown {
        after_commit,
        abort_ok,
    };
    if fatal || step == "abort" {
        return (unknown(false), error, false);
    }
    match p.abort_transaction(OP_WAIT) {
        Ok(()) if after_commit => (unknown(true), error, true),
        Ok(()) => (Outcome::Aborted, error, true),
        Err(_) => (unknown(false), error, false),
    }
}

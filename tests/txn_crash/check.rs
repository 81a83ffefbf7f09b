//! Reading every partition back under both isolation levels, and the
//! checks of what read_committed shows against what the clients were told.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use crate::common::*;
use crate::producers::{Outcome, Txn, parse_value};
use crate::{PARTITIONS, READ_WAIT};

/// One record as read: (partition, offset, value).
pub(crate) type Read = (i32, i64, String);

/// One isolation level's view of the topic.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// In each partition's offset order.
    pub(crate) records: Vec<Read>,
    /// The partitions whose end the consumer reached (PartitionEOF).
    pub(crate) reached_end: BTreeSet<i32>,
    /// ListOffsets latest under this isolation level, by partition.
    pub(crate) end: Vec<i64>,
}

/// Reads every partition of `topic` from the beginning with `isolation`
/// until each reports its end or [`READ_WAIT`] passes.
pub(crate) fn read_view(bootstrap: &str, topic: &str, isolation: &str) -> View {
    let consumer = consumer(
        bootstrap,
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
        ],
    );
    let all: Vec<i32> = (0..PARTITIONS).collect();
    assign(&consumer, topic, &all, Offset::Beginning);
    let mut view = View::default();
    let deadline = Instant::now() + READ_WAIT;
    while view.reached_end.len() < all.len() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                view.records.push((m.partition(), m.offset(), value));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                view.reached_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {isolation}: {e}"),
        }
    }
    view.end = all.iter().map(|p| high(&consumer, topic, *p)).collect();
    view.records.sort_by_key(|(p, o, _)| (*p, *o));
    view
}

fn high(consumer: &BaseConsumer, topic: &str, partition: i32) -> i64 {
    watermarks(consumer, topic, partition).1
}

/// Each check's violations, in a fixed order.
#[derive(Debug)]
pub(crate) struct Findings(pub(crate) Vec<(&'static str, Vec<String>)>);

/// Checks 1–5 (see the test's documentation), plus: records nobody sent,
/// records in a partition they were not sent to, and read_committed records
/// that read_uncommitted does not show at the same offset.
pub(crate) const CHECKS: [&str; 9] = [
    "committed-not-whole",
    "aborted-visible",
    "unknown-partial",
    "duplicated",
    "reordered",
    "stuck",
    "foreign",
    "misplaced",
    "mismatch",
];

impl Findings {
    fn new() -> Findings {
        Findings(CHECKS.iter().map(|n| (*n, Vec::new())).collect())
    }

    fn add(&mut self, name: &str, line: String) {
        let list = self.0.iter_mut().find(|(n, _)| *n == name);
        list.expect("a known check").1.push(line);
    }

    pub(crate) fn failed(&self) -> bool {
        self.0.iter().any(|(_, v)| !v.is_empty())
    }

    /// `name=count` for every check.
    pub(crate) fn counts(&self) -> String {
        let counts: Vec<String> = self
            .0
            .iter()
            .map(|(n, v)| format!("{n}={}", v.len()))
            .collect();
        counts.join(" ")
    }

    /// Up to ten lines per check with violations.
    pub(crate) fn report(&self) -> String {
        let mut out = String::new();
        for (name, lines) in &self.0 {
            for line in lines.iter().take(10) {
                out.push_str(&format!("\n{name}: {line}"));
            }
            if lines.len() > 10 {
                out.push_str(&format!("\n{name}: ... {} more", lines.len() - 10));
            }
        }
        out
    }
}

/// What the checks found, and facts worth printing.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) findings: Findings,
    /// Transactions whose commit failed and whose abort then succeeded,
    /// yet are visible whole (the client was told "not committed").
    pub(crate) committed_after_failed_commit: Vec<String>,
    /// Transactions of unknown outcome visible whole, and absent.
    pub(crate) unknown_whole: usize,
    pub(crate) unknown_absent: usize,
}

/// Checks the read-back views against the ledger of transactions.
pub(crate) fn check(txns: &[Txn], committed: &View, uncommitted: &View) -> Verdict {
    let mut f = Findings::new();
    let ledger: HashMap<(usize, u64), &Txn> =
        txns.iter().map(|t| ((t.producer, t.number), t)).collect();

    // Which records of each transaction read_committed shows.
    let mut seen: HashMap<(usize, u64), BTreeSet<usize>> = HashMap::new();
    let mut copies: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
    // Per partition and producer: the last (transaction, index) read.
    let mut last: HashMap<(i32, usize), (u64, usize, i64)> = HashMap::new();
    for (partition, offset, value) in &committed.records {
        let at = format!("{partition}/{offset}");
        copies
            .entry(value.as_str())
            .or_default()
            .push((*partition, *offset));
        let Some((producer, number, index, count)) = parse_value(value) else {
            f.add(
                "foreign",
                format!("{at} = {value:?}: not a value of the workload"),
            );
            continue;
        };
        let Some(txn) = ledger.get(&(producer, number)) else {
            f.add("foreign", format!("{at} = {value}: no such transaction"));
            continue;
        };
        if count != txn.partitions.len() || txn.partitions.get(index) != Some(partition) {
            f.add(
                "misplaced",
                format!("{at} = {value}: sent to {:?}", txn.partitions.get(index)),
            );
        }
        seen.entry((producer, number)).or_default().insert(index);
        if let Some((n, i, o)) = last.insert((*partition, producer), (number, index, *offset))
            && (n, i) >= (number, index)
        {
            f.add(
                "reordered",
                format!("{at} = {value} after p{producer}-t{n}-r{i} at {partition}/{o}"),
            );
        }
    }
    for (value, places) in &copies {
        if places.len() > 1 {
            f.add("duplicated", format!("{value} at {places:?}"));
        }
    }

    let mut verdict = Verdict {
        findings: Findings::new(),
        committed_after_failed_commit: Vec::new(),
        unknown_whole: 0,
        unknown_absent: 0,
    };
    for txn in txns {
        let count = txn.partitions.len();
        let got = seen.get(&(txn.producer, txn.number));
        let shown = got.map_or(0, BTreeSet::len);
        let missing: Vec<usize> = (0..count)
            .filter(|i| !got.is_some_and(|g| g.contains(i)))
            .collect();
        let about = format!(
            "p{}-t{} ({count} records to partitions {:?}; {:?}; client error: {:?})",
            txn.producer, txn.number, txn.partitions, txn.outcome, txn.error
        );
        match txn.outcome {
            Outcome::Committed if shown < count => f.add(
                "committed-not-whole",
                format!("{about}: records {missing:?} missing"),
            ),
            Outcome::Aborted | Outcome::Abandoned if shown > 0 => f.add(
                "aborted-visible",
                format!("{about}: {shown} of {count} records visible"),
            ),
            Outcome::Committed | Outcome::Aborted | Outcome::Abandoned => {}
            Outcome::Open | Outcome::Unknown { .. } if shown == 0 => verdict.unknown_absent += 1,
            Outcome::Open | Outcome::Unknown { .. } if shown < count => f.add(
                "unknown-partial",
                format!("{about}: only {shown} of {count} visible; records {missing:?} missing"),
            ),
            Outcome::Open | Outcome::Unknown { .. } => {
                verdict.unknown_whole += 1;
                if txn.outcome
                    == (Outcome::Unknown {
                        after_commit: true,
                        abort_ok: true,
                    })
                {
                    verdict.committed_after_failed_commit.push(about);
                }
            }
        }
    }

    check_ends(&mut f, committed, uncommitted);
    verdict.findings = f;
    verdict
}

/// Check 5: both readers reach every partition's end, the last stable
/// offset is the log end, and read_committed shows a subset of what
/// read_uncommitted shows, at the same offsets.
fn check_ends(f: &mut Findings, committed: &View, uncommitted: &View) {
    for p in 0..PARTITIONS {
        for (view, name) in [
            (committed, "read_committed"),
            (uncommitted, "read_uncommitted"),
        ] {
            if !view.reached_end.contains(&p) {
                let read = view.records.iter().filter(|r| r.0 == p).count();
                f.add(
                    "stuck",
                    format!("{name} did not reach the end of partition {p} within {READ_WAIT:?} ({read} records read)"),
                );
            }
        }
        let (lso, hw) = (committed.end[p as usize], uncommitted.end[p as usize]);
        if lso != hw {
            f.add(
                "stuck",
                format!("partition {p}: last stable offset {lso} != log end {hw}"),
            );
        }
    }
    let all: HashMap<(i32, i64), &str> = uncommitted
        .records
        .iter()
        .map(|(p, o, v)| ((*p, *o), v.as_str()))
        .collect();
    for (p, o, v) in &committed.records {
        if all.get(&(*p, *o)) != Some(&v.as_str()) {
            f.add(
                "mismatch",
                format!(
                    "read_committed {p}/{o} = {v} but read_uncommitted has {:?}",
                    all.get(&(*p, *o))
                ),
            );
        }
    }
}

/// Records per partition in a view.
pub(crate) fn per_partition(view: &View) -> BTreeMap<i32, usize> {
    let mut counts = BTreeMap::new();
    for (p, _, _) in &view.records {
        *counts.entry(*p).or_default() += 1;
    }
    counts
}

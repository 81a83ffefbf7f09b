//! Transactions across crashes of the broker binary: four rdkafka
//! transactional producers (distinct transactional.ids) run transactions
//! in a loop — begin, send 2–8 self-describing records to random partitions
//! of a 4-partition topic, flush, commit (every fourth: abort on purpose;
//! every tenth: drop the producer without ending the transaction, which the
//! next producer with the same transactional.id must abort) — while the
//! broker is SIGKILLed at random moments and restarted on the same port and
//! data directory. Each transaction's outcome as its client saw it is
//! recorded: committed, aborted, abandoned, or unknown (an error on the
//! way; the producer then aborts, or is dropped and a new one initialised).
//!
//! After a clean restart every partition is read from the beginning with a
//! read_committed and a read_uncommitted consumer, and:
//!
//! 1. every transaction the client saw committed is visible whole;
//! 2. nothing of a transaction the client saw aborted, or abandoned, is visible;
//! 3. a transaction of unknown outcome is visible whole or not at all;
//! 4. no record is visible twice, and one producer's records in a
//!    partition appear in send order;
//! 5. both consumers reach every partition's end, and the last stable
//!    offset is the log end offset.
//!
//! The schedule comes from a seed taken from the clock and printed;
//! `TXN_CRASH_SEED=<n>` replays it (timing still differs run to run).
//!
//! 6. no transaction whose commit_transaction failed and whose
//!    abort_transaction then succeeded (librdkafka's way of saying "not
//!    committed") is visible: a client retrying EndTxn after a restart gets
//!    the outcome the broker reached.

mod common;

#[path = "txn_crash/check.rs"]
mod check;
#[path = "txn_crash/nemesis.rs"]
mod nemesis;
#[path = "txn_crash/producers.rs"]
mod producers;

use std::time::{Duration, Instant};

use check::{View, check, per_partition, read_view};
use common::*;
use nemesis::{Site, Workload, crash_repeatedly};
use producers::{Outcome, Plan, Txn};

const PARTITIONS: i32 = 4;
const PRODUCERS: usize = 4;
const CRASHES: usize = 5;
/// Records per transaction.
const RECORDS: (u64, u64) = (2, 8);
/// Every ABORT_EVERY-th transaction of a producer is aborted on purpose,
const ABORT_EVERY: u64 = 4;
/// and every ABANDON_EVERY-th abandoned: the producer is dropped.
const ABANDON_EVERY: u64 = 10;
const TXN_TIMEOUT_MS: u64 = 10_000;
/// Bound on each transactional call (init, flush, commit, abort).
const OP_WAIT: Duration = Duration::from_secs(5);
/// After a (re)start, a transaction must commit within this.
const PROGRESS_WAIT: Duration = Duration::from_secs(20);
/// The SIGKILL comes this long after the first commit following a (re)start.
const KILL_DELAY_MS: (u64, u64) = (0, 3_000);
/// How long the broker stays down.
const DOWN_MS: (u64, u64) = (0, 500);
const STOP_WAIT: Duration = Duration::from_secs(40);
const READ_WAIT: Duration = Duration::from_secs(20);

pub(crate) use common::rng::Rng;

fn seed() -> u64 {
    common::rng::seed("TXN_CRASH_SEED")
}

#[test]
fn concurrent_transactions_stay_atomic_across_repeated_sigkill() {
    let started = Instant::now();
    let seed = seed();
    eprintln!("txn-crash seed {seed} (TXN_CRASH_SEED={seed} replays this schedule)");
    let mut rng = Rng(seed);

    let (_dir, data) = scratch_dir();
    let config = data.join("sluice.toml");
    // Small segments, so crashes also land around rolls.
    std::fs::write(&config, "[log]\nsegment_bytes = 65536\n").expect("config file");
    let config = config.to_str().expect("utf-8 path").to_string();
    let extra = ["--config", config.as_str()];
    let site = Site::on_free_port(&mut rng, &data, &extra);

    let broker = site.start();
    let topic = unique_topic("txn-crash");
    block_on(create_topic(&broker.bootstrap, &topic, PARTITIONS, &[]));
    let workload = Workload::start(&broker.bootstrap, &topic, rng.next());
    let (broker, crashes) = crash_repeatedly(&mut rng, CRASHES, broker, &site, &workload);
    let (ledger, lives) = workload.stop();
    let txns = ledger.take();

    broker.terminate();
    let broker = BrokerProcess::start(&data, &extra);
    let committed = read_view(&broker.bootstrap, &topic, "read_committed");
    let uncommitted = read_view(&broker.bootstrap, &topic, "read_uncommitted");
    broker.terminate();

    let verdict = check(&txns, &committed, &uncommitted);
    let count = |pred: &dyn Fn(&Outcome) -> bool| txns.iter().filter(|t| pred(&t.outcome)).count();
    eprintln!(
        "txn-crash seed={seed}: {} transactions: {} committed, {} aborted ({} on purpose), {} abandoned, {} unknown \
         ({} visible whole, {} absent; {} after a failed commit, {} of those visible although the abort that followed succeeded); \
         {} records read_committed {:?}, {} read_uncommitted, ends {:?}; {} crashes (transactions open at each kill: {:?}; finished at start-up in partitions: {} committed, {} aborted); \
         {} producer lives, {} failed inits; {:.1}s; checks: {}",
        txns.len(),
        count(&|o| *o == Outcome::Committed),
        count(&|o| *o == Outcome::Aborted),
        txns.iter()
            .filter(|t| t.plan == Plan::Abort && t.outcome == Outcome::Aborted)
            .count(),
        count(&|o| *o == Outcome::Abandoned),
        count(&|o| matches!(o, Outcome::Unknown { .. } | Outcome::Open)),
        verdict.unknown_whole,
        verdict.unknown_absent,
        count(&|o| matches!(
            o,
            Outcome::Unknown {
                after_commit: true,
                ..
            }
        )),
        verdict.committed_after_failed_commit.len(),
        committed.records.len(),
        per_partition(&committed),
        uncommitted.records.len(),
        uncommitted.end,
        crashes.open_at_kill.len(),
        crashes.open_at_kill,
        crashes.finished_at_start.0,
        crashes.finished_at_start.1,
        lives.lives,
        lives.init_failures,
        started.elapsed().as_secs_f64(),
        verdict.findings.counts(),
    );
    eprintln!("txn-crash client errors: {}", error_tally(&txns));
    for line in verdict.committed_after_failed_commit.iter().take(5) {
        eprintln!("visible after a failed commit and a successful abort: {line}");
    }
    assert!(
        !verdict.findings.failed(),
        "transactions not atomic across crashes (TXN_CRASH_SEED={seed}):{}",
        verdict.findings.report()
    );
    assert!(
        verdict.committed_after_failed_commit.is_empty(),
        "committed although the client was told to abort and aborted (TXN_CRASH_SEED={seed}): {:#?}",
        verdict.committed_after_failed_commit
    );
    assert_eq!(crashes.open_at_kill.len(), CRASHES, "every crash happened");
    assert!(
        count(&|o| *o == Outcome::Committed) > 0 && count(&|o| *o == Outcome::Aborted) > 0,
        "the workload committed and aborted transactions"
    );
}

/// How many transactions failed with each error.
fn error_tally(txns: &[Txn]) -> String {
    let mut tally = std::collections::BTreeMap::<&str, usize>::new();
    for e in txns.iter().filter_map(|t| t.error.as_deref()) {
        *tally.entry(e).or_default() += 1;
    }
    let parts: Vec<String> = tally.iter().map(|(e, n)| format!("{n} x {e:?}")).collect();
    parts.join(", ")
}

/// The checker itself: a clean history passes, and each kind of violation is found.
#[test]
fn the_checker_finds_each_kind_of_violation() {
    let txn = |producer, number, partitions: &[i32], outcome| Txn {
        producer,
        number,
        partitions: partitions.to_vec(),
        plan: match outcome {
            Outcome::Aborted => Plan::Abort,
            Outcome::Abandoned => Plan::Abandon,
            _ => Plan::Commit,
        },
        outcome,
        error: None,
    };
    let unknown = Outcome::Unknown {
        after_commit: true,
        abort_ok: false,
    };
    let v = |p: usize, t: u64, i: usize, n: usize| producers::value_of(p, t, i, n);
    let view = |records: &[(i32, i64, String)], ends: [i64; 4]| View {
        records: records.to_vec(),
        reached_end: (0..PARTITIONS).collect(),
        end: ends.to_vec(),
    };

    let txns = [
        txn(0, 0, &[0, 1], Outcome::Committed),
        txn(0, 1, &[1], Outcome::Aborted),
        txn(1, 0, &[0, 2], unknown),
        txn(1, 1, &[3, 3], unknown),
        txn(1, 2, &[2, 2, 2], unknown),
        txn(3, 0, &[1], Outcome::Abandoned),
    ];
    let clean = [
        (0, 0, v(0, 0, 0, 2)),
        (0, 1, v(1, 0, 0, 2)),
        (1, 0, v(0, 0, 1, 2)),
        (2, 0, v(1, 0, 1, 2)),
    ];
    let all = view(&clean, [3, 3, 2, 0]);
    let verdict = check(&txns, &view(&clean, [3, 3, 2, 0]), &all);
    assert!(!verdict.findings.failed(), "{:?}", verdict.findings);
    assert_eq!((verdict.unknown_whole, verdict.unknown_absent), (1, 2));

    let bad = [
        (0, 0, v(0, 0, 0, 2)),
        (0, 1, v(0, 0, 0, 2)),
        (0, 2, v(2, 0, 0, 1)),
        (0, 3, "junk".to_string()),
        (1, 0, v(0, 1, 0, 1)),
        (1, 1, v(1, 0, 0, 2)),
        (1, 2, v(3, 0, 0, 1)),
        (2, 0, v(1, 0, 1, 2)),
        (2, 1, v(1, 2, 0, 3)),
        (3, 0, v(1, 1, 1, 2)),
        (3, 1, v(1, 1, 0, 2)),
        (3, 2, v(1, 1, 1, 2)),
    ];
    let mut committed = view(&bad, [0, 3, 3, 3]);
    committed.reached_end.remove(&1);
    let verdict = check(&txns, &committed, &view(&bad[..11], [5, 3, 3, 3]));
    let counts: Vec<(&str, usize)> = verdict
        .findings
        .0
        .iter()
        .map(|(n, l)| (*n, l.len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("committed-not-whole", 1),
            ("aborted-visible", 2),
            ("unknown-partial", 1),
            ("duplicated", 2),
            // p0-t0-r0 again at 0/1; p1-t1-r0 after r1 at 3/1.
            ("reordered", 2),
            // Partition 1 not read to the end; partition 0: 0 != 5.
            ("stuck", 2),
            ("foreign", 2),
            ("misplaced", 1),
            ("mismatch", 1),
        ],
        "{:#?}",
        verdict.findings
    );
}

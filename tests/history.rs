//! A history check in the spirit of Jepsen's Kafka workload: idempotent
//! acks=all producers and a consumer group that commits synchronously after
//! processing run against the `sluice` binary while it is SIGKILLed and
//! restarted again and again on one data directory and one port. Every
//! operation is recorded in a history (produce attempts with their outcome,
//! every polled record with the consumer and its assignment, every commit with
//! its outcome, rebalances, crashes). After a clean restart the whole log is
//! read back and the history is checked:
//!
//! - every acknowledged record is in the log at the offset it was acknowledged with;
//! - no value is stored twice (idempotence across crashes);
//! - each partition's offsets are dense from 0, and one producer's records of
//!   a partition are stored in send order;
//! - every polled record is in the log at the offset it was read from;
//! - after a successful commit of offset `o` for a partition, no member of the
//!   group is handed a record of that partition below `o` again (at-least-once
//!   re-delivery above the last successful commit is fine);
//! - within one assignment a consumer sees a partition's offsets increasing.
//!
//! The crash schedule comes from a seed taken from the clock and printed;
//! `HISTORY_SEED=<n>` replays a schedule (timing still differs run to run).

mod common;

#[path = "history/check.rs"]
mod check;
#[path = "history/consumers.rs"]
mod consumers;
#[path = "history/events.rs"]
mod events;
#[path = "history/producers.rs"]
mod producers;
#[path = "history/run.rs"]
mod run;

use std::time::Duration;

use check::{at_zero, check, committed, log_of, polled, produced};
use common::*;
use events::{Rng, Who, seed};
use run::{
    Site, Tally, Workload, assert_no_findings, fixed_port, nemesis, print_summary, read_back,
    write_config,
};

const PARTITIONS: i32 = 4;
const PRODUCERS: usize = 2;
const CONSUMERS: usize = 3;
/// Each producer sends BURST records every PACE: ~1000 records/s each.
const BURST: u64 = 5;
const PACE: Duration = Duration::from_millis(5);
/// Crashes: CRASHES_MIN plus 0..=2 more, chosen by the seed.
const CRASHES_MIN: u64 = 8;
/// Time between a restart and the next crash, and how long the broker stays down.
const UP_MS: (u64, u64) = (1_500, 3_200);
const DOWN_MS: (u64, u64) = (0, 1_200);
/// After the last restart the workload runs this long before it is stopped.
const SETTLE: Duration = Duration::from_secs(2);
/// A consumer commits once it has processed this many records or this much time has passed.
const COMMIT_EVERY: usize = 100;
const COMMIT_AFTER: Duration = Duration::from_millis(200);
/// Bound on every phase that waits for clients to finish.
const STOP_WAIT: Duration = Duration::from_secs(40);

#[test]
fn a_history_of_idempotent_producers_and_a_committing_group_survives_repeated_sigkill() {
    let seed = seed();
    eprintln!("history seed {seed} (HISTORY_SEED={seed} replays this schedule)");
    let mut rng = Rng(seed);
    let crashes = CRASHES_MIN + rng.next() % 3;
    let port = fixed_port(&mut rng);
    let listen = format!("127.0.0.1:{port}");

    let (_dir, data) = scratch_dir();
    let config = write_config(&data);
    let extra = ["--config", config.as_str()];
    let site = Site {
        listen: &listen,
        data: &data,
        extra: &extra,
    };

    let broker = site.start();
    let topic = unique_topic("history");
    block_on(create_topic(&broker.bootstrap, &topic, PARTITIONS, &[]));

    let workload = Workload::start(&broker.bootstrap, &topic);
    workload.wait_until_running();
    let broker = nemesis(&mut rng, crashes, broker, &site, &workload);
    std::thread::sleep(SETTLE);
    let (history, attempts) = workload.stop();

    let log = read_back(broker, &site, &topic);

    let history = history.take();
    let findings = check(&history, &log);
    let tally = Tally::of(&history);
    print_summary(seed, attempts, &tally, &log, &findings);

    assert_no_findings(seed, &history, &findings);
    assert_eq!(
        tally.crashed as u64, crashes,
        "every planned crash happened"
    );
    assert!(
        tally.acked > 0 && tally.polls > 0 && tally.commits_ok > 0,
        "the workload ran"
    );
    assert_eq!(
        attempts as usize, tally.outcomes,
        "every produce attempt has an outcome"
    );
}

/// The checker itself: a clean history passes, and each kind of violation is found.
#[test]
fn the_history_checker_finds_each_kind_of_violation() {
    let c0 = Who {
        kind: 'c',
        slot: 0,
        life: 0,
    };
    let c1 = Who { slot: 1, ..c0 };

    // A clean history: acked, read once, committed, re-read above the commit.
    let log = log_of(&[(0, 0, "p0.0-0"), (0, 1, "p0.0-2"), (1, 0, "p0.0-1")]);
    let clean = at_zero([
        produced(0, 0, 0),
        produced(1, 1, 0),
        produced(2, 0, 1),
        polled(c0, 0, 0, "p0.0-0"),
        polled(c0, 0, 1, "p0.0-2"),
        committed(c0, 0, 1),
        polled(c1, 0, 1, "p0.0-2"),
    ]);
    let f = check(&clean, &log);
    assert!(f.all().iter().all(|(_, v)| v.is_empty()), "{f:?}");

    // Partition 0: reordered and a duplicate; partition 1: a gap.
    let log = log_of(&[
        (0, 0, "p0.0-0"),
        (0, 1, "p0.0-2"),
        (0, 2, "p0.0-1"),
        (0, 3, "p0.0-0"),
        (1, 0, "p0.0-5"),
        (1, 2, "p0.0-7"),
    ]);
    let bad = at_zero([
        produced(9, 1, 1),
        polled(c0, 0, 1, "not-stored-0"),
        committed(c0, 0, 3),
        polled(c1, 0, 2, "p0.0-1"),
        polled(c1, 0, 1, "p0.0-2"),
    ]);
    let f = check(&bad, &log);
    let counts: Vec<(&str, usize)> = f.all().iter().map(|(n, v)| (*n, v.len())).collect();
    assert_eq!(
        counts,
        [
            ("lost", 1),
            ("duplicated", 1),
            ("not-dense", 1),
            // p0.0-1 after p0.0-2, and p0.0-0 after p0.0-1.
            ("reordered", 2),
            ("read-mismatch", 1),
            ("redelivered-after-commit", 2),
            ("nonmonotonic-polls", 1),
        ],
        "{f:#?}"
    );
}

//! The steps of the run: the broker on a fixed port, the workload's threads,
//! the nemesis that crashes and restarts the broker, and the summary.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::check::{Findings, Log, read_log};
use crate::common::*;
use crate::consumers::run_consumer;
use crate::events::{Event, History, Rng};
use crate::producers::run_producer;
use crate::{CONSUMERS, DOWN_MS, PRODUCERS, STOP_WAIT, UP_MS};

// ---------------------------------------------------------------------------
// The broker

/// A port that is free now and outside the kernel's ephemeral range, so that
/// no client connection takes it as its local port while the broker is down.
pub(crate) fn fixed_port(rng: &mut Rng) -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = (10_000u16, ephemeral_low.saturating_sub(1).max(10_001));
    for _ in 0..200 {
        let port = rng.between((lo as u64, hi as u64)) as u16;
        if port == 9092 {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {lo}..{hi}");
}

/// Writes the broker's config file into `data` and returns its path.
///
/// Small segments, so crashes also land around rolls, and a small internal
/// offsets log, so commits roll it too and the cleaner (every 100 ms) cleans it.
pub(crate) fn write_config(data: &Path) -> String {
    let config = data.join("sluice.toml");
    std::fs::write(
        &config,
        "log_cleaner_backoff_ms = 100\n\
         [log]\nsegment_bytes = 262144\n\
         [group]\nmin_session_timeout_ms = 1000\noffsets_segment_bytes = 1048576\n",
    )
    .expect("config file");
    config.to_str().expect("utf-8 path").to_string()
}

/// Where the broker runs: one listen address, one data directory, and the
/// extra command-line arguments, the same for every incarnation.
#[derive(Debug)]
pub(crate) struct Site<'a> {
    pub(crate) listen: &'a str,
    pub(crate) data: &'a Path,
    pub(crate) extra: &'a [&'a str],
}

impl Site<'_> {
    /// Starts an incarnation of the broker on the site's address.
    pub(crate) fn start(&self) -> BrokerProcess {
        start_binary_on(self.listen, self.data, self.extra)
    }
}

/// How many starts found the port still taken and tried again.
static PORT_RETRIES: AtomicUsize = AtomicUsize::new(0);

/// Starts the broker on `listen`, retrying (bounded) while the port is still
/// held by the previous incarnation; any other start-up failure fails the test.
fn start_binary_on(listen: &str, data: &Path, extra: &[&str]) -> BrokerProcess {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match BrokerProcess::try_start_on(listen, data, extra) {
            Ok(broker) => return broker,
            Err(e) if e.contains("in use") && Instant::now() < deadline => {
                PORT_RETRIES.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("restarting the broker on {listen}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The workload

/// The producer and consumer threads and what they share.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) history: Arc<History>,
    stop_producers: Arc<AtomicBool>,
    stop_consumers: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    /// Raised to make a consumer leave and rejoin the group.
    rejoins: Vec<Arc<AtomicBool>>,
    producers: Vec<JoinHandle<()>>,
    consumers: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts the consumers of one group, then the producers, on `topic`.
    pub(crate) fn start(bootstrap: &str, topic: &str) -> Workload {
        let group = format!("{topic}-group");
        let history = Arc::new(History::new());
        let stop_producers = Arc::new(AtomicBool::new(false));
        let stop_consumers = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let rejoins: Vec<Arc<AtomicBool>> = (0..CONSUMERS).map(|_| Arc::default()).collect();

        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|slot| {
                let (b, t, g) = (bootstrap.to_string(), topic.to_string(), group.clone());
                let (s, r, h) = (
                    stop_consumers.clone(),
                    rejoins[slot].clone(),
                    history.clone(),
                );
                std::thread::spawn(move || run_consumer(slot, b, t, g, s, r, h))
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|slot| {
                let (b, t) = (bootstrap.to_string(), topic.to_string());
                let (s, a, h) = (stop_producers.clone(), attempts.clone(), history.clone());
                std::thread::spawn(move || run_producer(slot, b, t, s, a, h))
            })
            .collect();
        Workload {
            history,
            stop_producers,
            stop_consumers,
            attempts,
            rejoins,
            producers,
            consumers,
        }
    }

    /// Waits until records are acknowledged and read.
    pub(crate) fn wait_until_running(&self) {
        let history = &self.history;
        let deadline = Instant::now() + WAIT;
        while history.count(|e| matches!(e, Event::Polled { .. })) == 0
            || history.count(|e| matches!(e, Event::Produced { outcome: Ok(_), .. })) == 0
        {
            assert!(
                Instant::now() < deadline,
                "no record was acknowledged and read within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops producers first (each flushes), then consumers (each commits and
    /// leaves). Returns the history and how many records were sent.
    pub(crate) fn stop(self) -> (Arc<History>, u64) {
        self.stop_producers.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + STOP_WAIT;
        for (i, p) in self.producers.into_iter().enumerate() {
            join_by(p, deadline, &format!("producer {i}"));
        }
        self.stop_consumers.store(true, Ordering::SeqCst);
        for (i, c) in self.consumers.into_iter().enumerate() {
            join_by(c, deadline, &format!("consumer {i}"));
        }
        (self.history, self.attempts.load(Ordering::SeqCst))
    }
}

/// Joins a worker thread, failing the test if it is not done by `deadline`.
fn join_by<T>(handle: JoinHandle<T>, deadline: Instant, what: &str) -> T {
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what} did not stop within the time allowed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

// ---------------------------------------------------------------------------
// The nemesis

/// SIGKILLs the broker `crashes` times at pseudo-random moments and restarts
/// it on the same port; now and then a consumer leaves and rejoins the group
/// in between. Returns the last incarnation.
pub(crate) fn nemesis(
    rng: &mut Rng,
    crashes: u64,
    mut broker: BrokerProcess,
    site: &Site<'_>,
    workload: &Workload,
) -> BrokerProcess {
    for n in 0..crashes as usize {
        let up = rng.between(UP_MS);
        if rng.next().is_multiple_of(2) {
            // At any point of the gap, so some rebalances are cut by the crash.
            let at = rng.between((0, up));
            std::thread::sleep(Duration::from_millis(at));
            let slot = (rng.next() % CONSUMERS as u64) as usize;
            workload.rejoins[slot].store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(up - at));
        } else {
            std::thread::sleep(Duration::from_millis(up));
        }
        broker.crash();
        workload.history.push(Event::Crashed { n });
        std::thread::sleep(Duration::from_millis(rng.between(DOWN_MS)));
        broker = site.start();
        workload.history.push(Event::Restarted { n });
    }
    broker
}

/// A clean stop and start (on a port of its own), then the whole log.
pub(crate) fn read_back(broker: BrokerProcess, site: &Site<'_>, topic: &str) -> Log {
    broker.terminate();
    let broker = BrokerProcess::start(site.data, site.extra);
    let log = block_on(read_log(&broker.bootstrap, topic));
    broker.terminate();
    log
}

// ---------------------------------------------------------------------------
// The summary and the verdict

/// How many events of each kind the history holds.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Produce attempts with an outcome, and those acknowledged.
    pub(crate) outcomes: usize,
    pub(crate) acked: usize,
    pub(crate) polls: usize,
    /// Distinct `(partition, offset)` pairs polled.
    distinct_polls: usize,
    commits: usize,
    pub(crate) commits_ok: usize,
    rebalances: usize,
    fatal: usize,
    poll_errors: usize,
    pub(crate) crashed: usize,
}

impl Tally {
    pub(crate) fn of(history: &[(Duration, Event)]) -> Tally {
        let count = |pred: &dyn Fn(&Event) -> bool| history.iter().filter(|(_, e)| pred(e)).count();
        let distinct_polls = history
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Polled {
                    partition, offset, ..
                } => Some((*partition, *offset)),
                _ => None,
            })
            .collect::<std::collections::HashSet<_>>()
            .len();
        Tally {
            outcomes: count(&|e| matches!(e, Event::Produced { .. })),
            acked: count(&|e| matches!(e, Event::Produced { outcome: Ok(_), .. })),
            polls: count(&|e| matches!(e, Event::Polled { .. })),
            distinct_polls,
            commits: count(&|e| matches!(e, Event::Committed { .. })),
            commits_ok: count(&|e| matches!(e, Event::Committed { result: Ok(()), .. })),
            rebalances: count(&|e| matches!(e, Event::Rebalanced { .. })),
            fatal: count(&|e| matches!(e, Event::ProducerFatal { .. })),
            poll_errors: count(&|e| matches!(e, Event::PollError { .. })),
            crashed: count(&|e| matches!(e, Event::Crashed { .. })),
        }
    }
}

/// One line on what the run did and what the checks found.
pub(crate) fn print_summary(seed: u64, attempts: u64, t: &Tally, log: &Log, findings: &Findings) {
    let stored: usize = log.values().map(Vec::len).sum();
    let results: Vec<String> = findings
        .all()
        .iter()
        .map(|(name, v)| format!("{name}={}", v.len()))
        .collect();
    let Tally {
        outcomes,
        acked,
        polls,
        distinct_polls,
        commits,
        commits_ok,
        rebalances,
        fatal,
        poll_errors,
        crashed,
    } = *t;
    eprintln!(
        "history seed={seed}: {attempts} produce attempts, {acked} acked, {} failed (stored or not), {} without outcome; \
         {polls} polls ({} of them re-deliveries), {poll_errors} poll errors; {commits} commits ({commits_ok} ok); \
         {rebalances} rebalance callbacks; {fatal} fatal producer errors; {crashed} crashes ({} port retries); \
         {stored} records stored; checks: {}",
        outcomes - acked,
        attempts as usize - outcomes,
        polls - distinct_polls,
        PORT_RETRIES.load(Ordering::SeqCst),
        results.join(" ")
    );
}

/// Fails the test with a report of what the checks found, if anything. The
/// whole history is written to a file then, or whenever `HISTORY_DUMP` is set.
pub(crate) fn assert_no_findings(seed: u64, history: &[(Duration, Event)], findings: &Findings) {
    let report = report(findings);
    if !report.is_empty() || std::env::var_os("HISTORY_DUMP").is_some() {
        dump_history(seed, history);
    }
    assert!(
        report.is_empty(),
        "history check failed (seed {seed}; the whole history is in {}/history-{seed}.txt):{report}",
        env!("CARGO_TARGET_TMPDIR")
    );
}

/// Up to ten lines per kind of finding; empty when the checks all passed.
fn report(findings: &Findings) -> String {
    let mut report = String::new();
    for (name, v) in findings.all() {
        for line in v.iter().take(10) {
            report.push_str(&format!("\n{name}: {line}"));
        }
        if v.len() > 10 {
            report.push_str(&format!("\n{name}: ... {} more", v.len() - 10));
        }
    }
    report
}

/// Writes the whole history to `history-<seed>.txt` in the target's tmp dir.
fn dump_history(seed: u64, history: &[(Duration, Event)]) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("history-{seed}.txt"));
    let text: String = history
        .iter()
        .enumerate()
        .map(|(i, (at, e))| format!("#{i} {:.3}s {e}\n", at.as_secs_f64()))
        .collect();
    std::fs::write(&path, text).expect("write the history");
    eprintln!("history written to {}", path.display());
}

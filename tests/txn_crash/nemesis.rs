//! The broker binary on one fixed port and one data directory, the crash
//! schedule, and the producer threads it runs against.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::producers::{Ledger, Lives, Outcome, run_producer};
use crate::{DOWN_MS, KILL_DELAY_MS, PRODUCERS, PROGRESS_WAIT, Rng, STOP_WAIT};

/// Where every incarnation of the broker runs.
#[derive(Debug)]
pub(crate) struct Site<'a> {
    pub(crate) listen: String,
    pub(crate) data: &'a Path,
    pub(crate) extra: &'a [&'a str],
}

impl Site<'_> {
    /// A port free now and below the kernel's ephemeral range, so that no
    /// client connection takes it as its local port while the broker is down.
    pub(crate) fn on_free_port<'a>(
        rng: &mut Rng,
        data: &'a Path,
        extra: &'a [&'a str],
    ) -> Site<'a> {
        let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(32_768);
        let range = (12_000, ephemeral.saturating_sub(1).max(12_001));
        let port = (0..500)
            .map(|_| rng.between(range) as u16)
            .find(|p| *p != 9092 && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port");
        Site {
            listen: format!("127.0.0.1:{port}"),
            data,
            extra,
        }
    }

    /// Starts an incarnation, retrying (bounded) while the previous one's
    /// port is not free yet.
    pub(crate) fn start(&self) -> BrokerProcess {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match BrokerProcess::try_start_on(&self.listen, self.data, self.extra) {
                Ok(broker) => return broker,
                Err(e) if e.contains("in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("starting the broker on {}: {e}", self.listen),
            }
        }
    }
}

/// The producer threads and their shared state.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Lives>>,
}

impl Workload {
    pub(crate) fn start(bootstrap: &str, topic: &str, seed: u64) -> Workload {
        let ledger = Arc::new(Ledger::default());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..PRODUCERS)
            .map(|slot| {
                let (b, t) = (bootstrap.to_string(), topic.to_string());
                let (s, l) = (stop.clone(), ledger.clone());
                std::thread::spawn(move || run_producer(slot, b, t, s, l, seed))
            })
            .collect();
        Workload {
            ledger,
            stop,
            threads,
        }
    }

    /// Waits (bounded) until one more transaction is committed than `before`.
    pub(crate) fn wait_for_commit_after(&self, before: usize, what: &str) {
        let deadline = Instant::now() + PROGRESS_WAIT;
        while self.committed() <= before {
            assert!(
                Instant::now() < deadline,
                "no transaction committed within {PROGRESS_WAIT:?} {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn committed(&self) -> usize {
        self.ledger.count(|o| *o == Outcome::Committed)
    }

    /// Lets every producer finish its transaction and stop; bounded.
    pub(crate) fn stop(self) -> (Arc<Ledger>, Lives) {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + STOP_WAIT;
        let mut total = Lives::default();
        for (i, t) in self.threads.into_iter().enumerate() {
            while !t.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "producer {i} did not stop within {STOP_WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let lives = t.join().unwrap_or_else(|_| panic!("producer {i} panicked"));
            total.lives += lives.lives;
            total.init_failures += lives.init_failures;
        }
        (self.ledger, total)
    }
}

/// What the crashes hit.
#[derive(Debug, Default)]
pub(crate) struct Crashes {
    /// Transactions not finished by their clients at each SIGKILL.
    pub(crate) open_at_kill: Vec<usize>,
    /// Partitions' transactions the restarts finished: (committed, aborted).
    pub(crate) finished_at_start: (usize, usize),
}

impl Crashes {
    /// Counts the transactions a fresh incarnation finished at start-up,
    /// from its log lines.
    fn note_start(&mut self, broker: &BrokerProcess) {
        for line in broker.output().lines() {
            if line.contains("finishing a transaction left open") {
                if line.contains("commit=true") {
                    self.finished_at_start.0 += 1;
                } else {
                    self.finished_at_start.1 += 1;
                }
            }
        }
    }
}

/// `crashes` times: waits for a commit (the producers are running again),
/// then SIGKILLs the broker at a random moment and restarts it on the same
/// port and data directory. Returns the last incarnation.
pub(crate) fn crash_repeatedly(
    rng: &mut Rng,
    crashes: usize,
    mut broker: BrokerProcess,
    site: &Site<'_>,
    workload: &Workload,
) -> (BrokerProcess, Crashes) {
    let mut report = Crashes::default();
    for n in 0..crashes {
        let what = if n == 0 {
            "of the start".to_string()
        } else {
            format!("of restart #{n}")
        };
        workload.wait_for_commit_after(workload.committed(), &what);
        std::thread::sleep(Duration::from_millis(rng.between(KILL_DELAY_MS)));
        broker.crash();
        report
            .open_at_kill
            .push(workload.ledger.count(|o| *o == Outcome::Open));
        std::thread::sleep(Duration::from_millis(rng.between(DOWN_MS)));
        broker = site.start();
        report.note_start(&broker);
    }
    workload.wait_for_commit_after(workload.committed(), "of the last restart");
    (broker, report)
}

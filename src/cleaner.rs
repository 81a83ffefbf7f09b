//! The log cleaner's threads: each runs a pass over its share of the
//! compacted partitions ([`Catalog::clean_pass`]); the first also cleans
//! the internal logs `__consumer_offsets` and `__transaction_state`; then
//! each waits
//! `log_cleaner_backoff_ms` or until the broker stops. Cleaning reads and
//! writes whole segments, so it runs on its own threads, never on the
//! runtime's.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::data_dir::DirLock;
use crate::group::Coordinator;
use crate::txn::TxnCoordinator;

/// The internal logs' names in the cleaner checkpoint.
const OFFSETS_LOG: &str = "__consumer_offsets";
const TXN_LOG: &str = "__transaction_state";

/// The running cleaner threads.
#[derive(Debug)]
pub(crate) struct Cleaner {
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
}

impl Cleaner {
    /// Starts `log_cleaner_threads` threads, or none when `log_cleaner_enable`
    /// is off. Each holds the data directory's `lock` until it ends.
    pub(crate) fn start(
        (catalog, groups, txns): (&Arc<Catalog>, &Arc<Coordinator>, &Arc<TxnCoordinator>),
        config: &Config,
        lock: &Arc<DirLock>,
    ) -> std::io::Result<Cleaner> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut threads = Vec::new();
        if config.log_cleaner_enable {
            let n = config.log_cleaner_threads;
            let map_bytes = usize::try_from(config.log_cleaner_dedupe_buffer_size / n as u64)
                .unwrap_or(usize::MAX);
            let backoff = Duration::from_millis(config.log_cleaner_backoff_ms);
            for i in 0..n {
                let (catalog, stop, lock) = (catalog.clone(), stop.clone(), lock.clone());
                let (groups, txns) = (groups.clone(), txns.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("log-cleaner-{i}"))
                        .spawn(move || {
                            run(
                                (&catalog, &groups, &txns),
                                &stop,
                                (i, n),
                                map_bytes,
                                backoff,
                            );
                            drop(lock);
                        })?,
                );
            }
        }
        Ok(Cleaner { stop, threads })
    }

    /// Stops the threads after their current partition and waits for them.
    pub(crate) fn stop(self) {
        drop(self);
    }

    fn signal(&self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }
}

impl Drop for Cleaner {
    /// A broker dropped without shutdown: the threads stop after the
    /// partition they are cleaning, and are waited for, so that the data
    /// directory is free (and untouched) once the broker is gone.
    fn drop(&mut self) {
        self.signal();
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

fn run(
    (catalog, groups, txns): (&Catalog, &Coordinator, &TxnCoordinator),
    stop: &(Mutex<bool>, Condvar),
    (thread, threads): (usize, usize),
    map_bytes: usize,
    backoff: Duration,
) {
    let (stopped, wake) = stop;
    loop {
        if *stopped.lock().unwrap_or_else(|e| e.into_inner()) {
            return;
        }
        let stopping = || *stopped.lock().unwrap_or_else(|e| e.into_inner());
        catalog.clean_pass((thread, threads), map_bytes, &stopping);
        if thread == 0 && !stopping() {
            catalog.clean_internal((OFFSETS_LOG, groups.end_offset()), |first_dirty| {
                groups.clean(map_bytes, first_dirty)
            });
            catalog.clean_internal((TXN_LOG, txns.end_offset()), |first_dirty| {
                txns.clean(map_bytes, first_dirty)
            });
        }
        let guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, backoff, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        if *guard {
            return;
        }
    }
}

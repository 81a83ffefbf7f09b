//! The broker's stop signal: a `watch` of `bool` set once by
//! [`Broker::shutdown`](crate::Broker::shutdown), observed by each listener's
//! accept loop, which passes it on to its connections through their
//! [`Stop`]s: their parked long polls answer at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};

use tokio::sync::watch;

/// Resolves once the stop signal is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The stop signal as one connection sees it, set by its listener's
/// [`Stops`] when the broker stops. Waiting on it registers the waiting
/// task's waker with this connection alone (once per task): a parked fetch used to register
/// on the broker-wide watch, whose one lock every connection shares, and a
/// connection that waited on that watch re-took its lock on every wakeup.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stop(Arc<StopState>);

#[derive(Debug, Default)]
struct StopState {
    set: AtomicBool,
    /// The tasks that wait: the connection's own, as a rule (its requests
    /// are handled in it), each once.
    wakers: Mutex<Vec<Waker>>,
}

impl Stop {
    pub(crate) fn set(&self) {
        self.0.set.store(true, Ordering::Release);
        let wakers = std::mem::take(&mut *self.wakers());
        for waker in wakers {
            waker.wake();
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.set.load(Ordering::Acquire)
    }

    /// Resolves once set.
    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            {
                let mut wakers = self.wakers();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
            }
            // Set between the first look and the registration: `set` did not see this one.
            if self.is_set() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn wakers(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.0.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The [`Stop`]s of one listener's connections.
#[derive(Debug, Default)]
pub(crate) struct Stops(Mutex<StopsState>);

#[derive(Debug, Default)]
struct StopsState {
    stopped: bool,
    /// Connections that have closed drop out when the list is next pruned.
    open: Vec<Weak<StopState>>,
    /// The list's length after the last pruning.
    pruned: usize,
}

impl Stops {
    /// A new connection's stop signal: already set once the listener has
    /// stopped (a safeguard: the accept loop registers and stops in turn).
    pub(crate) fn register(&self) -> Stop {
        let stop = Stop::default();
        let mut state = self.state();
        if state.stopped {
            stop.set();
            return stop;
        }
        if state.open.len() >= 2 * state.pruned.max(64) {
            state.open.retain(|s| s.strong_count() > 0);
            state.pruned = state.open.len();
        }
        state.open.push(Arc::downgrade(&stop.0));
        stop
    }

    /// Sets the stop signal of every connection, open or yet to register.
    pub(crate) fn stop_all(&self) {
        let open = {
            let mut state = self.state();
            state.stopped = true;
            std::mem::take(&mut state.open)
        };
        for stop in open.iter().filter_map(Weak::upgrade) {
            Stop(stop).set();
        }
    }

    fn state(&self) -> MutexGuard<'_, StopsState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_connection_wakes_when_its_listener_stops() {
        let stops = Arc::new(Stops::default());
        let stop = stops.register();
        let waiting = tokio::spawn({
            let stop = stop.clone();
            async move { stop.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!stop.is_set());
        stops.stop_all();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(
            stops.register().is_set(),
            "a late connection is told at once"
        );
    }

    #[tokio::test]
    async fn every_waiting_task_wakes() {
        let stop = Stop::default();
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move { stop.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        stop.set();
        for task in waiting {
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("woken")
                .expect("no panic");
        }
    }

    #[test]
    fn closed_connections_are_pruned() {
        let stops = Stops::default();
        let kept = stops.register();
        for _ in 0..1_000 {
            drop(stops.register());
        }
        assert!(stops.state().open.len() <= 129);
        stops.stop_all();
        assert!(kept.is_set());
    }
}

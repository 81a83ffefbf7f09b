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
/// task's waker with this connection alone: a parked fetch used to register
/// on the broker-wide watch, whose one lock every connection shares, and a
/// connection that waited on that watch re-took its lock on every wakeup.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stop(Arc<StopState>);

#[derive(Debug, Default)]
struct StopState {
    set: AtomicBool,
    /// The connection's task, once it waits (one waiter: its requests are
    /// handled in that task).
    waker: Mutex<Option<Waker>>,
}

impl Stop {
    pub(crate) fn set(&self) {
        self.0.set.store(true, Ordering::Release);
        let waker = self.waker().take();
        if let Some(waker) = waker {
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
                let mut waker = self.waker();
                match waker.as_mut() {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
            }
            // Set between the first look and the registration: `set` found no waker.
            if self.is_set() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.0.waker.lock().unwrap_or_else(|e| e.into_inner())
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
    /// A new connection's stop signal: already set once the listener has stopped.
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

//! The broker's stop signal: a `watch` of `bool` set once by
//! [`Broker::shutdown`](crate::Broker::shutdown), observed by the accept loop
//! and every connection; a connection passes it on to its parked long polls
//! through its [`Stop`], and they answer at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use tokio::sync::watch;

/// Resolves once the stop signal is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The stop signal as seen from inside one connection's task.
///
/// The connection waits on the broker's signal once for its whole life, sets
/// this, and then polls its requests again in the same task (see
/// `server::serve`). So a request handled in that task waits on it with no
/// registration of its own: a parked fetch used to register on the
/// broker-wide signal, shared by every connection, and drop it again, once
/// per poll. Waiting on it from another task would never wake.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stop(Arc<AtomicBool>);

impl Stop {
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Resolves once set; only within the connection's own task (see above).
    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|_| {
            if self.is_set() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

//! The broker's stop signal: a `watch` of `bool` set once by
//! [`Broker::shutdown`](crate::Broker::shutdown), observed by the accept loop,
//! every connection and every parked long poll, which then answer at once.

use tokio::sync::watch;

/// Resolves once the stop signal is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// True once the stop signal is set.
pub(crate) fn is_stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

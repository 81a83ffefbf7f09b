//! Faults injected on purpose, for tests of clients' failure handling: a
//! table consulted at dispatch before each request is handled.
//!
//! A fault applies to the next N requests of its API (on any node, or on
//! one), in the order injected: an error answers the request with a Kafka
//! error code and does nothing else, a delay holds the request back before
//! it is handled, a disconnect closes the connection instead of answering.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

/// What a fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer every partition of the request (or the whole request, for an
    /// API without partitions) with this error, and do nothing else.
    Error(ResponseError),
    /// Hold the request this long, then handle it.
    Delay(Duration),
    /// Close the connection instead of answering.
    Disconnect,
}

/// A fault for the next [`Fault::times`] requests of one API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    kind: FaultKind,
    times: u32,
    node: Option<i32>,
}

impl Fault {
    /// Answers with `error` (every partition, or the whole request).
    pub fn error(error: ResponseError) -> Fault {
        Fault::new(FaultKind::Error(error))
    }

    /// Holds the request for `delay` before handling it.
    pub fn delay(delay: Duration) -> Fault {
        Fault::new(FaultKind::Delay(delay))
    }

    /// Closes the connection instead of answering.
    pub fn disconnect() -> Fault {
        Fault::new(FaultKind::Disconnect)
    }

    fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            times: 1,
            node: None,
        }
    }

    /// Applies to the next `times` requests (1 unless set).
    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    /// Applies only to requests sent to node `node`.
    pub fn on_node(mut self, node: i32) -> Fault {
        self.node = Some(node);
        self
    }

    /// What the fault does.
    pub fn kind(&self) -> FaultKind {
        self.kind
    }
}

/// The faults waiting for requests.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// True while any fault waits: dispatch takes the lock only then.
    armed: AtomicBool,
    pending: Mutex<Vec<(ApiKey, Fault)>>,
}

impl Faults {
    /// Adds `fault` for requests of `api`, after those already waiting.
    pub(crate) fn inject(&self, api: ApiKey, fault: Fault) {
        if fault.times == 0 {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.push((api, fault));
        self.armed.store(true, Ordering::Release);
    }

    /// Drops every waiting fault.
    pub(crate) fn clear(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.clear();
        self.armed.store(false, Ordering::Release);
    }

    /// Takes the first fault that applies to a request of `api` to `node`, if any.
    pub(crate) fn take(&self, api: ApiKey, node: i32) -> Option<FaultKind> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let i = pending
            .iter()
            .position(|(a, f)| *a == api && f.node.is_none_or(|n| n == node))?;
        let kind = pending[i].1.kind;
        pending[i].1.times -= 1;
        if pending[i].1.times == 0 {
            pending.remove(i);
        }
        self.armed.store(!pending.is_empty(), Ordering::Release);
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_for_their_count_and_node() {
        let faults = Faults::default();
        assert_eq!(faults.take(ApiKey::Produce, 1), None);
        faults.inject(
            ApiKey::Produce,
            Fault::error(ResponseError::NotLeaderOrFollower).times(2),
        );
        faults.inject(ApiKey::Produce, Fault::disconnect());
        faults.inject(ApiKey::Fetch, Fault::disconnect().on_node(2));
        let not_leader = Some(FaultKind::Error(ResponseError::NotLeaderOrFollower));
        assert_eq!(faults.take(ApiKey::Produce, 1), not_leader);
        assert_eq!(faults.take(ApiKey::Fetch, 1), None, "only on node 2");
        assert_eq!(faults.take(ApiKey::Produce, 3), not_leader);
        assert_eq!(faults.take(ApiKey::Produce, 1), Some(FaultKind::Disconnect));
        assert_eq!(faults.take(ApiKey::Produce, 1), None);
        assert_eq!(faults.take(ApiKey::Fetch, 2), Some(FaultKind::Disconnect));
        faults.inject(ApiKey::Fetch, Fault::delay(Duration::from_millis(5)));
        faults.clear();
        assert_eq!(faults.take(ApiKey::Fetch, 1), None);
    }
}

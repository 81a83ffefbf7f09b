//! One lock per transactional id, held while a request of the id decides,
//! writes markers, gives out a producer, adds partitions or stages offsets: a
//! transaction ending slowly (its markers awaiting an fsync) holds up only
//! requests of its own id. A lock exists only while someone holds or waits
//! for it, so requests naming many ids leave nothing behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OwnedMutexGuard;

type IdLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Debug, Default)]
pub(super) struct IdLocks {
    locks: Mutex<HashMap<String, IdLock>>,
}

/// `id`'s lock, held until dropped.
pub(super) struct Held<'a> {
    locks: &'a IdLocks,
    id: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl IdLocks {
    fn map(&self) -> MutexGuard<'_, HashMap<String, IdLock>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_of(&self, id: &str) -> IdLock {
        self.map().entry(id.to_string()).or_default().clone()
    }

    /// Waits for `id`'s lock.
    pub(super) async fn hold(&self, id: &str) -> Held<'_> {
        // Made before the wait: a wait given up (its request dropped) then
        // drops it after the lock's clone, and an unused lock goes.
        let mut held = Held {
            locks: self,
            id: id.to_string(),
            guard: None,
        };
        let lock = self.lock_of(id);
        held.guard = Some(lock.lock_owned().await);
        held
    }

    /// `id`'s lock if no one holds it now.
    pub(super) fn try_hold(&self, id: &str) -> Option<Held<'_>> {
        let guard = self.lock_of(id).try_lock_owned().ok();
        let held = Held {
            locks: self,
            id: id.to_string(),
            guard,
        };
        // Dropped at once (and the lock with it, if unused) when busy.
        held.guard.is_some().then_some(held)
    }

    /// Removes `id`'s lock when no one holds or waits for it: each of them
    /// has a clone, taken under the map's mutex.
    fn forget_unused(&self, id: &str) {
        let mut map = self.map();
        if map.get(id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            map.remove(id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.locks.forget_unused(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_id_waits_only_for_itself_and_its_lock_goes_when_unused() {
        let locks = IdLocks::default();
        let a = locks.hold("a").await;
        assert!(locks.try_hold("a").is_none(), "a is held");
        let b = locks.try_hold("b").expect("b waits for nothing");
        assert_eq!(locks.len(), 2);
        drop(b);
        assert_eq!(locks.len(), 1);
        drop(a);
        assert_eq!(locks.len(), 0, "no lock is left once unused");
    }

    /// A wait given up after the holder let go leaves no lock behind.
    #[tokio::test]
    async fn a_wait_given_up_leaves_nothing() {
        let locks = IdLocks::default();
        let a = locks.hold("a").await;
        let mut waiting = Box::pin(locks.hold("a"));
        assert!(poll_once(waiting.as_mut()).await.is_none());
        drop(a);
        drop(waiting);
        assert_eq!(locks.len(), 0);
    }

    /// Polls `future` once: its output if it was ready.
    async fn poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}

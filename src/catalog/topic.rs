//! A topic and its partitions, as the catalog holds them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use uuid::Uuid;

use crate::storage::Log;

/// One partition: its log and the lock that serialises group commits.
#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub(super) log: Mutex<Log>,
    /// Held by the one task fsyncing for everyone (group commit).
    pub(crate) sync: crate::group_commit::GroupCommit,
}

impl Partition {
    /// Locks the log. A panic while holding the lock cannot leave a log
    /// half-written (appends are all-or-nothing), so poisoning is ignored.
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A topic: immutable name and id, mutable partitions and configs.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub(super) state: RwLock<TopicState>,
}

#[derive(Debug)]
pub(super) struct TopicState {
    pub(super) partitions: Vec<Arc<Partition>>,
    pub(super) overrides: BTreeMap<String, String>,
}

impl Topic {
    /// The partitions, in index order.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.read().partitions.clone()
    }

    /// Partition `index`, if it exists.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.read().partitions.get(i).cloned())
    }

    /// The config overrides set on this topic.
    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.read().overrides.clone()
    }

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, TopicState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, TopicState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

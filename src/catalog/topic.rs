//! A topic: its name, id, partitions and config overrides.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::Partition;

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

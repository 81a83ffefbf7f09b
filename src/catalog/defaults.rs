//! The broker-wide topic defaults (the `[log]` table under dynamic broker
//! configs), and each topic's settings under them.

use std::sync::Arc;

use super::{Catalog, LogConfig, Topic};
use crate::topic_config;

impl Catalog {
    /// The broker-wide default log settings.
    pub fn defaults(&self) -> LogConfig {
        self.defaults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// New broker-wide defaults (a dynamic broker config changed): every
    /// topic that does not override a setting takes the new value at once.
    /// Defaults of an older `generation` than those in force (a change that
    /// got here after a later one) are left out.
    pub fn set_defaults(&self, (generation, defaults): (u64, LogConfig)) {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        if generation < self.defaults.read().unwrap_or_else(|e| e.into_inner()).0 {
            return;
        }
        for topic in self.topics() {
            let cfg = Arc::new(
                topic_config::apply(&defaults, &topic.overrides())
                    .unwrap_or_else(|_| defaults.clone()),
            );
            for partition in topic.partitions() {
                partition.set_config(cfg.clone());
            }
        }
        *self.defaults.write().unwrap_or_else(|e| e.into_inner()) = (generation, defaults);
    }

    /// The effective log settings of a topic.
    pub fn topic_log_config(&self, topic: &Topic) -> LogConfig {
        let defaults = self.defaults();
        topic_config::apply(&defaults, &topic.overrides()).unwrap_or(defaults)
    }
}

//! Keeping the coordinator's state: records of changed groups appended to
//! the internal log, group commit of its fsyncs, compaction and a clean close.

use kafka_protocol::ResponseError;

use super::codec::Entry;
use super::store;
use super::{Coordinator, Inner, OFFSETS_DIR, response_error};

impl crate::flush::Syncable for Inner {
    fn synced_offset(&self) -> i64 {
        self.store.synced_offset()
    }
    fn sync_target(&mut self) -> crate::Result<crate::storage::SyncTarget> {
        self.store.sync_target()
    }
    fn mark_synced(&mut self, target: &crate::storage::SyncTarget) {
        self.store.mark_synced(target);
    }
    fn poison(&mut self) {
        self.store.poison();
    }
    fn is_poisoned(&self) -> bool {
        self.store.is_poisoned()
    }
}

impl Coordinator {
    /// One cleaner pass over the internal log, if it is dirty enough: planned
    /// and installed under the coordinator's lock, the reading and writing
    /// done without it. Returns the next first dirty offset.
    pub(crate) fn clean(&self, map_bytes: usize, first_dirty: i64) -> crate::Result<Option<i64>> {
        let Some(job) = self.lock().store.clean_job(first_dirty) else {
            return Ok(None);
        };
        let mut map = crate::storage::OffsetMap::new(map_bytes);
        let cleaned = job.run(&mut map, crate::util::now_ms())?;
        self.lock().store.install_cleaned(&cleaned)?;
        Ok(Some(cleaned.next_dirty))
    }

    /// Stops and closes the internal log cleanly.
    pub(crate) fn close(&self) -> crate::Result<()> {
        self.stop();
        let mut inner = self.lock();
        inner.persist();
        inner.store.close()
    }

    /// Makes the writes up to `last` durable; if that fails, each success in
    /// `results` becomes the failure, since it was never acknowledged.
    pub(super) async fn settle<T>(
        &self,
        last: Option<i64>,
        results: &mut [Result<T, ResponseError>],
    ) {
        let Some(last) = last else { return };
        if let Err(e) = self.sync_through(last).await {
            let code = response_error(&e);
            results
                .iter_mut()
                .filter(|r| r.is_ok())
                .for_each(|r| *r = Err(code));
        }
    }

    /// Group commit of the offsets log: returns once `offset` is fsynced (if
    /// `flush = "always"`; otherwise at once).
    pub(super) async fn sync_through(&self, offset: i64) -> crate::Result<()> {
        if !self.flush_always {
            return Ok(());
        }
        let what = || OFFSETS_DIR.to_string();
        self.sync_turn
            .sync_through(|| self.lock(), offset, what)
            .await
    }
}

impl Inner {
    /// Writes the records of groups whose metadata changed.
    pub(super) fn persist(&mut self) {
        let mut entries = Vec::new();
        for group in self.groups.values_mut() {
            if let Some(c) = &mut group.consumer {
                let records = c.take_records();
                entries.extend(records.into_iter().map(|record| Entry::Consumer {
                    group: group.id.clone(),
                    record,
                }));
            } else if group.dirty {
                group.dirty = false;
                entries.push(Entry::Group {
                    group: group.id.clone(),
                    value: Some(group.to_value()),
                });
            }
        }
        if let Err(e) = store::append(&mut self.store, &entries) {
            tracing::warn!(error = %e, "could not write group metadata");
        }
    }
}

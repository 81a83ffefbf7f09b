//! Keeping the coordinator's state: records of changed groups appended to
//! the internal log, group commit of its fsyncs, compaction and a clean close.

use kafka_protocol::ResponseError;

use super::codec::Entry;
use super::{Coordinator, Inner, OFFSETS_DIR, fail_successes, response_error};
use crate::flush::Syncable;
use crate::internal_log::KeyValue;

impl Syncable for Inner {
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

    /// The offsets log's end offset.
    pub(crate) fn end_offset(&self) -> i64 {
        self.lock().store.end_offset()
    }

    /// Stops and closes the internal log cleanly.
    pub(crate) fn close(&self) -> crate::Result<()> {
        self.stop();
        let mut inner = self.lock();
        inner.persist();
        if !inner.unwritten.is_empty() {
            tracing::error!(
                records = inner.unwritten.len(),
                "closing with group metadata that could not be written"
            );
        }
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
            fail_successes(results, response_error(&e));
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
    /// Writes the records of groups whose metadata changed. A failed write
    /// (a full or failing disk) keeps them for the next write, which the
    /// coordinator's tick tries every 100 ms: the groups they come from are
    /// no longer marked changed.
    pub(super) fn persist(&mut self) {
        let mut records = Vec::new();
        for group in self.groups.values_mut() {
            if let Some(c) = &mut group.consumer {
                let taken = c.take_records();
                records.extend(taken.into_iter().map(|record| {
                    Entry::Consumer {
                        group: group.id.clone(),
                        record,
                    }
                    .encode()
                }));
            } else if group.dirty {
                group.dirty = false;
                let entry = Entry::Group {
                    group: group.id.clone(),
                    value: Some(group.to_value()),
                };
                records.push(entry.encode());
            }
        }
        self.append_or_keep(records);
    }

    /// Appends `entries` as one batch, after the records a failed write
    /// left; returns the offset of the last. On failure nothing is written.
    pub(super) fn append(&mut self, entries: &[Entry]) -> crate::Result<i64> {
        self.append_parts(&[], entries)
    }

    /// As [`Self::append`], with `divisible` (however many) written first,
    /// in batches apart from `entries`' one: records whose prefix alone a
    /// crash may keep, such as offset tombstones, too many for one batch.
    pub(super) fn append_parts(
        &mut self,
        divisible: &[Entry],
        entries: &[Entry],
    ) -> crate::Result<i64> {
        let records: Vec<KeyValue> = entries.iter().map(Entry::encode).collect();
        let last = if divisible.is_empty() {
            self.store.append_after(&self.unwritten, &records)?
        } else {
            let mut waiting = self.unwritten.clone();
            waiting.extend(divisible.iter().map(Entry::encode));
            self.store.append_after(&waiting, &records)?
        };
        if !self.unwritten.is_empty() {
            tracing::info!("group metadata written after a failure");
            self.unwritten.clear();
        }
        Ok(last)
    }

    /// Appends `records`, which memory already reflects, after those a
    /// failed write left; if this write fails too, keeps them all for the
    /// next write.
    pub(super) fn append_or_keep(&mut self, records: Vec<KeyValue>) {
        let failed_before = !self.unwritten.is_empty();
        let records = [std::mem::take(&mut self.unwritten), records].concat();
        if records.is_empty() {
            return;
        }
        match self.store.append_after(&records, &[]) {
            Ok(_) if failed_before => tracing::info!("group metadata written after a failure"),
            Ok(_) => {}
            Err(e) => {
                if !failed_before {
                    tracing::warn!(error = %e, "could not write group metadata; retrying");
                }
                self.unwritten = latest_per_key(records);
            }
        }
    }
}

/// The last record of each key, in log order: what compaction of the
/// offsets log would keep of `records`, so records waiting to be written
/// again are bounded by the groups' state, however long the disk fails.
/// A record too large for any batch is dropped (and logged): kept, it
/// would fail every later write.
fn latest_per_key(mut records: Vec<KeyValue>) -> Vec<KeyValue> {
    let mut seen = std::collections::HashSet::new();
    records.reverse();
    records.retain(|(key, _)| seen.insert(key.clone()));
    records.reverse();
    records.retain(|(key, value)| {
        // A batch's header and a record's own fields take less than this.
        let bytes = key.len() + value.as_ref().map_or(0, Vec::len) + 1024;
        let fits = bytes <= crate::internal_log::MAX_BATCH_BYTES;
        if !fits {
            tracing::error!(
                bytes,
                "group metadata too large for the offsets log; dropped"
            );
        }
        fits
    });
    records
}

//! The catalog's side of the log cleaner: a pass over the compacted
//! partitions, and `<data_dir>/cleaner-offset-checkpoint` (Kafka's name and
//! format), which holds each partition's first dirty offset so that a
//! restart does not clean everything again.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use super::Catalog;
use super::recovery_point::{read_checkpoint, write_checkpoint};
use crate::storage::OffsetMap;
use crate::util::now_ms;

/// Kafka's file name.
const FILE: &str = "cleaner-offset-checkpoint";

/// First dirty offset of each cleaned partition.
#[derive(Debug)]
pub(crate) struct CleanerOffsets {
    path: PathBuf,
    offsets: Mutex<HashMap<(String, i32), i64>>,
}

impl CleanerOffsets {
    pub(super) fn open(data_dir: &std::path::Path) -> CleanerOffsets {
        let path = data_dir.join(FILE);
        CleanerOffsets {
            offsets: Mutex::new(read_checkpoint(&path)),
            path,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), i64>> {
        self.offsets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets a deleted topic, so a topic created again under its name
    /// starts clean. True if it had any checkpoint.
    pub(super) fn forget_topic(&self, topic: &str) -> bool {
        let mut offsets = self.lock();
        let before = offsets.len();
        offsets.retain(|(t, _), _| t != topic);
        offsets.len() != before
    }
}

/// What a cleaner pass did, summed over partitions.
#[derive(Debug, Default, Clone, Copy)]
pub struct CleanStats {
    /// Partitions cleaned.
    pub partitions: usize,
    /// Bytes of the rewritten segments before and after cleaning.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Catalog {
    /// One cleaner pass over the compacted partitions that fall to cleaner
    /// `thread` of `threads`, with a key map of `map_bytes` (allocated only
    /// if some partition needs cleaning, and freed after). Partitions whose
    /// policy also deletes get their retention applied here too, so
    /// `compact,delete` acts within the cleaner's backoff.
    /// `stopping` is asked before each partition: a stopping broker waits
    /// for one partition's cleaning at most.
    pub fn clean_pass(
        &self,
        (thread, threads): (usize, usize),
        map_bytes: usize,
        stopping: &dyn Fn() -> bool,
    ) -> CleanStats {
        let mut stats = CleanStats::default();
        let mut map: Option<OffsetMap> = None;
        let mut moved = false;
        // A topic's partitions share its cleanup.policy (each is set under
        // the admin lock): a broker of many topics that are not compacted
        // pays one look per topic and pass, not a lock of every partition.
        let compacted = self
            .topics()
            .into_iter()
            .filter(|t| t.partition(0).is_some_and(|p| p.is_compacted()));
        for partition in compacted.flat_map(|t| t.partitions()) {
            if stopping() {
                break;
            }
            // By a hash of the partition's name, not its place in the list:
            // a topic created or deleted must not hand a partition being
            // cleaned to another thread.
            let mut hash = DefaultHasher::new();
            (&partition.topic, partition.index).hash(&mut hash);
            if hash.finish() % threads.max(1) as u64 != thread as u64 || !partition.is_compacted() {
                continue;
            }
            let now = now_ms();
            if partition.deletes()
                && let Err(e) = partition.apply_retention(now)
            {
                tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed");
            }
            let key = (partition.topic.clone(), partition.index);
            let end = partition.log_end_offset().unwrap_or(i64::MAX);
            let (first_dirty, reset) = self.first_dirty(&key, end);
            moved |= reset;
            let map = map.get_or_insert_with(|| OffsetMap::new(map_bytes));
            match partition.clean(first_dirty, map, now) {
                Ok(Some(report)) => {
                    tracing::debug!(topic = %partition.topic, partition = partition.index, before = report.bytes_before, after = report.bytes_after, "cleaned");
                    stats.partitions += 1;
                    stats.bytes_before += report.bytes_before;
                    stats.bytes_after += report.bytes_after;
                    self.cleaner.lock().insert(key, report.next_dirty);
                    moved = true;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "cleaning failed")
                }
            }
        }
        if moved && let Err(e) = self.write_cleaner_offsets() {
            tracing::warn!(error = %e, "cannot write the cleaner offset checkpoint");
        }
        stats
    }

    /// One cleaner pass over an internal log (`name`, partition 0) that
    /// lives outside the catalog: `clean` gets the first dirty offset and
    /// returns the next one when it cleaned.
    pub(crate) fn clean_internal(
        &self,
        (name, end): (&str, i64),
        clean: impl FnOnce(i64) -> crate::error::Result<Option<i64>>,
    ) {
        let key = (name.to_string(), 0);
        let (first_dirty, reset) = self.first_dirty(&key, end);
        let moved = match clean(first_dirty) {
            Ok(Some(next)) => {
                self.cleaner.lock().insert(key, next);
                true
            }
            Ok(None) => reset,
            Err(e) => {
                tracing::warn!(log = name, error = %e, "cleaning failed");
                reset
            }
        };
        if moved && let Err(e) = self.write_cleaner_offsets() {
            tracing::warn!(error = %e, "cannot write the cleaner offset checkpoint");
        }
    }

    /// The checkpointed first dirty offset of `key`, and whether it was
    /// reset: one past the log's `end` (a tail a crash took after the
    /// checkpoint) starts over from 0, as in Kafka, and is recorded so at
    /// once, so that records written there again are mapped.
    fn first_dirty(&self, key: &(String, i32), end: i64) -> (i64, bool) {
        let mut offsets = self.cleaner.lock();
        match offsets.get(key).copied() {
            Some(first_dirty) if first_dirty > end => {
                tracing::warn!(topic = %key.0, partition = key.1, first_dirty, end, "the cleaner's checkpoint is past the log's end; cleaning from the start");
                offsets.insert(key.clone(), 0);
                (0, true)
            }
            first_dirty => (first_dirty.unwrap_or(0), false),
        }
    }

    pub(super) fn write_cleaner_offsets(&self) -> crate::error::Result<()> {
        let offsets = self.cleaner.lock().clone();
        let points: Vec<(&str, i32, i64)> = offsets
            .iter()
            .map(|((t, p), o)| (t.as_str(), *p, *o))
            .collect();
        write_checkpoint(&self.cleaner.path, &points)
    }
}

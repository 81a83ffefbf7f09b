//! One partition: the boundary between the broker and a partition's log.
//!
//! A [`Partition`] owns its [`Log`] behind a `std::sync::Mutex` that is held
//! only for the bookkeeping of one operation (never across an `.await`, never
//! while bytes are copied), its turn to fsync (group commit), and a `watch` of
//! its [`Offsets`] that changes whenever one of them moves. Handlers use its
//! operations and never see the log.
//!
//! Reads come in two steps: [`Partition::locate`] works out, under the lock,
//! which bytes a fetch would get ([`Located`]); after the lock is released,
//! and only when the fetch will answer, [`Located::read`] copies them or
//! [`Located::send_from`] gives the file range the connection sends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use kafka_protocol::ResponseError;
use tokio::sync::{Notify, watch};

use crate::error::{Error, Result};
use crate::flush::FlushTurn;
use crate::storage::{self, AppendInfo, Log, OffsetMap};
use crate::util::now_ms;

mod lifecycle;
mod read;
mod sync;

use lifecycle::{Unopened, lock};
pub use read::{FetchSpec, Located};

/// The offsets a partition publishes to waiting fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offsets {
    /// The first offset that can be read.
    pub log_start: i64,
    /// The offset the next record will get; everything below it is readable
    /// (a single broker has no replicas to wait for).
    pub high_watermark: i64,
    /// The offset below which no transaction is open (the high watermark
    /// when none is).
    pub last_stable: i64,
}

impl Offsets {
    fn of(log: &Log) -> Offsets {
        Offsets {
            log_start: log.start_offset(),
            high_watermark: log.end_offset(),
            last_stable: log.last_stable_offset(),
        }
    }
}

/// What one cleaner pass did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CleanReport {
    /// The next pass's first dirty offset.
    pub(crate) next_dirty: i64,
    /// Bytes of the segments rewritten, before and after.
    pub(crate) bytes_before: u64,
    pub(crate) bytes_after: u64,
}

/// A producer that wrote to a partition: (producer id, epoch, last
/// sequence, first offset of its open transaction).
pub(crate) type ActiveProducer = (i64, i16, i32, Option<i64>);

/// One partition of a topic. Safe to share between tasks (`Arc<Partition>`).
#[derive(Debug)]
pub struct Partition {
    /// The topic's name.
    pub topic: String,
    /// The partition's index in its topic.
    pub index: i32,
    dir: PathBuf,
    /// Set once the log is open: at creation, or when first used after a start.
    log: OnceLock<Mutex<Log>>,
    /// What opening the log needs, until it is open.
    unopened: Mutex<Option<Unopened>>,
    flush: FlushTurn,
    offsets: watch::Sender<Offsets>,
    deleted: AtomicBool,
    /// Set when a roll left a sealed segment to fsync, or [`Partition::sync_later`]
    /// asks; the catalog's flusher, woken through `flush_wanted`, does it
    /// off the produce path.
    rolled: AtomicBool,
    flush_wanted: Arc<Notify>,
    /// Set under `flush = "always"`: readers see only what is fsynced (see
    /// [`Partition::offsets_of`]).
    synced_reads: Arc<AtomicBool>,
}

impl Partition {
    /// Publishes the log's offsets; waiting fetches wake only if one moved.
    fn publish(&self, log: &Log) {
        let now = self.offsets_of(log);
        self.offsets.send_if_modified(|old| {
            let changed = *old != now;
            *old = now;
            changed
        });
    }

    fn check_live(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(Error::api(
                ResponseError::UnknownTopicOrPartition,
                "the topic was deleted",
            ));
        }
        Ok(())
    }

    /// The current offsets: of a log not opened since its clean close, as
    /// the close recorded them; otherwise the log is opened first if needed.
    /// A log that cannot be opened (out of descriptors) is
    /// KAFKA_STORAGE_ERROR, never offsets of 0 a client would act on.
    pub fn offsets(&self) -> Result<Offsets> {
        if let Some(closed) = self.closed_summary() {
            return Ok(Offsets {
                log_start: closed.start_offset,
                high_watermark: closed.end_offset,
                last_stable: closed.last_stable_offset,
            });
        }
        self.opened()?;
        Ok(*self.offsets.borrow())
    }

    /// A receiver that changes whenever the offsets move, or the partition is
    /// deleted. A fetch parks on the receivers of the partitions it asked for.
    pub fn watch(&self) -> watch::Receiver<Offsets> {
        self.offsets.subscribe()
    }

    /// Validates and appends `batches` (RecordBatch v2, back to back, as a
    /// producer sent them), all or nothing; see [`Log::append`]. Batches
    /// are first recompressed if the topic's `compression.type` asks for it.
    pub fn append(&self, batches: &[u8]) -> Result<AppendInfo> {
        self.append_with(batches, Log::append)
    }

    fn append_with(
        &self,
        batches: &[u8],
        append: impl FnOnce(&mut Log, &[u8], i64) -> storage::Result<AppendInfo>,
    ) -> Result<AppendInfo> {
        self.check_live()?;
        // Recompression (compression.type) is the slow part: outside the lock.
        let compression = self.log()?.config().compression_type;
        let batches = storage::conform_compression(batches, compression)?;
        let mut log = self.log()?;
        let info = append(&mut log, &batches, now_ms())?;
        self.publish(&log);
        self.flush_if_rolled(&log);
        Ok(info)
    }

    /// The producer (id, epoch) of `batches` when they are transactional.
    pub fn transactional_producer(batches: &[u8]) -> Option<(i64, i16)> {
        storage::transactional_producer(batches)
    }

    /// [`Partition::append`] for a transactional producer whose transaction
    /// the coordinator has checked includes this partition.
    pub fn append_transactional(&self, batches: &[u8]) -> Result<AppendInfo> {
        self.append_with(batches, Log::append_transactional)
    }

    /// Writes a COMMIT or ABORT marker ending `producer`'s transaction here.
    pub fn append_marker(&self, producer: (i64, i16), commit: bool) -> Result<AppendInfo> {
        self.check_live()?;
        let mut log = self.log()?;
        let info = log.append_marker(producer, commit, 0, now_ms())?;
        self.publish(&log);
        Ok(info)
    }

    /// Every producer that wrote here (DescribeProducers): (producer id,
    /// epoch, last sequence, first offset of its open transaction).
    /// A log that cannot be opened is KAFKA_STORAGE_ERROR, never "none".
    pub fn active_producers(&self) -> Result<Vec<ActiveProducer>> {
        Ok(self.log()?.active_producers())
    }

    /// Open transactions here: (producer id, epoch, first offset). A log
    /// that cannot be opened is KAFKA_STORAGE_ERROR, never "none": the
    /// coordinator must not take a marker it could not write as not needed.
    pub fn open_transactions(&self) -> Result<Vec<(i64, i16, i64)>> {
        Ok(self.log()?.open_transactions())
    }

    /// Moves the log start offset forward to `offset` (-1: the high
    /// watermark); returns the new log start offset. Past the high
    /// watermark (under `flush = "always"`, records not fsynced yet) is
    /// OFFSET_OUT_OF_RANGE, as in Kafka.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        self.check_live()?;
        let mut log = self.log()?;
        let high_watermark = self.offsets_of(&log).high_watermark;
        let offset = if offset == -1 { high_watermark } else { offset };
        if offset > high_watermark {
            return Err(storage::Error::OffsetOutOfRange {
                offset,
                start: log.start_offset(),
                end: high_watermark,
            }
            .into());
        }
        let low = log.delete_records_before(offset);
        // Published even when a file could not be removed: the start
        // offset may have moved all the same.
        self.publish(&log);
        Ok(low?)
    }

    /// In-sync replicas an acks=all produce needs (`min.insync.replicas`).
    pub fn min_insync_replicas(&self) -> i32 {
        self.config(|c| c.min_insync_replicas)
    }

    /// The offset the next record gets. Under `flush = "always"` the high
    /// watermark can be behind it, waiting for an fsync.
    pub fn log_end_offset(&self) -> Result<i64> {
        match self.closed_summary() {
            Some(closed) => Ok(closed.end_offset),
            None => Ok(lock(self.opened()?).end_offset()),
        }
    }

    /// Bytes of the partition's `.log` files, as [`Partition::offsets`] tells them.
    pub fn size_bytes(&self) -> u64 {
        match self.closed_summary() {
            Some(closed) => closed.size_bytes,
            None => self.log().map_or(0, |log| log.size_bytes()),
        }
    }

    /// The partition directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Applies retention (and time-based rolling); returns segments deleted.
    /// A log not opened yet is left closed when it has a single segment:
    /// that one is active, and a segment opened now is not old enough to roll.
    pub(crate) fn apply_retention(&self, now_ms: i64) -> Result<usize> {
        if self.log.get().is_none() && segment_files(&self.dir) <= 1 {
            return Ok(0);
        }
        let mut log = self.log()?;
        let deleted = log.apply_retention(now_ms);
        self.publish(&log);
        // Retention rolls a segment past `segment.ms` with no append; and a
        // sync that failed for want of a descriptor is tried again here.
        self.flush_if_rolled(&log);
        Ok(deleted?)
    }

    /// One cleaner pass over this partition if it is compacted and dirty
    /// enough: planned and installed under the log lock, the reading and
    /// writing done without it. `first_dirty` is the first offset not yet
    /// cleaned; returns the next one, or `None` when there was nothing to do.
    pub(crate) fn clean(
        &self,
        first_dirty: i64,
        map: &mut OffsetMap,
        now_ms: i64,
    ) -> Result<Option<CleanReport>> {
        self.check_live()?;
        let Some(job) = self.log()?.clean_job(first_dirty, now_ms) else {
            return Ok(None);
        };
        let cleaned = job.run(map, now_ms)?;
        let mut log = self.log()?;
        log.install_cleaned(&cleaned, now_ms)?;
        self.publish(&log);
        Ok(Some(CleanReport {
            next_dirty: cleaned.next_dirty,
            bytes_before: cleaned.bytes_before,
            bytes_after: cleaned.bytes_written,
        }))
    }

    /// True when the topic's `cleanup.policy` includes `compact`.
    pub(crate) fn is_compacted(&self) -> bool {
        self.config(|c| c.cleanup_policy.compacts())
    }

    /// True when the topic's `cleanup.policy` includes `delete`.
    pub(crate) fn deletes(&self) -> bool {
        self.config(|c| c.cleanup_policy.deletes())
    }

    /// Refuses every later operation and wakes waiting fetches, which then
    /// answer UNKNOWN_TOPIC_OR_PARTITION.
    /// Whoever holds the log when it returns has let go of it, and whoever
    /// takes it afterwards is refused: its directory can go.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        *lock(&self.unopened) = None;
        if let Some(log) = self.log.get() {
            // Waits for whoever holds the log, and leaves a sync that passed
            // the deleted check just before nothing to write late.
            lock(log).forget_unwritten_aborts();
        }
        self.offsets.send_modify(|_| {});
    }
}

/// `.log` files in `dir`, counted up to 2 (0 when it cannot be read).
fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .take(2)
            .count()
    })
}

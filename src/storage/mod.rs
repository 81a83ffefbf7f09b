//! Storage: one segmented, Kafka-format log per partition.
//!
//! Synchronous and runtime-free: the broker wraps each [`Log`] in a
//! `std::sync::Mutex`, computes [`ReadSlice`]s under it and reads them outside.
//!
//! On-disk layout of a partition directory `<topic>-<partition>/` (Kafka's own):
//!
//! | file | content |
//! |---|---|
//! | `{base:020}.log` | RecordBatch v2, back to back, as produced but for each batch's base offset and leader epoch (and LogAppendTime stamp) |
//! | `{base:020}.index` | sparse offset index: 8-byte entries, relative offset u32 BE + position u32 BE; preallocated, trimmed on seal |
//! | `{base:020}.timeindex` | time index: 12-byte entries, max timestamp so far i64 BE + relative offset u32 BE; monotone |
//! | `{base:020}.txnindex` | aborted transactions whose ABORT marker is in the segment: 34-byte entries (version, producer id, first offset, last offset, last stable offset), Kafka's layout; rebuilt by recovery |
//! | `{offset:020}.sluice-producers` | idempotent-producer state as of `offset` (Sluice's own format, CRC32C-checked; not Kafka's `.snapshot`) |
//! | `log-start-offset` | log start offset moved by DeleteRecords (decimal, written atomically) |
//! | `.clean-shutdown` | present only between a clean `close()` and the next `open()`; holds the log start, end and last stable offsets and the `.log` bytes, in decimal, so a view of the log needs no open |
//!
//! Invariants: offsets are dense across segments; a segment's base offset is
//! the first offset it holds; index files are caches, rebuilt from the `.log`
//! whenever they look inconsistent or after an unclean stop.

use std::borrow::Cow;

mod clean;
mod compression;
mod config;
mod crc;
mod disk;
mod error;
mod index;
mod log;
mod open_segments;
mod producer;
mod record;
mod segment;
mod store;
#[doc(hidden)]
pub mod testing;
mod timestamps;
mod txn;

pub use clean::{CleanJob, Cleaned, OffsetMap};
pub use config::{
    CleanupPolicy, CompressionType, DEFAULT_INDEX_INTERVAL_BYTES, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_INDEX_BYTES, DEFAULT_SEGMENT_MS, LogConfig,
    TimestampType,
};
pub use crc::{Crc32c, crc32c};
pub use disk::{Disk, RealDisk};
pub use error::{Error, Result};
pub use log::{
    AppendInfo, ClosedLog, Log, ReadSlice, SyncError, SyncTarget, closed_cleanly, closed_log,
};
pub use open_segments::{LogFiles, OpenSegments, real_unbounded};
pub use record::RecordBatch;
pub(crate) use record::{put_varint, transactional_producer};
pub(crate) use timestamps::first_record;
pub use txn::AbortedTxn;

/// Recompresses the batches whose codec differs from what `compression.type` asks for.
pub(crate) fn conform_compression(
    batches: &[u8],
    compression: CompressionType,
) -> Result<Cow<'_, [u8]>> {
    match compression.codec() {
        Some(codec) => compression::conform(batches, codec),
        None => Ok(Cow::Borrowed(batches)),
    }
}

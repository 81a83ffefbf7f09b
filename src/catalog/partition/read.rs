//! Reads: what a fetch gets from a partition, located under the log's lock
//! and read or sent after it, and the offsets ListOffsets looks up by time.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::{Offsets, Partition};
use crate::connection::FileRange;
use crate::error::{Error, Result};
use crate::storage::{AbortedTxn, ReadSlice, first_record};

/// What one partition of a fetch asks for.
#[derive(Debug, Clone, Copy)]
pub struct FetchSpec {
    /// The first offset wanted.
    pub offset: i64,
    /// The most bytes to return.
    pub max_bytes: usize,
    /// KIP-74: the first non-empty partition of a response returns a whole
    /// batch even when it is larger than `max_bytes`.
    pub may_exceed: bool,
    /// read_committed: only below the last stable offset, with the aborted
    /// transactions the client must skip.
    pub read_committed: bool,
}

/// The bytes a fetch would return from one partition, not yet read.
#[derive(Debug)]
pub struct Located {
    slice: ReadSlice,
    /// The partition's offsets when the bytes were located.
    pub offsets: Offsets,
    /// For read_committed: the aborted transactions overlapping the bytes.
    pub aborted: Option<Vec<AbortedTxn>>,
}

impl Located {
    /// Number of bytes located.
    pub fn len(&self) -> usize {
        self.slice.len()
    }

    /// True when no bytes were located.
    pub fn is_empty(&self) -> bool {
        self.slice.is_empty()
    }

    /// The located bytes, read with one `pread`.
    /// A failed read is KAFKA_STORAGE_ERROR for this partition only.
    pub fn read(&self) -> Result<Bytes> {
        self.slice.read().map_err(storage_error)
    }

    /// The located bytes as a range of their segment file, for the
    /// connection to send without reading them (`None` when there are none).
    pub(crate) fn send_from(&self) -> Result<Option<FileRange>> {
        let found = self.slice.send_from().map_err(storage_error)?;
        Ok(found.map(|(file, position)| FileRange {
            file: file.clone(),
            position,
            len: self.slice.len(),
        }))
    }
}

fn storage_error(e: std::io::Error) -> Error {
    Error::api(ResponseError::KafkaStorageError, e.to_string())
}

impl Partition {
    /// Locates the whole batches a fetch of `spec` returns. With
    /// `may_exceed` false, a first batch larger than `max_bytes` gives none.
    pub fn locate(&self, spec: FetchSpec) -> Result<Located> {
        self.check_live()?;
        let mut log = self.log()?;
        let offsets = self.offsets_of(&log);
        let upto = if spec.read_committed {
            offsets.last_stable
        } else {
            offsets.high_watermark
        };
        let mut slice = if spec.max_bytes == 0 && !spec.may_exceed {
            ReadSlice::empty()
        } else {
            log.read_below(spec.offset, spec.max_bytes, upto)?
        };
        if !spec.may_exceed && slice.len() > spec.max_bytes {
            slice = ReadSlice::empty();
        }
        let aborted = spec
            .read_committed
            .then(|| log.aborted_transactions(spec.offset, upto));
        log.repair_indexes();
        Ok(Located {
            slice,
            offsets,
            aborted,
        })
    }

    /// The first record whose timestamp is at or after `timestamp`:
    /// (offset, timestamp), or `None` when every record is older.
    pub fn offset_for_time(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        self.check_live()?;
        // The batch is found by its max timestamp under the lock; its records
        // are walked after the lock is released.
        let (found, slice) = {
            let log = self.log()?;
            match log.offset_for_timestamp(timestamp)? {
                Some((base, ts)) => ((base, ts), log.read(base, 1).ok()),
                None => return Ok(None),
            }
        };
        let min_offset = found.0;
        Ok(Some(
            refine(slice, min_offset, |ts| ts >= timestamp).unwrap_or(found),
        ))
    }

    /// The first record holding the largest timestamp: (offset, timestamp),
    /// or `None` when the partition is empty.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        self.check_live()?;
        let (found, slice, start) = {
            let log = self.log()?;
            match log.max_timestamp()? {
                Some((ts, last)) => ((last, ts), log.read(last, 1).ok(), log.start_offset()),
                None => return Ok(None),
            }
        };
        Ok(Some(
            refine(slice, start, |ts| ts == found.1).unwrap_or(found),
        ))
    }
}

/// The record of the located batch wanted by `wanted`, at or after
/// `min_offset`; `None` keeps the batch-level answer.
fn refine(
    slice: Option<ReadSlice>,
    min_offset: i64,
    wanted: impl Fn(i64) -> bool,
) -> Option<(i64, i64)> {
    let bytes = slice?.read().ok()?;
    first_record(&bytes, min_offset, wanted)
}

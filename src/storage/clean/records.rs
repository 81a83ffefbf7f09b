//! The records inside one batch, for the cleaner: each record's offset,
//! key and whether it is a tombstone, and rebuilding a batch from the
//! records it keeps (Kafka's rules: the base offset, last offset delta and
//! producer fields stay; only the record count, the records, the length,
//! the CRC and, with a delete horizon, the base timestamp change).

use std::io::Read;

use crate::storage::compression::{self, NONE};
use crate::storage::record::{
    ATTRIBUTES_AT, CRC_AT, HEADER_BYTES, LOG_OVERHEAD, RecordBatch, put_varint, read_varint,
};
use crate::storage::{Error, Result};

/// Attribute bit of a batch whose base timestamp is its delete horizon (KIP-534).
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;
const CODEC_MASK: i16 = 0x07;
const BASE_TIMESTAMP_AT: usize = 27;
const RECORD_COUNT_AT: usize = 57;

impl Record<'_> {
    /// A null value: the record deletes its key.
    pub(crate) fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// One record of a decompressed batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub(crate) offset: i64,
    /// `None`: the record has no key.
    pub(crate) key: Option<&'a [u8]>,
    /// `None`: a null value, a tombstone.
    pub(crate) value: Option<&'a [u8]>,
    attributes: u8,
    timestamp: i64,
    /// The record's bytes after its timestamp delta (offset delta, key, value, headers).
    tail: &'a [u8],
}

/// The uncompressed records of `batch`, at most [`compression::MAX_DECOMPRESSED_BYTES`].
pub(crate) fn raw_records(batch: &RecordBatch<'_>) -> Result<Vec<u8>> {
    compression::decompress(batch.compression(), batch.records()).ok_or_else(|| {
        Error::CorruptMessage(format!(
            "batch at offset {} does not decompress",
            batch.base_offset()
        ))
    })
}

/// Parses the `batch`'s records out of `raw` (its decompressed records).
pub(crate) fn parse<'a>(batch: &RecordBatch<'_>, raw: &'a [u8]) -> Result<Vec<Record<'a>>> {
    let corrupt = || {
        Error::CorruptMessage(format!(
            "unreadable records in batch at offset {}",
            batch.base_offset()
        ))
    };
    let count = usize::try_from(batch.record_count()).map_err(|_| corrupt())?;
    let mut records = Vec::with_capacity(count.min(raw.len()));
    let mut rest = raw;
    for _ in 0..count {
        let len = read_varint(&mut rest, 5).map_err(|_| corrupt())?;
        let len = usize::try_from(len).map_err(|_| corrupt())?;
        let (mut body, after) = rest.split_at_checked(len).ok_or_else(corrupt)?;
        rest = after;
        let mut attributes = [0u8; 1];
        body.read_exact(&mut attributes).map_err(|_| corrupt())?;
        let timestamp_delta = read_varint(&mut body, 10).map_err(|_| corrupt())?;
        let tail = body;
        let offset_delta = read_varint(&mut body, 5).map_err(|_| corrupt())?;
        let key = bytes_field(&mut body).ok_or_else(corrupt)?;
        let value = bytes_field(&mut body).ok_or_else(corrupt)?;
        records.push(Record {
            offset: batch.base_offset().saturating_add(offset_delta),
            key,
            value,
            attributes: attributes[0],
            timestamp: batch.base_timestamp().saturating_add(timestamp_delta),
            tail,
        });
    }
    Ok(records)
}

/// A varint-length-prefixed byte field; `Some(None)` for length -1 (null).
fn bytes_field<'a>(body: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = read_varint(body, 5).ok()?;
    if len < 0 {
        return Some(None);
    }
    let (field, rest) = body.split_at_checked(usize::try_from(len).ok()?)?;
    *body = rest;
    Some(Some(field))
}

/// Appends to `out` the batch `batch` holding only `kept` (some of its
/// records, in order). `delete_horizon`: stamp this horizon into the
/// batch (attribute bit and base timestamp; record timestamps stay what
/// they were). A batch left with no record is written empty and uncompressed.
pub(crate) fn rebuild(
    batch: &RecordBatch<'_>,
    kept: &[Record<'_>],
    delete_horizon: Option<i64>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let base_timestamp = delete_horizon.unwrap_or(batch.base_timestamp());
    let mut raw = Vec::new();
    for record in kept {
        let mut body = Vec::with_capacity(record.tail.len() + 11);
        body.push(record.attributes);
        put_varint(&mut body, record.timestamp.wrapping_sub(base_timestamp));
        body.extend_from_slice(record.tail);
        put_varint(&mut raw, body.len() as i64);
        raw.extend_from_slice(&body);
    }
    let mut attributes = batch.attributes();
    if delete_horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let records = if kept.is_empty() {
        attributes &= !CODEC_MASK;
        Vec::new()
    } else if batch.compression() == NONE {
        raw
    } else {
        compression::compress(batch.compression(), &raw)
            .map_err(|e| Error::CorruptMessage(format!("cannot compress a cleaned batch: {e}")))?
    };
    let start = out.len();
    out.extend_from_slice(&batch.as_bytes()[..HEADER_BYTES]);
    out.extend_from_slice(&records);
    let header = &mut out[start..];
    let length = i32::try_from(header.len() - LOG_OVERHEAD)
        .map_err(|_| Error::CorruptMessage("cleaned batch too large".to_string()))?;
    header[8..12].copy_from_slice(&length.to_be_bytes());
    header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    header[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    let count = kept.len() as i32;
    header[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = crate::storage::crc32c(&header[ATTRIBUTES_AT..]);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The delete horizon stamped into `batch`, if any.
pub(crate) fn delete_horizon(batch: &RecordBatch<'_>) -> Option<i64> {
    (batch.attributes() & DELETE_HORIZON_BIT != 0).then(|| batch.base_timestamp())
}

//! A view over one RecordBatch v2, Kafka's unit of storage.
//!
//! Layout (big-endian), 61 header bytes then the records, which are never decoded:
//!
//! | at | field | | at | field |
//! |---|---|---|---|---|
//! | 0 | baseOffset i64 | | 27 | baseTimestamp i64 |
//! | 8 | batchLength i32 (bytes after this field) | | 35 | maxTimestamp i64 |
//! | 12 | partitionLeaderEpoch i32 | | 43 | producerId i64 |
//! | 16 | magic i8 = 2 | | 51 | producerEpoch i16 |
//! | 17 | crc u32: CRC32C of bytes 21..end | | 53 | baseSequence i32 |
//! | 21 | attributes i16 | | 57 | recordCount i32 |
//! | 23 | lastOffsetDelta i32 | | 61 | records |
//!
//! The CRC starts at `attributes`, so patching the base offset keeps it valid;
//! patching the max timestamp (LogAppendTime) recomputes it.

use super::{Crc32c, Error, Result};

mod varint;
use varint::record_length;
#[cfg(test)]
pub(crate) use varint::take_varint;
pub(crate) use varint::{put_varint, read_varint};

/// Bytes before `batchLength` counts: base offset + length field.
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 header.
pub(crate) const HEADER_BYTES: usize = 61;
const MIN_BATCH_LENGTH: usize = HEADER_BYTES - LOG_OVERHEAD;
const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
const LEADER_EPOCH_AT: usize = 12;
pub(crate) const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const MAX_COMPRESSION_CODEC: i16 = 4;

/// The decoded fixed header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    /// Whole batch size in bytes, including the offset and length fields.
    pub(crate) size: usize,
    pub(crate) crc: u32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    /// The first record's timestamp.
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) record_count: i32,
}

fn be<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = buf.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

impl BatchHeader {
    /// Decodes the first 61 bytes; checks only the length field and the magic.
    pub(crate) fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < HEADER_BYTES {
            return Err(Error::CorruptMessage(format!(
                "{} bytes cannot hold a batch header",
                buf.len()
            )));
        }
        let length = i32::from_be_bytes(be(buf, 8));
        let length = usize::try_from(length).unwrap_or(0);
        if length < MIN_BATCH_LENGTH {
            return Err(Error::CorruptMessage(format!(
                "batch length {length} too small"
            )));
        }
        let magic = buf.get(MAGIC_AT).copied().unwrap_or(0);
        if magic != 2 {
            return Err(Error::CorruptMessage(format!("magic {magic}, expected 2")));
        }
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(be(buf, 0)),
            size: length + LOG_OVERHEAD,
            crc: u32::from_be_bytes(be(buf, CRC_AT)),
            attributes: i16::from_be_bytes(be(buf, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(be(buf, 23)),
            base_timestamp: i64::from_be_bytes(be(buf, BASE_TIMESTAMP_AT)),
            max_timestamp: i64::from_be_bytes(be(buf, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(be(buf, 43)),
            producer_epoch: i16::from_be_bytes(be(buf, 51)),
            base_sequence: i32::from_be_bytes(be(buf, 53)),
            record_count: i32::from_be_bytes(be(buf, 57)),
        })
    }

    /// Transactional bit.
    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    /// Control-batch bit (a COMMIT or ABORT marker).
    pub(crate) fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Offset of the last record.
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Record count and offset delta agree (compressed or not).
    pub(crate) fn check_counts(&self) -> Result<()> {
        if self.record_count <= 0
            || i64::from(self.record_count) != i64::from(self.last_offset_delta) + 1
        {
            return Err(Error::InvalidRecord(format!(
                "record count {} does not match last offset delta {}",
                self.record_count, self.last_offset_delta
            )));
        }
        Ok(())
    }

    /// Record count and offset delta of a *stored* batch: compaction may have
    /// removed records (even all of them) but never moves the last offset.
    pub(crate) fn check_stored_counts(&self) -> Result<()> {
        if self.last_offset_delta < 0
            || self.record_count < 0
            || i64::from(self.record_count) > i64::from(self.last_offset_delta) + 1
        {
            return Err(Error::CorruptMessage(format!(
                "stored batch with {} records and last offset delta {}",
                self.record_count, self.last_offset_delta
            )));
        }
        Ok(())
    }
}

/// A view over the bytes of one RecordBatch v2. Never decodes the records.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
    header: BatchHeader,
}

impl<'a> RecordBatch<'a> {
    /// Views the first batch of `buf`: checks the length field (and that `buf`
    /// holds the whole batch) and the magic, not the CRC; see [`Self::validate`].
    pub fn parse(buf: &'a [u8]) -> Result<RecordBatch<'a>> {
        let header = BatchHeader::parse(buf)?;
        let bytes = buf.get(..header.size).ok_or_else(|| {
            Error::CorruptMessage(format!(
                "batch of {} bytes truncated to {}",
                header.size,
                buf.len()
            ))
        })?;
        Ok(RecordBatch { bytes, header })
    }

    /// Checks the CRC32C, the record count and the compression codec.
    pub fn validate(&self) -> Result<()> {
        let computed = crate::storage::crc32c(self.bytes.get(ATTRIBUTES_AT..).unwrap_or_default());
        if computed != self.header.crc {
            return Err(Error::CorruptMessage(format!(
                "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
                self.header.crc
            )));
        }
        if self.compression() > MAX_COMPRESSION_CODEC {
            return Err(Error::CorruptMessage(format!(
                "unknown compression codec {}",
                self.compression()
            )));
        }
        self.header.check_counts()?;
        if self.compression() == 0 {
            self.check_uncompressed_records()?;
        }
        Ok(())
    }

    /// An uncompressed batch must hold exactly `recordCount` records, back to
    /// back to its end. Only each record's length is read, not its fields;
    /// compressed batches stay opaque.
    fn check_uncompressed_records(&self) -> Result<()> {
        let records = self.records();
        let mut at = 0;
        let mut count: i64 = 0;
        // Each record's place depends on the length read before it, one
        // memory read waiting on the next. But a batch's records are often all
        // the same size: stepping by the size seen last, with a branch that
        // checks it, lets the CPU read ahead on its guess.
        let mut step = 0;
        while let Some(rest) = records.get(at..).filter(|r| !r.is_empty()) {
            let (len, prefix) = record_length(rest)?;
            if len > rest.len() - prefix {
                return Err(Error::InvalidRecord("record overruns the batch".into()));
            }
            if prefix + len != step {
                step = new_step(prefix + len);
            }
            at += step;
            count += 1;
        }
        if count != i64::from(self.header.record_count) {
            return Err(Error::InvalidRecord(format!(
                "batch claims {} records but holds {count}",
                self.header.record_count
            )));
        }
        Ok(())
    }

    /// The batch's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Whole size in bytes.
    pub fn size(&self) -> usize {
        self.header.size
    }
    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }
    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        self.header.last_offset_delta
    }
    /// `recordCount`.
    pub fn record_count(&self) -> i32 {
        self.header.record_count
    }
    /// `baseTimestamp`: record timestamps are deltas from it.
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(be(self.bytes, BASE_TIMESTAMP_AT))
    }
    /// The records after the fixed header (compressed as a whole if the batch is).
    pub fn records(&self) -> &'a [u8] {
        self.bytes.get(HEADER_BYTES..).unwrap_or_default()
    }
    /// `maxTimestamp`.
    pub fn max_timestamp(&self) -> i64 {
        self.header.max_timestamp
    }
    /// `producerId` (-1 when not idempotent).
    pub fn producer_id(&self) -> i64 {
        self.header.producer_id
    }
    /// `producerEpoch`.
    pub fn producer_epoch(&self) -> i16 {
        self.header.producer_epoch
    }
    /// `baseSequence`.
    pub fn base_sequence(&self) -> i32 {
        self.header.base_sequence
    }
    /// `attributes`.
    pub fn attributes(&self) -> i16 {
        self.header.attributes
    }
    /// Compression codec (attribute bits 0-2).
    pub fn compression(&self) -> i16 {
        self.header.attributes & COMPRESSION_MASK
    }
    /// Timestamp type bit: true for LogAppendTime.
    pub fn is_log_append_time(&self) -> bool {
        self.header.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    /// Transactional bit.
    pub fn is_transactional(&self) -> bool {
        self.header.attributes & TRANSACTIONAL_BIT != 0
    }
    /// Control-batch bit.
    pub fn is_control(&self) -> bool {
        self.header.attributes & CONTROL_BIT != 0
    }

    /// Writes `offset` into bytes 0..8 of the batch at the start of `batch`; the CRC stays valid.
    pub fn set_base_offset(batch: &mut [u8], offset: i64) {
        if let Some(dst) = batch.get_mut(..8) {
            dst.copy_from_slice(&offset.to_be_bytes());
        }
    }

    /// The first [`HEADER_BYTES`] of `batch` as the log stores them: base
    /// offset and partition leader epoch set, as Kafka's leader does (both
    /// lie before the CRC-covered bytes); with `log_append_time`, also the
    /// max timestamp and the timestamp-type bit, and the CRC recomputed over
    /// the new header and the records. The records are stored as they came.
    pub fn stored_header(
        batch: &[u8],
        base_offset: i64,
        leader_epoch: i32,
        log_append_time: Option<i64>,
    ) -> Result<[u8; HEADER_BYTES]> {
        let header = BatchHeader::parse(batch)?;
        let records = batch
            .get(HEADER_BYTES..header.size)
            .ok_or_else(|| Error::CorruptMessage("truncated batch".to_string()))?;
        let mut head = [0u8; HEADER_BYTES];
        head.copy_from_slice(&batch[..HEADER_BYTES]);
        Self::set_base_offset(&mut head, base_offset);
        head[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
        if let Some(now_ms) = log_append_time {
            let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
            head[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
            head[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
            let mut crc = Crc32c::default();
            crc.update(&head[ATTRIBUTES_AT..]);
            crc.update(records);
            head[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.finish().to_be_bytes());
        }
        Ok(head)
    }
}

/// `step`, out of line: the caller's guess stays a guess to the compiler,
/// which would otherwise step by the length just read. Cold: it runs only
/// when a record's size differs from the one before.
#[cold]
#[inline(never)]
fn new_step(step: usize) -> usize {
    std::hint::black_box(step)
}

/// The producer (id, epoch) of the first batch in `buf` if it is transactional.
pub(crate) fn transactional_producer(buf: &[u8]) -> Option<(i64, i16)> {
    let header = BatchHeader::parse(buf).ok()?;
    header
        .is_transactional()
        .then_some((header.producer_id, header.producer_epoch))
}

/// Which kinds of batch an append admits besides plain ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Plain (idempotent or not) batches only.
    Plain,
    /// Transactional data batches too (the coordinator added the partition).
    Transactional,
    /// Transaction markers (written by the coordinator).
    Markers,
}

/// Validates the batches of one append buffer; returns their headers.
pub(crate) fn parse_batches(
    buf: &[u8],
    max_message_bytes: u32,
    admit: Admit,
) -> Result<Vec<BatchHeader>> {
    if buf.is_empty() {
        return Err(Error::CorruptMessage("no record batch".to_string()));
    }
    let mut headers = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let header = BatchHeader::parse(rest)?;
        if header.size > max_message_bytes as usize {
            return Err(Error::RecordTooLarge {
                size: header.size,
                max: max_message_bytes,
            });
        }
        let batch = RecordBatch::parse(rest)?;
        batch.validate()?;
        let admitted = match admit {
            Admit::Plain => !batch.is_transactional() && !batch.is_control(),
            Admit::Transactional => !batch.is_control(),
            Admit::Markers => batch.is_control() && batch.is_transactional(),
        };
        if !admitted {
            return Err(Error::InvalidRecord(format!(
                "batch kind (transactional {}, control {}) not admitted here",
                batch.is_transactional(),
                batch.is_control()
            )));
        }
        headers.push(header);
        rest = rest.get(header.size..).unwrap_or_default();
    }
    Ok(headers)
}

#[cfg(test)]
mod tests;

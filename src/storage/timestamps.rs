//! Record timestamps inside one stored batch, for ListOffsets.
//!
//! Storage indexes batches by their max timestamp and never decodes records;
//! Kafka answers ListOffsets with a *record*. This module walks the records
//! of one batch (decompressing gzip, snappy, lz4 or zstd when needed) and
//! reads only each record's length, timestamp delta and offset delta,
//! skipping keys, values and headers.
//!
//! A stored batch may be a decompression bomb: at most
//! [`MAX_DECOMPRESSED_BYTES`] are decompressed. Any failure (cap reached,
//! damaged data, unknown codec) gives `None`, and the caller keeps the
//! batch-level answer. Nothing here errors or panics.

use std::io::{self, Read};

use super::compression::{self, MAX_DECOMPRESSED_BYTES};
use super::record::{RecordBatch, read_varint};

/// The first record of the batch at the start of `buf` whose offset is at
/// least `min_offset` and whose timestamp satisfies `wanted`: (offset,
/// timestamp). `None` when no record matches or the batch cannot be read.
pub(crate) fn first_record(
    buf: &[u8],
    min_offset: i64,
    wanted: impl Fn(i64) -> bool,
) -> Option<(i64, i64)> {
    let batch = RecordBatch::parse(buf).ok()?;
    if batch.is_log_append_time() {
        // Every record carries the broker's append time, the batch max.
        let offset = batch.base_offset().max(min_offset);
        let ts = batch.max_timestamp();
        return (offset <= batch.last_offset() && wanted(ts)).then_some((offset, ts));
    }
    let records = batch.records();
    let walk = Walk {
        base_offset: batch.base_offset(),
        base_ts: batch.base_timestamp(),
        count: batch.record_count(),
        min_offset,
    };
    let reader = compression::reader(batch.compression(), records)?;
    walk.run(reader, &wanted).ok().flatten()
}

/// Where and what to walk.
struct Walk {
    base_offset: i64,
    base_ts: i64,
    count: i32,
    min_offset: i64,
}

impl Walk {
    /// Reads records from `records` (decompressed) until one matches.
    fn run(
        &self,
        records: impl Read,
        wanted: &impl Fn(i64) -> bool,
    ) -> io::Result<Option<(i64, i64)>> {
        self.run_capped(records, wanted, MAX_DECOMPRESSED_BYTES)
    }

    /// [`Self::run`], failing once `cap` bytes have been read.
    fn run_capped(
        &self,
        records: impl Read,
        wanted: &impl Fn(i64) -> bool,
        cap: u64,
    ) -> io::Result<Option<(i64, i64)>> {
        let mut r = records.take(cap);
        for _ in 0..self.count {
            let len = read_varint(&mut r, 5)?;
            let len = u64::try_from(len).map_err(|_| invalid("negative record length"))?;
            let mut record = (&mut r).take(len);
            let _attributes = byte(&mut record)?;
            let ts_delta = read_varint(&mut record, 10)?;
            let offset_delta = read_varint(&mut record, 5)?;
            let offset = self.base_offset.saturating_add(offset_delta);
            let ts = self.base_ts.saturating_add(ts_delta);
            if offset >= self.min_offset && wanted(ts) {
                return Ok(Some((offset, ts)));
            }
            let rest = record.limit();
            if io::copy(&mut record, &mut io::sink())? != rest {
                return Err(invalid("truncated record"));
            }
        }
        Ok(None)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn byte(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

#[cfg(test)]
mod tests;

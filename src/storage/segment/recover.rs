//! Rebuilding a segment from its `.log`: the crash-recovery scan and the
//! index bookkeeping shared with appends.

use super::{Indexes, Segment, SegmentConfig, Tail};
use crate::storage::record::{BatchHeader, HEADER_BYTES};
use crate::storage::{Crc32c, Error, Result};

impl Segment {
    /// Scans the whole `.log` checking every batch (bounds, magic, CRC,
    /// increasing offsets from the base; compacted
    /// segments have gaps), cuts it at the first bad byte and
    /// rebuilds both indexes. Returns the number of bytes dropped.
    pub(crate) fn recover(&mut self) -> Result<u64> {
        self.load_indexes(true)?;
        self.set_sealed(false);
        let mut tail = Tail::default();
        let mut position = 0u64;
        let mut next_offset = self.base_offset;
        let mut header_buf = [0u8; HEADER_BYTES];
        let config = self.config;
        while let Some(header) = self.checked_batch_at(position, next_offset, &mut header_buf)? {
            let indexes = self.indexes_mut()?;
            index_batch(indexes, &mut tail, config, position, &header);
            position += header.size as u64;
            next_offset = header.last_offset() + 1;
        }
        let dropped = self.store.len() - position;
        if dropped > 0 {
            tracing::warn!(path = %self.log_path().display(), position, dropped, "truncating corrupt or torn tail");
            self.store.truncate_to(position)?;
        }
        self.next_offset = next_offset;
        self.tail = tail;
        Ok(dropped)
    }

    /// The batch at `position` if it is whole and valid and starts at or
    /// after `expected_offset`; `None` where the valid batches end. A read
    /// that fails (out of descriptors, EIO) is an error, never an end: the
    /// bytes after it would be cut.
    fn checked_batch_at(
        &self,
        position: u64,
        expected_offset: i64,
        buf: &mut [u8; HEADER_BYTES],
    ) -> Result<Option<BatchHeader>> {
        let read = |buf: &mut [u8], at: u64| match self.store.read_exact_at(buf, at) {
            Ok(()) => Ok(true),
            Err(e) if ends_scan(&e) => Ok(false),
            Err(e) => Err(e),
        };
        if !read(buf, position)? {
            return Ok(None);
        }
        let Ok(header) = BatchHeader::parse(buf) else {
            return Ok(None);
        };
        // Compaction leaves gaps between batches, never overlaps.
        if header.base_offset < expected_offset
            || position + header.size as u64 > self.store.len()
            || header.check_stored_counts().is_err()
        {
            return Ok(None);
        }
        let mut crc = Crc32c::default();
        let mut chunk = vec![0u8; header.size.min(64 * 1024)];
        let mut at = position + 21;
        let end = position + header.size as u64;
        while at < end {
            let n = ((end - at) as usize).min(chunk.len());
            let Some(part) = chunk.get_mut(..n) else {
                return Ok(None);
            };
            if !read(part, at)? {
                return Ok(None);
            }
            crc.update(part);
            at += n as u64;
        }
        Ok((crc.finish() == header.crc).then_some(header))
    }
}

/// Whether `e`, from reading a segment, says its valid bytes end there (a
/// torn or corrupt tail) rather than that they could not be read.
pub(super) fn ends_scan(e: &Error) -> bool {
    match e {
        Error::CorruptMessage(_) => true,
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

/// Adds the final time entry and trims both index files.
pub(super) fn finish_seal(indexes: &mut Indexes, tail: Tail) -> Result<()> {
    if let Some((timestamp, offset)) = tail.max_timestamp {
        indexes.time.maybe_append(timestamp, offset);
    }
    indexes.offset.trim()?;
    indexes.time.trim()
}

/// Index bookkeeping for one batch appended at `position`.
pub(super) fn index_batch(
    indexes: &mut Indexes,
    tail: &mut Tail,
    config: SegmentConfig,
    position: u64,
    header: &BatchHeader,
) {
    if tail
        .max_timestamp
        .is_none_or(|(t, _)| header.max_timestamp > t)
    {
        tail.max_timestamp = Some((header.max_timestamp, header.last_offset()));
    }
    if tail.bytes_since_index >= config.index_interval_bytes {
        if let Ok(position) = u32::try_from(position) {
            indexes.offset.append(header.base_offset, position);
        }
        if let Some((timestamp, offset)) = tail.max_timestamp {
            indexes.time.maybe_append(timestamp, offset);
        }
        tail.bytes_since_index = 0;
    }
    tail.bytes_since_index += header.size as u64;
}

/// Index files written beside a segment file being built elsewhere (the
/// cleaner's `.cleaned` output): `{base}.index.{suffix}` and
/// `{base}.timeindex.{suffix}`, entries added as appends would add them.
#[derive(Debug)]
pub(crate) struct IndexWriter {
    indexes: Indexes,
    tail: Tail,
    config: SegmentConfig,
}

impl IndexWriter {
    pub(crate) fn create(
        dir: &std::path::Path,
        base: i64,
        config: SegmentConfig,
        suffix: &str,
    ) -> Result<IndexWriter> {
        use super::file_name;
        use crate::storage::index::{OffsetIndex, TimeIndex};
        let capacity = config.index_capacity_bytes;
        let offset_path = dir.join(file_name(base, &format!("index.{suffix}")));
        let time_path = dir.join(file_name(base, &format!("timeindex.{suffix}")));
        let (offset, _) = OffsetIndex::open(&offset_path, base, capacity, true)?;
        let (time, _) = TimeIndex::open(&time_path, base, capacity, true)?;
        Ok(IndexWriter {
            indexes: Indexes { offset, time },
            tail: Tail::default(),
            config,
        })
    }

    /// Indexes the batch written at `position`.
    pub(crate) fn add(&mut self, position: u64, header: &BatchHeader) {
        index_batch(
            &mut self.indexes,
            &mut self.tail,
            self.config,
            position,
            header,
        );
    }

    /// Adds the final time entry, trims both files and fsyncs them: the
    /// segment they index will sit below the recovery point, where nothing
    /// checks them against its `.log` on open.
    pub(crate) fn finish(mut self) -> Result<()> {
        finish_seal(&mut self.indexes, self.tail)?;
        self.indexes.offset.sync()?;
        self.indexes.time.sync()
    }
}

//! Finding batches in a segment: by offset (offset index, then a header
//! walk) and by timestamp (time index, then a header walk).

use std::sync::atomic::Ordering;

use super::{INDEX_DAMAGED, INDEX_OK, Segment};
use crate::storage::record::{BatchHeader, HEADER_BYTES};
use crate::storage::{Error, Result};

impl Segment {
    /// Position and header of the first batch whose last offset is >= `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        let entry = self.indexes()?.offset.lookup(offset);
        let start = entry.map_or(0, |(_, p)| u64::from(p));
        let mut scanner = self.store.headers_from(start);
        let mut next = scanner.next_header();
        // IMPORTANT: an index damaged on disk (by a power loss before
        // indexes were fsynced with their log, or a disk fault) may hold an
        // entry that points inside a batch. One whose batch is not there is
        // passed over: the walk starts at the file's start.
        if let Some((entry_offset, _)) = entry
            && !trusted(&next, entry_offset)
        {
            self.index_mismatch(entry_offset);
            scanner = self.store.headers_from(0);
            next = scanner.next_header();
        }
        while let Some((position, header)) = next? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            next = scanner.next_header();
        }
        Ok(None)
    }

    /// Whether the batch starting at `position` holds `offset` (an offset
    /// index entry checked before it is trusted).
    pub(super) fn batch_at(&self, position: u64, offset: i64) -> bool {
        let mut header = [0u8; HEADER_BYTES];
        if position.saturating_add(HEADER_BYTES as u64) > self.store.len() {
            self.index_mismatch(offset);
            return false;
        }
        // A failed read says nothing about the index: not trusted, not blamed.
        if self.store.read_exact_at(&mut header, position).is_err() {
            return false;
        }
        let found = BatchHeader::parse(&header).is_ok_and(|h| holds(&h, offset));
        if !found {
            self.index_mismatch(offset);
        }
        found
    }

    /// An offset index entry names a batch that is not where it says.
    fn index_mismatch(&self, entry_offset: i64) {
        if self.index_state.load(Ordering::Relaxed) != INDEX_OK
            || self
                .index_state
                .compare_exchange(
                    INDEX_OK,
                    INDEX_DAMAGED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        tracing::warn!(
            segment = %self.store.path().display(),
            entry = entry_offset,
            "an offset index entry does not match the log (an index damaged by a power loss?); reading past it"
        );
    }

    /// (position, length) of whole batches from the one holding `offset`, at
    /// least one, more while they fit in `max_bytes`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Result<Option<(u64, usize)>> {
        let Some((position, header)) = self.find_batch(offset)? else {
            return Ok(None);
        };
        let mut len = header.size;
        let mut scanner = self.store.headers_from(position + len as u64);
        // Every index entry marks a batch start: jump to the last one that
        // fits in the budget, so only the batches after it are walked. The
        // walk then starts with the batch there, which must hold the entry's
        // offset (see `find_batch`).
        let limit = position.saturating_add(max_bytes.max(header.size) as u64);
        let jump = self
            .indexes()?
            .offset
            .lookup_position(limit)
            .map(|(entry, p)| (entry, u64::from(p)))
            .filter(|&(_, p)| p > position + header.size as u64);
        if let Some((entry, p)) = jump {
            let mut jumped = self.store.headers_from(p);
            match jumped.next_header() {
                Ok(Some((_, at))) if holds(&at, entry) => {
                    len = (p - position) as usize;
                    if len + at.size > max_bytes {
                        return Ok(Some((position, len)));
                    }
                    len += at.size;
                    scanner = jumped;
                }
                // A failed read says nothing about the index.
                Err(Error::Io { .. }) => {}
                _ => self.index_mismatch(entry),
            }
        }
        if len >= max_bytes {
            return Ok(Some((position, len)));
        }
        while let Ok(Some((_, next))) = scanner.next_header() {
            if len + next.size > max_bytes {
                break;
            }
            len += next.size;
        }
        Ok(Some((position, len)))
    }

    /// Largest timestamp and the (last) offset of the batch holding it.
    pub(crate) fn largest_timestamp(&self) -> Result<Option<(i64, i64)>> {
        if !self.sealed {
            return Ok(self.tail.max_timestamp);
        }
        Ok(self.indexes()?.time.last_entry())
    }

    /// Whether this sealed segment's time index ends with the entry its seal
    /// writes: the batch at its last entry's offset has that timestamp, and
    /// no batch after it a larger one. Walks the batches from that entry on.
    pub(crate) fn time_index_is_whole(&self) -> Result<bool> {
        let Some((timestamp, offset)) = self.indexes()?.time.last_entry() else {
            return Ok(self.store.len() == 0);
        };
        let Some((position, header)) = self.find_batch(offset)? else {
            return Ok(false);
        };
        if header.max_timestamp != timestamp {
            return Ok(false);
        }
        let mut scanner = self.store.headers_from(position);
        while let Some((_, header)) = scanner.next_header()? {
            if header.max_timestamp > timestamp {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first batch whose max timestamp is >= `timestamp`: (base offset, max timestamp).
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        if self.largest_timestamp()?.is_none_or(|(t, _)| t < timestamp) {
            return Ok(None);
        }
        let indexes = self.indexes()?;
        let start = match indexes.time.lookup_before(timestamp) {
            Some((_, offset)) => indexes
                .offset
                .lookup(offset)
                .filter(|&(entry, p)| self.batch_at(u64::from(p), entry))
                .map_or(0, |(_, p)| u64::from(p)),
            None => 0,
        };
        let mut scanner = self.store.headers_from(start);
        while let Some((_, header)) = scanner.next_header()? {
            if header.max_timestamp >= timestamp {
                return Ok(Some((header.base_offset, header.max_timestamp)));
            }
        }
        Ok(None)
    }

    /// Headers of every batch, in order, from the one holding `offset`.
    pub(crate) fn for_each_header(
        &self,
        offset: i64,
        mut f: impl FnMut(u64, &BatchHeader),
    ) -> Result<()> {
        let Some((position, _)) = self.find_batch(offset)? else {
            return Ok(());
        };
        let mut scanner = self.store.headers_from(position);
        while let Some((position, header)) = scanner.next_header()? {
            f(position, &header);
        }
        Ok(())
    }

    /// The `size` bytes of the batch at `position`.
    pub(crate) fn read_batch(&self, position: u64, size: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; size];
        self.store.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }
}

/// Whether the batch of `header` holds `offset`. An index entry names the
/// batch at its position by an offset in it: ours by the base offset,
/// Kafka's by the last.
fn holds(header: &BatchHeader, offset: i64) -> bool {
    (header.base_offset..=header.last_offset()).contains(&offset)
}

/// Whether the header read at an offset index entry's position confirms
/// the entry: it parses and its batch holds `entry_offset`. A failed read
/// says nothing about the index (it is returned to the caller).
fn trusted(next: &Result<Option<(u64, BatchHeader)>>, entry_offset: i64) -> bool {
    match next {
        Ok(found) => matches!(found, Some((_, h)) if holds(h, entry_offset)),
        Err(Error::Io { .. }) => true,
        Err(_) => false,
    }
}

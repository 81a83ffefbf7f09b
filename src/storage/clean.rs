//! Log compaction (Kafka's log cleaner) for one partition.
//!
//! A pass has three steps, so that the log lock is held only to plan and
//! to swap files, never while bytes are read or written:
//!
//! 1. [`Log::clean_job`] (under the lock) picks the cleanable range: sealed
//!    segments only, below the last stable offset (a segment holding it is
//!    left out whole) and the `min.compaction.lag.ms` boundary, when the
//!    dirty share of the log is at least `min.cleanable.dirty.ratio` or the
//!    oldest dirty record is older than `max.compaction.lag.ms`.
//! 2. [`CleanJob::run`] (no lock; sealed segments never change) maps each
//!    key of the dirty range to its latest offset, in an [`OffsetMap`] of
//!    fixed size (a pass maps whole batches while they fit, and a first
//!    batch larger than the whole map as far as it fits), then rewrites
//!    every segment from the log start to the end of what was mapped, in
//!    groups that fit one segment, into `{base}.log.cleaned` files, fsynced.
//!    A batch past the end of the map is copied as it is (as Kafka does), so
//!    a tombstone gets its horizon only from a pass that mapped it. A record
//!    is kept when its key has no later offset in the map. A tombstone (null
//!    value) or a transaction marker is kept until the delete horizon
//!    stamped into its batch by the first pass that kept it (KIP-534: `now +
//!    delete.retention.ms`, attribute bit 6, base timestamp). Records of
//!    aborted transactions and records without a key are dropped. A marker
//!    goes only once no record of its transaction is left. Kept batches keep
//!    their base offset, last offset and producer fields, so offsets never
//!    change; a batch left with no record goes. A cleaned segment may end
//!    before the next one begins, or hold nothing at all: reads move on to
//!    the next segment, as Kafka's do.
//! 3. [`Log::install_cleaned`] (under the lock) checks that the group's
//!    segments are still there, unchanged, and swaps each group in:
//!    `{base}.log.cleaned` → `{base}.{next}.swap` (the commit point,
//!    directory fsynced; the name records where the group ends), the old
//!    segments' files removed, `.swap` → `{base}.log`. At open,
//!    [`finish_interrupted`] removes `.cleaned` files and completes any
//!    `.swap`: a crash at any point leaves the old segments or the new one,
//!    never a mix.
//!
//! [`Log::clean_job`]: crate::storage::Log::clean_job
//! [`Log::install_cleaned`]: crate::storage::Log::install_cleaned

use std::collections::HashMap;
use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::Arc;

use super::disk::{Disk, DiskFile};
use super::record::{BatchHeader, RecordBatch};
use super::segment::{IndexWriter, SegmentConfig, file_name};
use super::{Error, Result};

mod cursor;
mod offset_map;
mod plan;
mod records;
mod swap;
#[cfg(test)]
mod tests;

use cursor::BatchCursor;
pub use offset_map::OffsetMap;
pub(crate) use swap::finish_interrupted;

/// Suffix of the files a pass writes before its commit point.
const CLEANED: &str = "cleaned";

/// Bytes of cleaned batches buffered before a write.
const WRITE_CHUNK: usize = 4 << 20;

/// A sealed segment as the cleaner sees it.
#[derive(Debug, Clone)]
struct SealedRef {
    base: i64,
    next: i64,
    size: u64,
    file: DiskFile,
}

/// One planned cleaning of a partition: read-only work that needs no lock.
#[derive(Debug)]
pub struct CleanJob {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    segments: Vec<SealedRef>,
    first_dirty: i64,
    first_uncleanable: i64,
    /// Aborted transactions by producer: (first offset, marker offset).
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    delete_retention_ms: i64,
    segment_bytes: u64,
    segment_config: SegmentConfig,
}

/// Segments rewritten by [`CleanJob::run`], waiting to be installed.
#[derive(Debug)]
pub struct Cleaned {
    groups: Vec<CleanedGroup>,
    /// The next pass's first dirty offset.
    pub next_dirty: i64,
    /// Bytes of log read (mapping and rewriting).
    pub bytes_read: u64,
    /// Bytes of cleaned segments written.
    pub bytes_written: u64,
    /// Bytes of the segments rewritten, before cleaning.
    pub bytes_before: u64,
}

#[derive(Debug)]
struct CleanedGroup {
    /// (base offset, size) of each replaced segment.
    replaced: Vec<(i64, u64)>,
    next: i64,
    path: PathBuf,
}

impl CleanedGroup {
    fn base(&self) -> i64 {
        self.replaced.first().map_or(0, |(b, _)| *b)
    }
}

/// Refuses (INVALID_RECORD) the first batch holding records without a key,
/// naming them by their indexes in it (as Kafka does): a compacted topic
/// keeps records by key.
pub(crate) fn check_keys(batches: &[u8]) -> Result<()> {
    let mut rest = batches;
    while !rest.is_empty() {
        let batch = RecordBatch::parse(rest)?;
        let raw = records::raw_records(&batch)?;
        let keyless: Vec<i32> = records::parse(&batch, &raw)?
            .iter()
            .zip(0..)
            .filter(|(r, _)| r.key.is_none())
            .map(|(_, i)| i)
            .collect();
        if !keyless.is_empty() {
            return Err(Error::InvalidRecords {
                reason: "a compacted topic cannot accept a record without a key".to_string(),
                records: keyless,
            });
        }
        rest = &rest[batch.size()..];
    }
    Ok(())
}

impl CleanJob {
    /// True when the batch of `producer_id` at `offset` belongs to an aborted transaction.
    fn is_aborted(&self, producer_id: i64, offset: i64) -> bool {
        self.aborted.get(&producer_id).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(first, marker)| (*first..*marker).contains(&offset))
        })
    }

    /// Maps the dirty range, then writes the cleaned groups (see the module docs).
    pub fn run(&self, map: &mut OffsetMap, now_ms: i64) -> Result<Cleaned> {
        map.clear();
        let mut bytes_read = 0;
        let map_end = self.build_map(map, &mut bytes_read)?;
        let mut cleaned = Cleaned {
            groups: Vec::new(),
            next_dirty: map_end,
            bytes_read: 0,
            bytes_written: 0,
            bytes_before: 0,
        };
        if map_end <= self.first_dirty {
            tracing::warn!(dir = %self.dir.display(), "a cleaner pass mapped nothing; not cleaning");
            return Ok(cleaned);
        }
        let mut txn_has_data: HashMap<i64, bool> = HashMap::new();
        for group in self.groups(map_end) {
            let mapped = (&*map, map_end);
            let written =
                self.write_group(group, mapped, now_ms, &mut txn_has_data, &mut bytes_read)?;
            if let Some(written) = written {
                cleaned.bytes_written += written.1;
                cleaned.bytes_before += group.iter().map(|s| s.size).sum::<u64>();
                cleaned.groups.push(written.0);
            }
        }
        cleaned.bytes_read = bytes_read;
        Ok(cleaned)
    }

    /// Maps every keyed record of the dirty range, batch by batch, while the
    /// map has room for a whole batch. A first batch with more keys than the
    /// whole map holds is mapped as far as it fits, so that every pass gets
    /// on. Returns the first offset not mapped.
    fn build_map(&self, map: &mut OffsetMap, bytes_read: &mut u64) -> Result<i64> {
        for segment in self.segments.iter().filter(|s| s.next > self.first_dirty) {
            let mut cursor = BatchCursor::new(segment);
            while let Some(bytes) = cursor.next_batch(bytes_read)? {
                let batch = RecordBatch::parse(bytes)?;
                if batch.last_offset() < self.first_dirty
                    || batch.is_control()
                    || (batch.is_transactional()
                        && self.is_aborted(batch.producer_id(), batch.base_offset()))
                {
                    continue;
                }
                let room = map.room();
                if usize::try_from(batch.record_count()).unwrap_or(usize::MAX) > room
                    && !map.is_empty()
                {
                    return Ok(batch.base_offset());
                }
                let raw = records::raw_records(&batch)?;
                for record in records::parse(&batch, &raw)? {
                    if let (Some(key), true) = (record.key, record.offset >= self.first_dirty)
                        && !map.put(key, record.offset)
                    {
                        return Ok(record.offset);
                    }
                }
            }
        }
        Ok(self.first_uncleanable)
    }

    /// The segments below `end`, from the first, in groups that fit one segment.
    fn groups(&self, end: i64) -> Vec<&[SealedRef]> {
        let mut groups = Vec::new();
        let candidates: Vec<&SealedRef> = self.segments.iter().filter(|s| s.base < end).collect();
        let mut start = 0;
        while start < candidates.len() {
            let base = candidates[start].base;
            let mut size = candidates[start].size;
            let mut stop = start + 1;
            while let Some(next) = candidates.get(stop) {
                if size + next.size > self.segment_bytes || next.next - base > i64::from(i32::MAX) {
                    break;
                }
                size += next.size;
                stop += 1;
            }
            let first = self
                .segments
                .iter()
                .position(|s| s.base == base)
                .unwrap_or(0);
            groups.push(&self.segments[first..first + (stop - start)]);
            start = stop;
        }
        groups
    }

    /// Writes one group's kept batches to `{base}.log.cleaned` and fsyncs it.
    /// `mapped`: the map, and the first offset it did not map.
    fn write_group(
        &self,
        group: &[SealedRef],
        mapped: (&OffsetMap, i64),
        now_ms: i64,
        txn_has_data: &mut HashMap<i64, bool>,
        bytes_read: &mut u64,
    ) -> Result<Option<(CleanedGroup, u64)>> {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Ok(None);
        };
        let path = self
            .dir
            .join(file_name(first.base, &format!("log.{CLEANED}")));
        let _ = self.disk.remove(&path);
        let file = DiskFile::open(&path, self.disk.clone()).map_err(|e| Error::io(&path, e))?;
        let mut index = IndexWriter::create(&self.dir, first.base, self.segment_config, CLEANED)?;
        let mut out = Vec::with_capacity(WRITE_CHUNK);
        let mut written = 0u64;
        for segment in group {
            let mut cursor = BatchCursor::new(segment);
            while let Some(bytes) = cursor.next_batch(bytes_read)? {
                let batch = RecordBatch::parse(bytes)?;
                let at = out.len();
                self.clean_batch(&batch, mapped, now_ms, txn_has_data, &mut out)?;
                if out.len() > at {
                    index.add(written + at as u64, &BatchHeader::parse(&out[at..])?);
                }
                if out.len() >= WRITE_CHUNK {
                    file.write_at(&[IoSlice::new(&out)], written)
                        .map_err(|e| Error::io(&path, e))?;
                    written += out.len() as u64;
                    out.clear();
                }
            }
        }
        file.write_at(&[IoSlice::new(&out)], written)
            .map_err(|e| Error::io(&path, e))?;
        written += out.len() as u64;
        file.sync().map_err(|e| Error::io(&path, e))?;
        index.finish()?;
        let group = CleanedGroup {
            replaced: group.iter().map(|s| (s.base, s.size)).collect(),
            next: last.next,
            path,
        };
        Ok(Some((group, written)))
    }

    /// Appends to `out` what is kept of `batch` (nothing when no record
    /// stays). A batch past what the map covers is kept as it is, as Kafka
    /// does: a tombstone there must not expire, nor get its horizon, while
    /// the records it deletes may not have been superseded yet. The same
    /// holds for the records of a batch mapped in part past the map.
    fn clean_batch(
        &self,
        batch: &RecordBatch<'_>,
        (map, map_end): (&OffsetMap, i64),
        now_ms: i64,
        txn_has_data: &mut HashMap<i64, bool>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if batch.base_offset() >= map_end {
            if batch.is_transactional() && !batch.is_control() {
                txn_has_data.insert(batch.producer_id(), true);
            }
            out.extend_from_slice(batch.as_bytes());
            return Ok(());
        }
        let horizon = records::delete_horizon(batch);
        let expired = horizon.is_some_and(|h| now_ms >= h);
        let new_horizon = now_ms.saturating_add(self.delete_retention_ms);
        if batch.is_control() {
            let has_data = txn_has_data.remove(&batch.producer_id()).unwrap_or(false);
            if has_data || horizon.is_some() && !expired {
                out.extend_from_slice(batch.as_bytes());
            } else if horizon.is_none() {
                let raw = records::raw_records(batch)?;
                let all = records::parse(batch, &raw)?;
                records::rebuild(batch, &all, Some(new_horizon), out)?;
            }
            return Ok(());
        }
        if batch.is_transactional() && self.is_aborted(batch.producer_id(), batch.base_offset()) {
            return Ok(());
        }
        let raw = records::raw_records(batch)?;
        let all = records::parse(batch, &raw)?;
        let kept: Vec<_> = all
            .iter()
            .filter(|r| {
                let Some(key) = r.key else {
                    return false;
                };
                let latest = map.get(key).is_none_or(|o| r.offset >= o);
                // Past the map (a batch mapped in part), even an expired
                // tombstone stays: it is not known to have superseded anything.
                latest && !(r.is_tombstone() && expired && r.offset < map_end)
            })
            .copied()
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        if batch.is_transactional() {
            txn_has_data.insert(batch.producer_id(), true);
        }
        // A tombstone past the map (in a batch mapped in part) is not yet
        // known to have superseded its key's values: no horizon for its batch.
        let stamp = horizon.is_none()
            && kept.iter().any(|r| r.is_tombstone())
            && kept.iter().all(|r| !r.is_tombstone() || r.offset < map_end);
        if kept.len() == all.len() && !stamp {
            out.extend_from_slice(batch.as_bytes());
        } else {
            let horizon = if stamp { Some(new_horizon) } else { horizon };
            records::rebuild(batch, &kept, horizon, out)?;
        }
        Ok(())
    }
}

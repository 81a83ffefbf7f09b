//! Appending: batches checked, given their offsets, and written to the
//! active segment whole, or not at all.

use std::io::IoSlice;

use super::{LEADER_EPOCH, Log};
use crate::storage::disk::DiskFile;
use crate::storage::record::{Admit, BatchHeader, HEADER_BYTES, RecordBatch, parse_batches};
use crate::storage::segment::{Segment, SegmentConfig};
use crate::storage::{AppendInfo, Error, Result, TimestampType};

/// Batches checked and given their offsets, not yet written.
struct Stamped {
    headers: Vec<BatchHeader>,
    base_offset: i64,
    /// The offset after the last batch.
    next: i64,
    /// The broker's time, under LogAppendTime.
    append_time: Option<i64>,
}

impl Log {
    /// Validates every batch in `batches` (RecordBatch v2, back to back, as
    /// the producer sent them), then assigns offsets and appends all of them,
    /// or none: a rejected or failed append leaves the log unchanged. What is
    /// stored differs from `batches` only in each batch's header: see
    /// [`RecordBatch::stored_header`].
    /// Transactional and control batches are refused (INVALID_RECORD); see
    /// [`Log::append_transactional`] and [`Log::append_marker`].
    pub fn append(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_admitting(batches, now_ms, Admit::Plain)
    }

    pub(super) fn append_admitting(
        &mut self,
        batches: &[u8],
        now_ms: i64,
        admit: Admit,
    ) -> Result<AppendInfo> {
        let Stamped {
            headers,
            base_offset,
            next,
            append_time,
        } = self.stamp(batches, now_ms, admit)?;
        let last_offset = next - 1;
        if let Some((base, last)) = self.producers.check(&headers)? {
            return Ok(self.append_info(base, last, -1, true));
        }
        // Each batch is written as its stored header, then its records as
        // the producer sent them: the request's bytes are never copied here.
        let sliced = slice_batches(batches, &headers);
        let heads = sliced
            .iter()
            .zip(&headers)
            .map(|(batch, h)| {
                RecordBatch::stored_header(batch, h.base_offset, LEADER_EPOCH, append_time)
            })
            .collect::<Result<Vec<_>>>()?;
        let parts: Vec<IoSlice<'_>> = heads
            .iter()
            .zip(&sliced)
            .flat_map(|(head, batch)| {
                [
                    IoSlice::new(head),
                    IoSlice::new(batch.get(HEADER_BYTES..).unwrap_or_default()),
                ]
            })
            .collect();
        if self
            .active()?
            .should_roll(&self.config, now_ms, batches.len() as u64, last_offset)
        {
            self.roll(now_ms)?;
        }
        let active = self.active_mut()?;
        active.append(&parts, &headers)?;
        let file = active.log_file()?;
        for (header, batch) in headers.iter().zip(sliced) {
            if let Some(first) = self.producers.update(header) {
                self.note_marker(header, batch, first);
            }
        }
        self.note_write(&file, next);
        Ok(self.append_info(base_offset, last_offset, append_time.unwrap_or(-1), false))
    }

    /// Checks `batches` against the log's settings and gives each its
    /// offsets (and, under LogAppendTime, its timestamp), changing nothing.
    fn stamp(&self, batches: &[u8], now_ms: i64, admit: Admit) -> Result<Stamped> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let mut headers = parse_batches(batches, self.config.max_message_bytes, admit)?;
        if self.config.cleanup_policy.compacts() && admit != Admit::Markers {
            super::super::clean::check_keys(batches)?;
        }
        if batches.len() > i32::MAX as usize {
            return Err(Error::RecordTooLarge {
                size: batches.len(),
                max: self.config.max_message_bytes,
            });
        }
        let log_append = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        if !log_append {
            for h in &headers {
                self.config
                    .check_timestamps(h.base_timestamp, h.max_timestamp, now_ms)?;
            }
        }
        let base_offset = self.end_offset();
        let mut next = base_offset;
        for header in &mut headers {
            header.base_offset = next;
            next = header.last_offset() + 1;
            if log_append {
                header.max_timestamp = now_ms;
            }
        }
        Ok(Stamped {
            headers,
            base_offset,
            next,
            append_time: log_append.then_some(now_ms),
        })
    }

    fn append_info(
        &self,
        base_offset: i64,
        last_offset: i64,
        log_append_time: i64,
        duplicate: bool,
    ) -> AppendInfo {
        AppendInfo {
            base_offset,
            last_offset,
            log_append_time,
            log_start_offset: self.start_offset,
            duplicate,
        }
    }

    fn note_write(&mut self, file: &DiskFile, end_offset: i64) {
        match self.unsynced.iter_mut().find(|(f, _)| f.same(file)) {
            Some(entry) => entry.1 = end_offset,
            None => self.unsynced.push((file.clone(), end_offset)),
        }
    }

    /// Seals the active segment and starts a new one at the end offset.
    pub(super) fn roll(&mut self, now_ms: i64) -> Result<()> {
        let (base, end) = (self.active_base_offset(), self.end_offset());
        let sealed = self.active_mut()?;
        // Sealed already when the last roll could not create its segment.
        let resealed = sealed.is_sealed();
        sealed.seal()?;
        let (offset_index, time_index) = sealed.index_paths();
        if !resealed {
            self.seals += 1;
            self.unsynced_indexes.extend([
                (offset_index, base, self.seals),
                (time_index, base, self.seals),
            ]);
        }
        let segment = Segment::create(
            &self.dir,
            end,
            SegmentConfig::from(&*self.config),
            now_ms,
            self.files(),
        )?;
        // DURABILITY: the new segment's files are in the directory, which
        // the next sync fsyncs (see `Log::sync_target`): not on this path.
        self.created += 1;
        self.segments.insert(end, Box::new(segment));
        if let Err(e) = self.write_snapshot(end, false) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write producer snapshot");
        }
        Ok(())
    }
}

/// `batches` cut into the batches `headers` describe, in order.
fn slice_batches<'a>(batches: &'a [u8], headers: &[BatchHeader]) -> Vec<&'a [u8]> {
    let mut rest = batches;
    headers
        .iter()
        .map(|h| {
            let (batch, tail) = rest.split_at_checked(h.size).unwrap_or((rest, &[]));
            rest = tail;
            batch
        })
        .collect()
}

//! The first step of a pass, under the log lock: which sealed segments to
//! clean, and whether the log is dirty enough to clean them now.

use std::collections::HashMap;

use super::{CleanJob, SealedRef};
use crate::storage::log::Log;
use crate::storage::segment::SegmentConfig;

/// A sealed segment before its file is opened: (base offset, next offset, size).
type Planned = (i64, i64, u64);

impl Log {
    /// The cleaning this log needs now (see the module docs), given the
    /// first offset not yet cleaned; `None` when it is not compacted or not
    /// dirty enough.
    pub fn clean_job(&self, first_dirty: i64, now_ms: i64) -> Option<CleanJob> {
        let config = self.config();
        // A failed log is left as it is until a reopen recovers it.
        if !config.cleanup_policy.compacts() || self.is_poisoned() {
            return None;
        }
        let (segments, first_uncleanable) = self.cleanable_segments(now_ms);
        // Past the log's end (a tail a crash took after the checkpoint was
        // written), it starts over from the log start, as in Kafka: records
        // written there again must be mapped.
        let first_dirty = if first_dirty > self.end_offset() {
            0
        } else {
            first_dirty
        };
        let first_dirty = first_dirty.max(segments.first()?.0);
        if first_dirty >= first_uncleanable || !self.dirty_enough(&segments, first_dirty, now_ms) {
            return None;
        }
        let segments = self.open_to_clean(segments)?;
        let mut aborted: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for t in self.all_aborted() {
            aborted
                .entry(t.producer_id)
                .or_default()
                .push((t.first_offset, t.last_offset));
        }
        Some(CleanJob {
            dir: self.dir().to_path_buf(),
            disk: self.disk().clone(),
            segments,
            first_dirty,
            first_uncleanable,
            aborted,
            delete_retention_ms: config.delete_retention_ms,
            segment_bytes: config.segment_bytes,
            segment_config: SegmentConfig::from(config),
        })
    }

    /// The sealed segments a pass may clean, and the first offset it may
    /// not: the active segment's base, the base of the segment holding the
    /// last stable offset, or the base of the first segment holding a
    /// record younger than `min.compaction.lag.ms`, whichever comes first.
    fn cleanable_segments(&self, now_ms: i64) -> (Vec<Planned>, i64) {
        let config = self.config();
        let mut first_uncleanable = self.active_base_offset().min(self.last_stable_offset());
        let lag_cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
        let mut segments = Vec::new();
        for (base, next, size, largest) in self.sealed_segments() {
            if next > first_uncleanable {
                // The last stable offset inside this segment: the pass
                // stops at its base, so the next maps it from there.
                first_uncleanable = first_uncleanable.min(base);
                break;
            }
            // A segment with no record (all cleaned away) holds nothing too young.
            if config.min_compaction_lag_ms > 0 && largest.is_some_and(|t| t > lag_cutoff) {
                first_uncleanable = base;
                break;
            }
            segments.push((base, next, size));
        }
        (segments, first_uncleanable)
    }

    /// True when the segments from `first_dirty` on hold bytes, and either
    /// their share reaches `min.cleanable.dirty.ratio` or the first of
    /// their records is older than `max.compaction.lag.ms`.
    fn dirty_enough(&self, segments: &[Planned], first_dirty: i64, now_ms: i64) -> bool {
        let config = self.config();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        for &(_, next, size) in segments {
            if next <= first_dirty {
                clean_bytes += size;
            } else {
                dirty_bytes += size;
            }
        }
        let total = (clean_bytes + dirty_bytes).max(1) as f64;
        let ratio_reached = dirty_bytes as f64 / total >= config.min_cleanable_dirty_ratio;
        let overdue = config.max_compaction_lag_ms < i64::MAX
            && self
                .first_timestamp_at(first_dirty)
                .is_some_and(|t| t < now_ms.saturating_sub(config.max_compaction_lag_ms));
        dirty_bytes > 0 && (ratio_reached || overdue)
    }

    /// Opens the files of `segments`. Files are opened only for a job that
    /// runs; out of descriptors, the log is cleaned on a later pass.
    fn open_to_clean(&self, segments: Vec<Planned>) -> Option<Vec<SealedRef>> {
        segments
            .into_iter()
            .map(|(base, next, size)| {
                let file = match self.segment_at(base)?.log_file() {
                    Ok(file) => file,
                    Err(e) => {
                        tracing::warn!(dir = %self.dir().display(), base, error = %e, "cannot open a segment to clean; trying again on a later pass");
                        return None;
                    }
                };
                Some(SealedRef {
                    base,
                    next,
                    size,
                    file,
                })
            })
            .collect()
    }
}

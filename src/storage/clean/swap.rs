//! Installing a cleaning: the swap sequence under the log lock, and its
//! completion (or discarding) when a broker stopped in the middle of it.

use std::path::Path;

use super::{CLEANED, Cleaned, CleanedGroup};
use crate::storage::disk::Disk;
use crate::storage::log::{Log, sync_dir};
use crate::storage::segment::{Segment, SegmentConfig, file_name, parse_file_name};
use crate::storage::{Error, Result};

const SWAP: &str = ".swap";

/// `{base:020}.{next:020}.swap`: a cleaned segment replacing `[base, next)`.
pub(super) fn swap_name(base: i64, next: i64) -> String {
    format!("{base:020}.{next:020}{SWAP}")
}

/// The `next` of a swap file's extension (`{next:020}.swap`).
fn swap_end(ext: &str) -> Option<i64> {
    ext.strip_suffix(SWAP)?.parse().ok()
}

impl Log {
    /// Swaps in what [`CleanJob::run`] wrote, group by group, skipping (and
    /// removing) any group whose segments changed meanwhile (retention or
    /// DeleteRecords removed them). Returns the groups installed. A log that
    /// failed while the job ran takes none (the next open removes the
    /// cleaned files): they were read from a page cache it no longer trusts.
    ///
    /// [`CleanJob::run`]: super::CleanJob::run
    pub fn install_cleaned(&mut self, cleaned: &Cleaned, now_ms: i64) -> Result<usize> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let mut installed = 0;
        for group in &cleaned.groups {
            if !self.still_has(group) {
                for ext in ["log", "index", "timeindex"] {
                    let path = self
                        .dir()
                        .join(file_name(group.base(), &format!("{ext}.{CLEANED}")));
                    let _ = self.disk().remove(&path);
                }
                continue;
            }
            self.swap_in(group, now_ms)?;
            installed += 1;
        }
        Ok(installed)
    }

    fn still_has(&self, group: &CleanedGroup) -> bool {
        let active = self.active_base_offset();
        group.next <= active
            && group
                .replaced
                .iter()
                .all(|(base, size)| self.segment_at(*base).is_some_and(|s| s.size() == *size))
            && (group.next == active || self.segment_at(group.next).is_some())
    }

    /// `.cleaned` → `.swap` (commit point), old files removed, `.swap` → `.log`.
    fn swap_in(&mut self, group: &CleanedGroup, now_ms: i64) -> Result<()> {
        let dir = self.dir().to_path_buf();
        let disk = self.disk().clone();
        let base = group.base();
        let swap = dir.join(swap_name(base, group.next));
        disk.rename(&group.path, &swap)
            .map_err(|e| Error::io(&swap, e))?;
        // DURABILITY: from here on, a crash completes this swap at open;
        // and so will the next open if this fsync fails, as it may have
        // made the rename durable: the log must not change meanwhile.
        let finished = sync_dir(&*disk, &dir).and_then(|()| self.finish_swap(group, &swap, now_ms));
        if finished.is_err() {
            // The swap is (or may be) committed on disk while the log in
            // memory is the old one, or half replaced: refuse everything
            // until a reopen completes the swap.
            self.poison();
        }
        finished
    }

    /// The swap after its commit point: old files out, `.swap` → `.log`,
    /// the cleaned indexes in, the new segment into the log.
    fn finish_swap(&mut self, group: &CleanedGroup, swap: &Path, now_ms: i64) -> Result<()> {
        let dir = self.dir().to_path_buf();
        let disk = self.disk().clone();
        let base = group.base();
        for (old, _) in &group.replaced {
            if let Some(segment) = self.take_segment(*old) {
                if *old == base {
                    segment.delete_except_log()?;
                } else {
                    segment.delete()?;
                }
            }
        }
        sync_dir(&*disk, &dir)?;
        let log = dir.join(file_name(base, "log"));
        disk.rename(swap, &log).map_err(|e| Error::io(&log, e))?;
        sync_dir(&*disk, &dir)?;
        // The indexes written while cleaning; a crash before this leaves
        // none, and they are rebuilt from the `.log` on first use.
        for ext in ["index", "timeindex"] {
            let from = dir.join(file_name(base, &format!("{ext}.{CLEANED}")));
            let to = dir.join(file_name(base, ext));
            if let Err(e) = disk.rename(&from, &to) {
                tracing::warn!(path = %from.display(), error = %e, "cannot install a cleaned index; it will be rebuilt");
            }
        }
        let mut segment = Segment::open(
            &dir,
            base,
            SegmentConfig::from(self.config()),
            now_ms,
            self.files(),
        )?;
        segment.set_next_offset(group.next);
        self.put_segment(segment, base, group.next);
        Ok(())
    }
}

/// At open, before the segments are listed: removes `.cleaned` files (a
/// pass that had not committed) and completes every `.swap` (a pass that
/// had): the segments it replaced, those whose base falls inside
/// `(base, next)`, are removed, with its own base's indexes, and it
/// becomes the `.log`.
pub(crate) fn finish_interrupted(disk: &dyn Disk, dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    let mut changed = false;
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
    {
        let name = entry.file_name();
        match parse_file_name(&name.to_string_lossy()) {
            Some((_, ext)) if ext.ends_with(CLEANED) => {
                disk.remove(&entry.path())
                    .map_err(|e| Error::io(entry.path(), e))?;
                changed = true;
            }
            Some((base, ext)) => {
                if let Some(end) = swap_end(ext) {
                    swaps.push((base, end));
                }
            }
            None => {}
        }
    }
    swaps.sort_unstable();
    for (base, end) in swaps {
        let swap = dir.join(swap_name(base, end));
        tracing::warn!(path = %swap.display(), end, "completing an interrupted cleaning");
        for entry in std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .flatten()
        {
            let name = entry.file_name();
            let Some((found, ext)) =
                parse_file_name(&name.to_string_lossy()).map(|(b, e)| (b, e.to_string()))
            else {
                continue;
            };
            let segment_file = matches!(ext.as_str(), "log" | "index" | "timeindex" | "txnindex");
            let replaced =
                segment_file && ((found == base && ext != "log") || (found > base && found < end));
            if replaced {
                disk.remove(&entry.path())
                    .map_err(|e| Error::io(entry.path(), e))?;
            }
        }
        sync_dir(disk, dir)?;
        let log = dir.join(file_name(base, "log"));
        disk.rename(&swap, &log).map_err(|e| Error::io(&log, e))?;
        changed = true;
    }
    if changed {
        // DURABILITY: the completed swaps must hold before the segments are opened.
        sync_dir(disk, dir)?;
    }
    Ok(())
}

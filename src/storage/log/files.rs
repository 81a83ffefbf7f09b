//! The partition directory's file names: listing segments and snapshots.

use std::path::Path;

use super::{CLEAN_SHUTDOWN, START_OFFSET_FILE};
use crate::storage::disk::{Disk, read_file};
use crate::storage::producer::{LEGACY_SNAPSHOT_EXT, SNAPSHOT_EXT};
use crate::storage::segment::{file_name, parse_file_name};
use crate::storage::{Error, Result};

/// What one listing of a partition directory found.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Base offsets of the `.log` files, ascending.
    pub(super) segments: Vec<i64>,
    /// Base offsets of the `.txnindex` files (most segments have none).
    pub(super) txn_indexes: Vec<i64>,
    /// Index files (`.index`, `.timeindex`, `.txnindex`) without a `.log` of
    /// their base: left by a removal that failed or a crash in the middle of
    /// one. Not in `txn_indexes`.
    pub(super) orphans: Vec<std::path::PathBuf>,
}

/// Lists the segment files in `dir`; warns about files it does not know.
pub(super) fn list_segments(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match parse_file_name(&name) {
            Some((base, "log")) => listing.segments.push(base),
            Some((base, "txnindex")) => {
                listing.txn_indexes.push(base);
                indexes.push((base, entry.path()));
            }
            Some((base, "index" | "timeindex")) => indexes.push((base, entry.path())),
            Some((_, SNAPSHOT_EXT | LEGACY_SNAPSHOT_EXT)) => {}
            // Left by a crash while writing them.
            Some((
                _,
                "snapshot.tmp"
                | "sluice-producers.tmp"
                | "index.rebuilt"
                | "timeindex.rebuilt"
                | "txnindex.rewritten",
            )) => {
                let _ = std::fs::remove_file(entry.path());
            }
            _ if name == CLEAN_SHUTDOWN || name == START_OFFSET_FILE => {}
            // Left by a crash, or a failed DeleteRecords, before its rename.
            _ if name.strip_suffix(".tmp") == Some(START_OFFSET_FILE) => {
                let _ = std::fs::remove_file(entry.path());
            }
            _ => {
                tracing::warn!(path = %entry.path().display(), "ignoring unknown file in partition directory")
            }
        }
    }
    listing.segments.sort_unstable();
    let has_log = |base: &i64| listing.segments.binary_search(base).is_ok();
    listing.txn_indexes.retain(has_log);
    listing.orphans = indexes
        .into_iter()
        .filter(|(base, _)| !has_log(base))
        .map(|(_, path)| path)
        .collect();
    Ok(listing)
}

/// The log start offset DeleteRecords persisted, if it did. A file that
/// cannot be read fails the open: records it moved past would come back.
pub(super) fn read_start_offset(disk: &dyn Disk, dir: &Path) -> Result<Option<i64>> {
    let path = dir.join(START_OFFSET_FILE);
    let Some(bytes) = read_file(disk, &path).map_err(|e| Error::io(&path, e))? else {
        return Ok(None);
    };
    let parsed = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok());
    if parsed.is_none() {
        tracing::warn!(dir = %dir.display(), "ignoring unreadable {START_OFFSET_FILE}");
    }
    Ok(parsed)
}

/// Offsets of the producer snapshots with extension `ext` in `dir`, ascending.
pub(super) fn list_snapshots(dir: &Path, ext: &str) -> Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some((offset, found)) = parse_file_name(&entry.file_name().to_string_lossy())
            && found == ext
        {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Removes a producer snapshot; false (with a warning) if it is still there.
pub(super) fn remove_snapshot(dir: &Path, offset: i64, ext: &str) -> bool {
    let path = dir.join(file_name(offset, ext));
    match std::fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove producer snapshot");
            false
        }
    }
}

//! The clean-shutdown marker: written last by a clean close, it says the
//! log needs no recovery, and holds the log's offsets and size as it was
//! closed, so a view of the log needs no open until it is used again.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::storage::{Error, Result};

pub(super) const CLEAN_SHUTDOWN: &str = ".clean-shutdown";

/// True when the log in `dir` was closed cleanly (and not opened since):
/// opening it then reads no segment through.
pub fn closed_cleanly(dir: &Path) -> bool {
    dir.join(CLEAN_SHUTDOWN).exists()
}

/// What a clean close wrote into its marker: the offsets and size of the
/// log as it was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedLog {
    /// The log start offset.
    pub start_offset: i64,
    /// The log end offset.
    pub end_offset: i64,
    /// The last stable offset.
    pub last_stable_offset: i64,
    /// Bytes of the `.log` files.
    pub size_bytes: u64,
}

/// Writes the marker of the log in `dir` holding `closed`, and fsyncs it
/// (the caller fsyncs the directory).
pub(super) fn write(dir: &Path, closed: &ClosedLog) -> Result<()> {
    let marker = dir.join(CLEAN_SHUTDOWN);
    let summary = format!(
        "{} {} {} {}\n",
        closed.start_offset, closed.end_offset, closed.last_stable_offset, closed.size_bytes
    );
    let mut file = File::create(&marker).map_err(|e| Error::io(&marker, e))?;
    file.write_all(summary.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&marker, e))
}

/// The summary in the clean-shutdown marker of the log in `dir`, while it is
/// not opened again. `None` without a marker, or with one that holds no
/// summary (as earlier versions wrote it).
pub fn closed_log(dir: &Path) -> Option<ClosedLog> {
    let text = std::fs::read_to_string(dir.join(CLEAN_SHUTDOWN)).ok()?;
    // A marker cut short (it is written whole before its fsync) holds no summary.
    let mut fields = text.strip_suffix('\n')?.split_ascii_whitespace();
    let mut next = || fields.next()?.parse::<i64>().ok();
    let summary = ClosedLog {
        start_offset: next()?,
        end_offset: next()?,
        last_stable_offset: next()?,
        size_bytes: u64::try_from(next()?).ok()?,
    };
    Some(summary)
}

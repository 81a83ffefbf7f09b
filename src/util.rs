//! Small helpers shared by the broker modules.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, io_err};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    // DURABILITY: the data reaches the disk before the rename makes it visible.
    file.sync_all().map_err(io_err(&tmp))?;
    // Opened before the rename: out of descriptors, the write fails while
    // nothing has changed yet, not once the new file is in place.
    let dir = match path.parent() {
        Some(dir) => Some((dir, std::fs::File::open(dir).map_err(io_err(dir))?)),
        None => None,
    };
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some((dir, handle)) = dir {
        // DURABILITY: fsync the directory so the rename survives a crash.
        handle.sync_all().map_err(io_err(dir))?;
    }
    Ok(())
}

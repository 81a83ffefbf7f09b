//! Small helpers shared by the broker modules.

use std::io::IoSlice;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, io_err};
use crate::storage::{Disk, RealDisk};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a write whose new contents are in place still owes: `Err` when
/// they may not survive a crash (their directory's fsync failed). The
/// caller keeps the change, since the file a restart reads has it, but
/// must not acknowledge it as durable.
pub(crate) type Durable = Result<()>;

/// Replaces `path` with `contents` so that a crash leaves either the old or
/// the new file. `Err`: nothing changed; `Ok(Err)`: see [`Durable`].
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<Durable> {
    write_atomically_on(&RealDisk, path, contents)
}

/// [`write_atomically`] with every file operation on `disk`.
pub(crate) fn write_atomically_on(
    disk: &dyn Disk,
    path: &Path,
    contents: &[u8],
) -> Result<Durable> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let file = disk.open(&tmp)?;
        disk.set_len(&tmp, &file, 0)?;
        disk.write_at(&tmp, &file, &[IoSlice::new(contents)], 0)?;
        // DURABILITY: the data reaches the disk before the rename makes it visible.
        disk.sync(&tmp, &file)
    };
    write().map_err(io_err(&tmp))?;
    // Opened before the rename: out of descriptors, the write fails while
    // nothing has changed yet, not once the new file is in place.
    let dir = match path.parent() {
        Some(dir) => Some((dir, disk.open_to_sync(dir).map_err(io_err(dir))?)),
        None => None,
    };
    disk.rename(&tmp, path).map_err(io_err(path))?;
    Ok(match dir {
        // DURABILITY: fsync the directory so the rename survives a crash.
        Some((dir, handle)) => disk.sync_dir(dir, &handle).map_err(io_err(dir)),
        None => Ok(()),
    })
}

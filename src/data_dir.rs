//! One broker per data directory: an exclusive lock on `<data_dir>/.lock`
//! (Kafka's name), taken before anything in the directory is read or
//! written and held for the broker's life. A second broker — another process
//! or another in-process broker — fails at once, touching nothing.
//!
//! The lock is a `flock` on an open file: the kernel releases it when the
//! holder exits, however it exits, so a crashed broker never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_err};

/// Kafka's name for the lock file of a log directory.
const LOCK_FILE: &str = ".lock";

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `data_dir` if needed and locks it, or fails with
    /// [`Error::DataDirInUse`] when another broker holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<DirLock> {
        std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::DataDirInUse(display(data_dir))),
            Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}

/// The directory as the user will recognise it: absolute when possible.
fn display(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let second = DirLock::acquire(dir.path());
        assert!(
            matches!(&second, Err(Error::DataDirInUse(p)) if p.ends_with(dir.path().file_name().unwrap())),
            "{second:?}"
        );
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}

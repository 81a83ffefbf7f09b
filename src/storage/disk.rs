//! The disk seam: every operation storage performs on a partition's data
//! files and directory goes through a [`Disk`], so tests can make the disk
//! misbehave — EIO or ENOSPC on a write, an fsync or a read, a machine crash
//! that drops unsynced bytes — without root, a tmpfs or a real failing disk.
//!
//! The default methods are the real system calls; [`RealDisk`] uses them all.
//! Index files are caches rebuilt from the `.log` and memory mapping is not
//! an operation that fails on its own, so neither goes through the seam.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// File operations of the storage layer. Every method gets the path too, so
/// an implementation can act per file or per partition.
pub trait Disk: Send + Sync + fmt::Debug {
    /// Opens `path` for reading and writing, creating it if missing.
    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }
    /// Writes all of `buf` at `position`.
    fn write_at(&self, path: &Path, file: &File, buf: &[u8], position: u64) -> io::Result<()> {
        let _ = path;
        file.write_all_at(buf, position)
    }
    /// Fills `buf` from `position`.
    fn read_at(&self, path: &Path, file: &File, buf: &mut [u8], position: u64) -> io::Result<()> {
        let _ = path;
        file.read_exact_at(buf, position)
    }
    /// Called before the kernel sends bytes of `path` to a socket
    /// (`sendfile`) without them being read here: a failing disk fails it
    /// as it would fail `read_at`. The real disk does nothing.
    fn check_send(&self, path: &Path) -> io::Result<()> {
        let _ = path;
        Ok(())
    }
    /// fsyncs the file's data.
    fn sync(&self, path: &Path, file: &File) -> io::Result<()> {
        let _ = path;
        file.sync_data()
    }
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        let _ = path;
        file.set_len(len)
    }
    /// Renames `from` to `to` (replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    /// Removes the file at `path`.
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    /// fsyncs the directory, making creations, renames and removals in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir).and_then(|d| d.sync_all())
    }
}

/// The real disk: every operation is the system call.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealDisk;

impl Disk for RealDisk {}

/// One open file with its path and the disk it lives on: cheap to clone, so
/// reads and fsyncs can happen outside the log lock.
#[derive(Clone)]
pub(crate) struct DiskFile {
    pub(crate) path: std::sync::Arc<Path>,
    pub(crate) file: std::sync::Arc<File>,
    pub(crate) disk: std::sync::Arc<dyn Disk>,
}

impl fmt::Debug for DiskFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DiskFile").field(&self.path).finish()
    }
}

impl DiskFile {
    /// Opens (creating) `path` on `disk`.
    pub(crate) fn open(path: &Path, disk: std::sync::Arc<dyn Disk>) -> io::Result<DiskFile> {
        let file = disk.open(path)?;
        Ok(DiskFile {
            path: path.into(),
            file: std::sync::Arc::new(file),
            disk,
        })
    }
    pub(crate) fn write_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.disk.write_at(&self.path, &self.file, buf, position)
    }
    pub(crate) fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<()> {
        self.disk.read_at(&self.path, &self.file, buf, position)
    }
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.disk.sync(&self.path, &self.file)
    }
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk.set_len(&self.path, &self.file, len)
    }
    /// True when both are the same open file.
    pub(crate) fn same(&self, other: &DiskFile) -> bool {
        std::sync::Arc::ptr_eq(&self.file, &other.file)
    }
}

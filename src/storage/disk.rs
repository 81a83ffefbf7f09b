//! The disk seam: every operation storage performs on a partition's data
//! files and directory goes through a [`Disk`], so tests can make the disk
//! misbehave — EIO or ENOSPC on a write, an fsync or a read, a machine crash
//! that drops unsynced bytes — without root, a tmpfs or a real failing disk.
//!
//! The default methods are the real system calls; [`RealDisk`] uses them all.
//! Index files are caches rebuilt from the `.log` and memory mapping is not
//! an operation that fails on its own, so neither goes through the seam;
//! only the opening and fsync of a rolled segment's indexes do, as part of
//! a log's sync, and the renames and removals of a rebuild. The writes,
//! fsyncs and renames of the aborted-transaction index (`.txnindex`), which
//! nothing rebuilds below the recovery point, go through it too.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
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
    /// Writes all of `bufs`, one after the other, at `position`. An append
    /// writes a batch's rewritten header and the producer's records as they
    /// came off the socket, never copying them together.
    fn write_at(
        &self,
        path: &Path,
        file: &File,
        bufs: &[IoSlice<'_>],
        position: u64,
    ) -> io::Result<()> {
        let _ = path;
        write_all_vectored_at(file, bufs, position)
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
    /// Opens an existing file or directory read-only, to fsync it (index
    /// files, which hold no descriptor once sealed, and the partition
    /// directory) or to read it whole ([`read_file`]). This can
    /// fail without anything being lost, for want of a descriptor (EMFILE).
    fn open_to_sync(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }
    /// fsyncs the directory `dir`, opened with [`Disk::open_to_sync`],
    /// making creations, renames and removals in it durable.
    fn sync_dir(&self, dir: &Path, file: &File) -> io::Result<()> {
        let _ = dir;
        file.sync_all()
    }
}

/// fsyncs the directory `dir`, opening it through `disk`, so that file
/// creations, renames and removals in it are durable.
pub(crate) fn fsync_dir(disk: &dyn Disk, dir: &Path) -> io::Result<()> {
    disk.sync_dir(dir, &disk.open_to_sync(dir)?)
}

/// Renames `from` over `to` and fsyncs their directory, which is opened
/// first: out of descriptors, this fails with nothing changed rather than
/// with the new file already in place.
pub(crate) fn rename_durably(disk: &dyn Disk, from: &Path, to: &Path) -> io::Result<()> {
    let dir = match to.parent() {
        Some(dir) => Some((dir, disk.open_to_sync(dir)?)),
        None => None,
    };
    disk.rename(from, to)?;
    match dir {
        Some((dir, handle)) => disk.sync_dir(dir, &handle),
        None => Ok(()),
    }
}

/// The whole of the file at `path`, read through `disk`; `None` if there is
/// no such file. Any other failure (out of descriptors, EIO) is the error.
pub(crate) fn read_file(disk: &dyn Disk, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match disk.open_to_sync(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = vec![0u8; file.metadata()?.len() as usize];
    disk.read_at(path, &file, &mut bytes, 0)?;
    Ok(Some(bytes))
}

/// `pwritev(2)` until all of `bufs` is written at `position`.
fn write_all_vectored_at(file: &File, bufs: &[IoSlice<'_>], mut position: u64) -> io::Result<()> {
    if let [buf] = bufs {
        return file.write_all_at(buf, position);
    }
    let mut owned = bufs.to_vec();
    let mut rest = &mut owned[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        // Linux takes at most IOV_MAX (1024) slices a call.
        let count = rest.len().min(1024) as libc::c_int;
        let offset = libc::off_t::try_from(position).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: IoSlice is ABI-compatible with iovec, and `rest` holds `count` live slices.
        #[allow(unsafe_code)]
        let written =
            unsafe { libc::pwritev(file.as_raw_fd(), rest.as_ptr().cast(), count, offset) };
        match written {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => {
                position += n as u64;
                IoSlice::advance_slices(&mut rest, n as usize);
            }
        }
    }
    Ok(())
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
    pub(crate) fn write_at(&self, bufs: &[IoSlice<'_>], position: u64) -> io::Result<()> {
        self.disk.write_at(&self.path, &self.file, bufs, position)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vectored_write_lands_every_slice_in_order_past_the_kernel_limit_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = RealDisk.open(&path).unwrap();
        let pieces: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        RealDisk.write_at(&path, &file, &slices, 5).unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(&written[..5], &[0; 5]);
        assert_eq!(written[5..], pieces.concat());
    }
}

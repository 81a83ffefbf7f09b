//! A [`Disk`] that fails on command and models a machine crash, for tests of
//! every layer: EIO or ENOSPC on a chosen operation of chosen files, a
//! chosen operation held until released ([`FaultyDisk::hold`]), and
//! [`FaultyDisk::drop_unsynced`], which cuts every file back to what its last
//! completed fsync covered and removes the files created since their
//! directory's last fsync.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::storage::{Disk, LogFiles, OpenSegments, RealDisk};

/// The operations a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskOp {
    Open,
    Write,
    Read,
    Sync,
    SetLen,
    Rename,
    Remove,
    SyncDir,
}

#[derive(Debug)]
struct Rule {
    op: DiskOp,
    path_contains: String,
    errno: i32,
    /// How many more calls fail; `None`: until cleared.
    times: Option<u32>,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Per file: the length its last completed fsync made durable.
    synced: HashMap<PathBuf, u64>,
    /// Files created through this disk whose directory has not been fsynced
    /// since: a crash loses them whole.
    unnamed: HashSet<PathBuf>,
    /// Faults injected so far.
    injected: u64,
    /// (operation, path part) of the calls that wait for [`FaultyDisk::release`].
    holds: Vec<(DiskOp, String)>,
    /// Calls that have waited on a hold so far.
    held: u64,
}

/// A real disk with faults on command. Share it as `Arc<FaultyDisk>`.
#[derive(Debug, Default)]
pub struct FaultyDisk {
    state: Mutex<State>,
    released: Condvar,
}

impl FaultyDisk {
    pub fn new() -> Arc<FaultyDisk> {
        Arc::new(FaultyDisk::default())
    }

    /// This disk with no bound on open files, for a log opened on its own
    /// (as [`crate::storage::real_unbounded`] is for the real disk).
    pub fn unbounded(self: &Arc<Self>) -> LogFiles {
        (self.clone(), OpenSegments::unbounded())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, `op` on any file whose path contains `path_contains`
    /// fails with the OS error `errno` (e.g. `libc::EIO`, `libc::ENOSPC`).
    pub fn fail(&self, op: DiskOp, path_contains: &str, errno: i32) {
        self.fail_times(op, path_contains, errno, None);
    }

    /// [`FaultyDisk::fail`] for the next `times` matching calls only (`None`: until cleared).
    pub fn fail_times(&self, op: DiskOp, path_contains: &str, errno: i32, times: Option<u32>) {
        self.state().rules.push(Rule {
            op,
            path_contains: path_contains.to_string(),
            errno,
            times,
        });
    }

    /// From now on, `op` on any file whose path contains `path_contains`
    /// waits (blocking its thread) until [`FaultyDisk::release`].
    pub fn hold(&self, op: DiskOp, path_contains: &str) {
        self.state().holds.push((op, path_contains.to_string()));
    }

    /// Lets every held call go on, and holds no more.
    pub fn release(&self) {
        self.state().holds.clear();
        self.released.notify_all();
    }

    /// How many calls have waited on a hold so far.
    pub fn held(&self) -> u64 {
        self.state().held
    }

    /// How many operations have failed on command so far.
    pub fn injected(&self) -> u64 {
        self.state().injected
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// A machine crash, after the broker or log using this disk is gone:
    /// every file written through it loses the bytes its last fsync did not
    /// cover, and one it created is gone if its directory was not fsynced
    /// after. A file renamed over another counts as durable at once (the
    /// model cannot bring the old one back); a created one renamed to a new
    /// name still needs its directory's fsync.
    pub fn drop_unsynced(&self) -> io::Result<()> {
        let state = self.state();
        for path in &state.unnamed {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        for (path, synced) in &state.synced {
            match std::fs::OpenOptions::new().write(true).open(path) {
                Ok(file) if file.metadata()?.len() > *synced => file.set_len(*synced)?,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn check(&self, op: DiskOp, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        let path = path.to_string_lossy();
        let holds = |state: &State| {
            state
                .holds
                .iter()
                .any(|(o, part)| *o == op && path.contains(part.as_str()))
        };
        if holds(&state) {
            state.held += 1;
            while holds(&state) {
                state = self.released.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        let hit = state
            .rules
            .iter_mut()
            .find(|r| r.op == op && path.contains(&r.path_contains) && r.times != Some(0));
        match hit {
            Some(rule) => {
                if let Some(n) = &mut rule.times {
                    *n -= 1;
                }
                let errno = rule.errno;
                state.injected += 1;
                Err(io::Error::from_raw_os_error(errno))
            }
            None => Ok(()),
        }
    }
}

impl Disk for FaultyDisk {
    fn open(&self, path: &Path) -> io::Result<File> {
        self.check(DiskOp::Open, path)?;
        let created = !path.exists();
        let file = RealDisk.open(path)?;
        if created {
            self.state().unnamed.insert(path.to_path_buf());
        }
        // What was there before this disk saw the file is taken as durable.
        let len = file.metadata()?.len();
        self.state().synced.entry(path.to_path_buf()).or_insert(len);
        Ok(file)
    }
    fn write_at(
        &self,
        path: &Path,
        file: &File,
        bufs: &[IoSlice<'_>],
        position: u64,
    ) -> io::Result<()> {
        self.check(DiskOp::Write, path)?;
        RealDisk.write_at(path, file, bufs, position)
    }
    fn read_at(&self, path: &Path, file: &File, buf: &mut [u8], position: u64) -> io::Result<()> {
        self.check(DiskOp::Read, path)?;
        RealDisk.read_at(path, file, buf, position)
    }
    fn check_send(&self, path: &Path) -> io::Result<()> {
        self.check(DiskOp::Read, path)
    }
    fn sync(&self, path: &Path, file: &File) -> io::Result<()> {
        self.check(DiskOp::Sync, path)?;
        RealDisk.sync(path, file)?;
        let len = file.metadata()?.len();
        self.state().synced.insert(path.to_path_buf(), len);
        Ok(())
    }
    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        self.check(DiskOp::SetLen, path)?;
        RealDisk.set_len(path, file, len)?;
        if let Some(synced) = self.state().synced.get_mut(path) {
            *synced = (*synced).min(len);
        }
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(DiskOp::Rename, to)?;
        let replaces = to.exists();
        RealDisk.rename(from, to)?;
        // `to` is now the file `from` was, synced as far as it was.
        let mut state = self.state();
        match state.synced.remove(from) {
            Some(synced) => state.synced.insert(to.to_path_buf(), synced),
            None => state.synced.remove(to),
        };
        // A new file under a new name is still lost whole by a crash before
        // its directory's fsync; one renamed over another is taken as durable
        // (the model cannot bring the old one back).
        if state.unnamed.remove(from) && !replaces {
            state.unnamed.insert(to.to_path_buf());
        }
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(DiskOp::Remove, path)?;
        RealDisk.remove(path)?;
        let mut state = self.state();
        state.synced.remove(path);
        state.unnamed.remove(path);
        Ok(())
    }
    fn open_to_sync(&self, path: &Path) -> io::Result<File> {
        self.check(DiskOp::Open, path)?;
        RealDisk.open_to_sync(path)
    }
    fn sync_dir(&self, dir: &Path, file: &File) -> io::Result<()> {
        self.check(DiskOp::SyncDir, dir)?;
        RealDisk.sync_dir(dir, file)?;
        self.state().unnamed.retain(|p| p.parent() != Some(dir));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_loses_unsynced_bytes_and_files_whose_directory_was_not_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            let file = disk.open(&path).unwrap();
            disk.write_at(&path, &file, &[IoSlice::new(bytes)], 0)
                .unwrap();
            disk.sync(&path, &file).unwrap();
            (path, file)
        };
        let (named, file) = write("named", b"abc");
        disk.sync_dir(dir.path(), &disk.open_to_sync(dir.path()).unwrap())
            .unwrap();
        disk.write_at(&named, &file, &[IoSlice::new(b"def")], 3)
            .unwrap();
        let (unnamed, _) = write("unnamed", b"xyz");
        let (moved, _) = write("moved.tmp", b"123");
        let renamed = dir.path().join("renamed");
        disk.rename(&moved, &renamed).unwrap();
        disk.drop_unsynced().unwrap();
        assert_eq!(std::fs::read(&named).unwrap(), b"abc");
        assert!(!unnamed.exists());
        assert!(!renamed.exists());
    }
}

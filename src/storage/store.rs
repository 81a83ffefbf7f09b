//! The `.log` file of one segment: whole record batches, back to back.
//!
//! Invariant: `len` is the end of the last complete batch the store has
//! accepted; bytes past it (a failed or torn write) are never read and are
//! cut off on the next append or recovery. Every operation goes through the
//! [`Disk`] seam so tests can inject failures; reads use `pread` on a shared
//! `Arc<File>`, so readers never need the log lock once they know positions.
//! Nothing maps a `.log`: fetches send its bytes to the socket with
//! `sendfile`, so what consumers read stays in the page cache and never
//! counts in the broker's resident memory.

use std::io::IoSlice;
use std::path::Path;
use std::sync::Arc;

use super::disk::{Disk, DiskFile};
use super::open_segments::{OpenSegments, Slot};
use super::record::{BatchHeader, HEADER_BYTES};
use super::{Error, Result};

/// The append-only data file of a segment.
#[derive(Debug)]
pub(crate) struct Store {
    path: Arc<Path>,
    disk: Arc<dyn Disk>,
    /// The open file. A sealed segment's is opened on first use (one nobody
    /// reads holds no descriptor) and may be closed again by `open`.
    slot: Arc<Slot>,
    open: Arc<OpenSegments>,
    len: u64,
}

impl Store {
    /// Opens or creates `path` for an active segment; `len` is the file's
    /// current size (recovery may cut it).
    pub(crate) fn open(path: &Path, disk: Arc<dyn Disk>, open: Arc<OpenSegments>) -> Result<Store> {
        let file = DiskFile::open(path, disk.clone()).map_err(|e| Error::io(path, e))?;
        let len = file.file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(Store {
            path: file.path.clone(),
            disk,
            slot: Arc::new(Slot::holding(file)),
            open,
            len,
        })
    }

    /// An existing `path` of a sealed segment, opened when first read.
    pub(crate) fn open_lazily(
        path: &Path,
        disk: Arc<dyn Disk>,
        open: Arc<OpenSegments>,
    ) -> Result<Store> {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        Ok(Store {
            path: path.into(),
            disk,
            slot: Arc::new(Slot::sealed()),
            open,
            len,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }
    /// The open file (opened now if it was not), shareable with readers and
    /// fsyncs outside the log lock. Out of descriptors, this is the error.
    pub(crate) fn file(&self) -> Result<DiskFile> {
        if let Some(file) = self.slot.get() {
            return Ok(file);
        }
        let file = match self.slot.still_open() {
            // Closed past the bound but still held by a reader: taken back
            // rather than opened again.
            Some(file) => DiskFile {
                path: self.path.clone(),
                file,
                disk: self.disk.clone(),
            },
            None => DiskFile::open(&self.path, self.disk.clone())
                .map_err(|e| Error::io(self.path(), e))?,
        };
        let file = self.slot.keep(file);
        if self.slot.is_counted() {
            self.open.admit(&self.slot);
        }
        Ok(file)
    }
    /// Sealed, the file counts toward the bound on open sealed segment
    /// files; active, it stays open.
    pub(crate) fn set_sealed(&self, sealed: bool) {
        self.slot.set_counted(sealed);
        if sealed && self.slot.peek().is_some() {
            self.open.admit(&self.slot);
        }
    }
    /// Bytes of complete batches.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `bufs`, back to back, at the end; returns their position. On
    /// error the file is cut back to its previous length and the store is unchanged.
    pub(crate) fn append(&mut self, bufs: &[IoSlice<'_>]) -> Result<u64> {
        let position = self.len;
        let file = self.file()?;
        if let Err(e) = file.write_at(bufs, position) {
            if let Err(cut) = file.set_len(position) {
                tracing::warn!(path = %self.path().display(), error = %cut, "cannot cut failed write");
            }
            return Err(Error::io(self.path(), e));
        }
        self.len = position + bufs.iter().map(|b| b.len() as u64).sum::<u64>();
        Ok(position)
    }

    /// Fills `buf` from `position`; never reads past `len`.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], position: u64) -> Result<()> {
        if position.saturating_add(buf.len() as u64) > self.len {
            return Err(Error::CorruptMessage(format!(
                "read of {} bytes at {position} past end {} of {}",
                buf.len(),
                self.len,
                self.path().display()
            )));
        }
        self.file()?
            .read_at(buf, position)
            .map_err(|e| Error::io(self.path(), e))
    }

    /// Cuts the file to `len` bytes (no-op growth is refused).
    pub(crate) fn truncate_to(&mut self, len: u64) -> Result<()> {
        if len > self.len {
            return Ok(());
        }
        self.file()?
            .set_len(len)
            .map_err(|e| Error::io(self.path(), e))?;
        self.len = len;
        Ok(())
    }

    /// fsync of the data. A file closed since it was written (see
    /// [`OpenSegments`]) is opened again for it: its pages may still be dirty.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file()?.sync().map_err(|e| Error::io(self.path(), e))
    }

    /// Walks batch headers from `position` (which must be a batch boundary).
    pub(crate) fn headers_from(&self, position: u64) -> HeaderScanner<'_> {
        HeaderScanner {
            store: self,
            position,
            buf: Vec::new(),
            buf_start: 0,
        }
    }
}

const SCAN_CHUNK: usize = 8 * 1024;

/// Buffered walk over batch headers: one `pread` serves many small batches.
#[derive(Debug)]
pub(crate) struct HeaderScanner<'a> {
    store: &'a Store,
    position: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl HeaderScanner<'_> {
    /// The next batch's position and header, or `None` at the end of complete
    /// batches. A header that does not parse or a batch that overruns the
    /// store is `CorruptMessage`.
    pub(crate) fn next_header(&mut self) -> Result<Option<(u64, BatchHeader)>> {
        let end = self.store.len;
        if self.position >= end {
            return Ok(None);
        }
        if end - self.position < HEADER_BYTES as u64 {
            return Err(self.corrupt("partial batch header"));
        }
        let header =
            BatchHeader::parse(self.header_bytes()?).map_err(|e| self.corrupt(&e.to_string()))?;
        let position = self.position;
        let next = position + header.size as u64;
        if next > end {
            return Err(self.corrupt("batch overruns the file"));
        }
        self.position = next;
        Ok(Some((position, header)))
    }

    fn header_bytes(&mut self) -> Result<&[u8]> {
        let offset_in_buf = self
            .position
            .checked_sub(self.buf_start)
            .map(|o| o as usize);
        let cached = offset_in_buf.filter(|&o| o + HEADER_BYTES <= self.buf.len());
        let at = match cached {
            Some(at) => at,
            None => {
                let want = (self.store.len - self.position).min(SCAN_CHUNK as u64) as usize;
                self.buf.resize(want, 0);
                self.store.read_exact_at(&mut self.buf, self.position)?;
                self.buf_start = self.position;
                0
            }
        };
        self.buf
            .get(at..at + HEADER_BYTES)
            .ok_or_else(|| Error::CorruptMessage("short header read".to_string()))
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::CorruptMessage(format!(
            "{what} at position {} of {}",
            self.position,
            self.store.path().display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::storage::disk::RealDisk;
    use crate::storage::testing::batch;

    #[derive(Debug)]
    struct Failing;
    impl Disk for Failing {
        fn write_at(
            &self,
            _: &Path,
            file: &File,
            bufs: &[IoSlice<'_>],
            position: u64,
        ) -> io::Result<()> {
            // A torn write: half the bytes land, then the disk is full.
            let buf: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            file.write_all_at(&buf[..buf.len() / 2], position)?;
            Err(io::Error::other("no space left on device"))
        }
    }

    #[test]
    fn append_then_scan_headers_returns_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(
            &dir.path().join("0.log"),
            Arc::new(RealDisk),
            OpenSegments::unbounded(),
        )
        .unwrap();
        let mut positions = Vec::new();
        for i in 0..100u8 {
            let b = batch(&[(b"k", &vec![i; i as usize * 50])], 1);
            positions.push(store.append(&[IoSlice::new(&b)]).unwrap());
        }
        let mut scanner = store.headers_from(0);
        let mut seen = Vec::new();
        while let Some((position, _)) = scanner.next_header().unwrap() {
            seen.push(position);
        }
        assert_eq!(seen, positions);
    }

    #[test]
    fn failed_write_leaves_the_store_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut store = Store::open(&path, Arc::new(RealDisk), OpenSegments::unbounded()).unwrap();
        store
            .append(&[IoSlice::new(&batch(&[(b"k", b"v")], 1))])
            .unwrap();
        let before = store.len();
        store = Store::open(&path, Arc::new(Failing), OpenSegments::unbounded()).unwrap();
        assert!(matches!(
            store.append(&[IoSlice::new(&batch(&[(b"k", b"v")], 1))]),
            Err(Error::Io { .. })
        ));
        assert_eq!(store.len(), before);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
    }

    /// Counts the files it opens.
    #[derive(Debug, Default)]
    struct CountingOpens(std::sync::atomic::AtomicUsize);
    impl Disk for CountingOpens {
        fn open(&self, path: &Path) -> io::Result<File> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            RealDisk.open(path)
        }
    }

    #[test]
    fn a_segment_closed_past_the_bound_while_read_is_not_opened_twice() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(CountingOpens::default());
        let bound = OpenSegments::new(1);
        let [a, b] = ["0.log", "1.log"].map(|name| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"").unwrap();
            Store::open_lazily(&path, disk.clone(), bound.clone()).unwrap()
        });
        let reading = a.file().unwrap();
        b.file().unwrap();
        assert!(a.slot.peek().is_none(), "a is closed past the bound");
        let again = a.file().unwrap();
        assert!(
            again.same(&reading),
            "the reader's descriptor is taken back"
        );
        assert_eq!(disk.0.load(std::sync::atomic::Ordering::Relaxed), 2);
        // Once nobody holds it, a closed file is opened anew: b (closed by
        // a's read above), then a (closed by b's).
        drop((reading, again));
        b.file().unwrap();
        assert!(a.slot.peek().is_none() && a.slot.still_open().is_none());
        a.file().unwrap();
        assert_eq!(disk.0.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[test]
    fn reads_past_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("0.log"),
            Arc::new(RealDisk),
            OpenSegments::unbounded(),
        )
        .unwrap();
        let mut buf = [0u8; 4];
        assert!(store.read_exact_at(&mut buf, 0).is_err());
        assert!(store.read_exact_at(&mut buf, u64::MAX).is_err());
    }
}

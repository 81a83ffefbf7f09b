//! Reading a sealed segment's batches in order, a chunk at a time, without
//! the log lock (sealed segments never change).

use super::SealedRef;
use crate::storage::disk::DiskFile;
use crate::storage::record::{BatchHeader, HEADER_BYTES};
use crate::storage::{Error, Result};

/// Bytes read from a segment file at a time while cleaning.
const READ_CHUNK: usize = 1 << 20;

/// Reads the batches of a segment file in order, a chunk at a time.
pub(super) struct BatchCursor<'a> {
    file: &'a DiskFile,
    size: u64,
    position: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> BatchCursor<'a> {
    pub(super) fn new(segment: &'a SealedRef) -> BatchCursor<'a> {
        BatchCursor {
            file: &segment.file,
            size: segment.size,
            position: 0,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// The next batch's bytes, or `None` at the end of the file.
    pub(super) fn next_batch(&mut self, bytes_read: &mut u64) -> Result<Option<&[u8]>> {
        if self.position + HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let header = self.window(HEADER_BYTES, bytes_read)?;
        let size = BatchHeader::parse(header)?.size;
        if self.position + size as u64 > self.size {
            return Err(Error::CorruptMessage(format!(
                "{}: batch at {} overruns the segment",
                self.file.path.display(),
                self.position
            )));
        }
        self.window(size, bytes_read)?;
        let at = (self.position - self.buf_start) as usize;
        self.position += size as u64;
        Ok(self.buf.get(at..at + size))
    }

    /// Makes `len` bytes from `position` resident in the buffer.
    fn window(&mut self, len: usize, bytes_read: &mut u64) -> Result<&[u8]> {
        let end = self.buf_start + self.buf.len() as u64;
        if self.position < self.buf_start || self.position + len as u64 > end {
            let want = (self.size - self.position).min(len.max(READ_CHUNK) as u64) as usize;
            self.buf.resize(want, 0);
            self.file
                .read_at(&mut self.buf, self.position)
                .map_err(|e| Error::io(&*self.file.path, e))?;
            self.buf_start = self.position;
            *bytes_read += want as u64;
        }
        let at = (self.position - self.buf_start) as usize;
        Ok(&self.buf[at..at + len])
    }
}

//! Framing: every Kafka request and response is a 4-byte big-endian size
//! followed by that many bytes. This module knows nothing else of Kafka.
//!
//! A response is a list of [`Chunk`]s: bytes in memory, or a range of an
//! open file. On a plain TCP socket the kernel sends a file range straight
//! from the page cache (`sendfile`), as Kafka's `FileRecords.transferTo`
//! does; on TLS the range is read and encrypted in pieces.

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod send;

/// Either half of a plain TCP socket or of a TLS stream.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// One client socket: frames are read by a [`FrameReader`] and answers
/// written by a [`FrameWriter`], so the two halves can work concurrently.
#[derive(Debug)]
pub(crate) struct Connection {
    pub reader: FrameReader,
    pub writer: FrameWriter,
}

/// The writing half of a connection.
pub(crate) struct FrameWriter {
    stream: Sink,
    /// Small chunks gathered into one write.
    buf: Vec<u8>,
}

/// Where answers go: a plain socket can take file ranges with `sendfile`.
enum Sink {
    Tcp(OwnedWriteHalf),
    Other(WriteHalf),
}

/// A range of an open file, to be sent as it is.
#[derive(Clone)]
pub(crate) struct FileRange {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

impl std::fmt::Debug for FileRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileRange({}+{})", self.position, self.len)
    }
}

/// One piece of a response frame.
#[derive(Debug, Clone)]
pub(crate) enum Chunk {
    Bytes(Bytes),
    File(FileRange),
}

impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Chunk {
        Chunk::Bytes(bytes)
    }
}

impl Chunk {
    /// Number of bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(range) => range.len,
        }
    }

    /// The chunk's bytes in memory (a file range is read).
    pub(crate) fn to_bytes(&self) -> io::Result<Bytes> {
        match self {
            Chunk::Bytes(b) => Ok(b.clone()),
            Chunk::File(range) => {
                let mut buf = vec![0; range.len];
                std::os::unix::fs::FileExt::read_exact_at(&*range.file, &mut buf, range.position)?;
                Ok(buf.into())
            }
        }
    }
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter").finish_non_exhaustive()
    }
}

/// The reading half of a connection, one frame at a time.
pub(crate) struct FrameReader {
    stream: BufReader<ReadHalf>,
    max_frame_bytes: u32,
    /// One permit per request byte in flight, shared by every connection.
    in_flight: Arc<Semaphore>,
    /// The number of permits `in_flight` started with.
    budget_total: u32,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("max_frame_bytes", &self.max_frame_bytes)
            .finish_non_exhaustive()
    }
}

/// The budget of request bytes in flight, shared by every connection.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    permits: Arc<Semaphore>,
    total: u32,
}

impl InFlight {
    /// A budget of `bytes` (capped at what a semaphore can count).
    pub(crate) fn new(bytes: u64) -> InFlight {
        let total = bytes
            .min(Semaphore::MAX_PERMITS as u64)
            .min(u64::from(u32::MAX)) as u32;
        InFlight {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }
}

/// A request frame and its share of the in-flight byte budget, released on drop.
#[derive(Debug)]
pub(crate) struct Frame {
    pub body: Bytes,
    _budget: OwnedSemaphorePermit,
}

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame size {0} is outside 0..={1}")]
    BadSize(i32, u32),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Connection {
    /// Wraps an accepted socket; frames larger than `max_frame_bytes` close it.
    /// Each frame's bytes are taken from `in_flight` before it is read.
    pub(crate) fn new(stream: TcpStream, max_frame_bytes: u32, budget: &InFlight) -> Connection {
        // Responses are written whole; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Connection::from_halves(Box::new(read), Sink::Tcp(write), max_frame_bytes, budget)
    }

    /// [`Connection::new`] over a TLS stream (its handshake done).
    pub(crate) fn tls<S>(stream: S, max_frame_bytes: u32, budget: &InFlight) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Connection::from_halves(
            Box::new(read),
            Sink::Other(Box::new(write)),
            max_frame_bytes,
            budget,
        )
    }

    fn from_halves(
        read: ReadHalf,
        write: Sink,
        max_frame_bytes: u32,
        budget: &InFlight,
    ) -> Connection {
        Connection {
            reader: FrameReader {
                stream: BufReader::new(read),
                max_frame_bytes,
                in_flight: budget.permits.clone(),
                budget_total: budget.total,
            },
            writer: FrameWriter {
                stream: write,
                buf: Vec::new(),
            },
        }
    }
}

impl FrameReader {
    /// The next whole frame, or `None` when the peer closed cleanly between frames.
    /// Waits (reading nothing more from the socket) while the in-flight budget is spent.
    /// A frame over `limit` (at most the connection's maximum) closes the connection.
    pub(crate) async fn read_frame(&mut self, limit: u32) -> Result<Option<Frame>, FrameError> {
        let mut size = [0u8; 4];
        match self.stream.read_exact(&mut size).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let size = i32::from_be_bytes(size);
        // The size is checked before anything is allocated for it.
        let max = limit.min(self.max_frame_bytes);
        let len = u32::try_from(size)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(FrameError::BadSize(size, max))?;
        // A frame larger than the whole budget waits until it has the budget to itself.
        let permits = len.clamp(1, self.budget_total);
        let budget = self
            .in_flight
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| io::Error::other("in-flight budget closed"))?;
        // Read straight into the buffer's spare capacity: zeroing it first
        // costs as much as a tenth of a produce.
        let len = len as usize;
        let mut body = BytesMut::with_capacity(len);
        while body.len() < len {
            let want = len - body.len();
            if self.stream.read_buf(&mut (&mut body).limit(want)).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
        Ok(Some(Frame {
            body: body.freeze(),
            _budget: budget,
        }))
    }
}

/// Chunks smaller than this are gathered in the writer's buffer.
const GATHER_BYTES: usize = 8 * 1024;

/// A file range that is copied (TLS) is read in pieces of this size.
const PIECE_BYTES: usize = 64 * 1024;

impl FrameWriter {
    /// Writes a frame made of several chunks (e.g. header, then record bytes)
    /// and flushes. A file range that ends early (the file was cut) fails
    /// the write, and the connection closes: its frame size was promised.
    pub(crate) async fn write_parts(&mut self, parts: &[Chunk]) -> io::Result<()> {
        for part in parts {
            match part {
                Chunk::Bytes(b) if b.len() < GATHER_BYTES => {
                    self.buf.extend_from_slice(b);
                    if self.buf.len() >= GATHER_BYTES {
                        self.write_buffered().await?;
                    }
                }
                Chunk::Bytes(b) => {
                    self.write_buffered().await?;
                    self.write_all(b).await?;
                }
                Chunk::File(range) => {
                    self.write_buffered().await?;
                    let sent = match &self.stream {
                        Sink::Tcp(socket) => send::file_range(socket.as_ref(), range).await?,
                        Sink::Other(_) => false,
                    };
                    if !sent {
                        self.copy_file_range(range).await?;
                    }
                }
            }
        }
        self.write_buffered().await?;
        match &mut self.stream {
            Sink::Tcp(socket) => socket.flush().await,
            Sink::Other(stream) => stream.flush().await,
        }
    }

    async fn write_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let written = self.write_all(&buf).await;
        self.buf = buf;
        self.buf.clear();
        written
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Sink::Tcp(socket) => socket.write_all(bytes).await,
            Sink::Other(stream) => stream.write_all(bytes).await,
        }
    }

    /// Reads `range` in pieces and writes them (TLS, or a file `sendfile`
    /// cannot send).
    async fn copy_file_range(&mut self, range: &FileRange) -> io::Result<()> {
        let mut piece = vec![0; range.len.min(PIECE_BYTES)];
        let mut done = 0;
        while done < range.len {
            let n = (range.len - done).min(piece.len());
            let at = range.position + done as u64;
            std::os::unix::fs::FileExt::read_exact_at(&*range.file, &mut piece[..n], at)?;
            self.write_all(&piece[..n]).await?;
            done += n;
        }
        Ok(())
    }
}

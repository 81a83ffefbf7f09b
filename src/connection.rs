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
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

mod read;
mod send;

use read::Source;
pub(crate) use read::{Frame, FrameReader, InFlight};

/// The writing half of a TLS stream.
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
    sent: Progress,
}

/// Bytes a [`FrameWriter`] has handed to its socket so far, and when it last
/// did, readable while a write is under way: whether a slow client still
/// takes bytes, and when the connection was last active.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(Arc<Sent>);

#[derive(Debug, Default)]
struct Sent {
    bytes: AtomicU64,
    /// Nanoseconds from [`since`] to the last write; 0 before the first.
    last: AtomicU64,
}

/// The origin of [`Sent::last`].
fn since() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

impl Progress {
    fn add(&self, n: usize) {
        self.0.bytes.fetch_add(n as u64, Ordering::Relaxed);
        let at = since().elapsed().as_nanos().max(1) as u64;
        self.0.last.store(at, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }
    /// When bytes last went out, if they ever did.
    pub(crate) fn last_at(&self) -> Option<std::time::Instant> {
        match self.0.last.load(Ordering::Relaxed) {
            0 => None,
            at => Some(since() + std::time::Duration::from_nanos(at)),
        }
    }
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

impl Connection {
    /// Wraps an accepted socket; frames larger than `max_frame_bytes` close it.
    /// Each frame's bytes are taken from `in_flight` before it is read.
    pub(crate) fn new(stream: TcpStream, max_frame_bytes: u32, budget: &InFlight) -> Connection {
        // Responses are written whole; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Connection::from_halves(Source::Tcp(read), Sink::Tcp(write), max_frame_bytes, budget)
    }

    /// [`Connection::new`] over a TLS stream (its handshake done).
    pub(crate) fn tls<S>(stream: S, max_frame_bytes: u32, budget: &InFlight) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Connection::from_halves(
            Source::Other(Box::new(read)),
            Sink::Other(Box::new(write)),
            max_frame_bytes,
            budget,
        )
    }

    fn from_halves(
        read: Source,
        write: Sink,
        max_frame_bytes: u32,
        budget: &InFlight,
    ) -> Connection {
        Connection {
            reader: FrameReader::new(read, max_frame_bytes, budget),
            writer: FrameWriter {
                stream: write,
                buf: Vec::new(),
                sent: Progress::default(),
            },
        }
    }
}

/// Chunks smaller than this are gathered in the writer's buffer.
const GATHER_BYTES: usize = 8 * 1024;

/// The gathering buffer is let go after an answer that grew it beyond this.
const KEEP_BYTES: usize = 1024;

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
                    // Boxed: inline, its state would sit in every
                    // connection's task, most of which never send a file.
                    Box::pin(self.write_file(range)).await?;
                }
            }
        }
        self.write_buffered().await?;
        // An idle connection keeps no more than a small answer's room.
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new();
        }
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

    /// Ends the sending side of a plain socket (its FIN), as dropping its
    /// half would, while the reading side may go on. A TLS stream's half
    /// has no such step: its socket closes with both halves.
    pub(crate) async fn end(&mut self) {
        if let Sink::Tcp(socket) = &mut self.stream {
            let _ = socket.shutdown().await;
        }
    }

    /// What has gone out so far, to watch while a write is under way.
    pub(crate) fn progress(&self) -> Progress {
        self.sent.clone()
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = match &mut self.stream {
                Sink::Tcp(socket) => socket.write(bytes).await?,
                Sink::Other(stream) => stream.write(bytes).await?,
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent.add(n);
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Sends `range` from its file: with `sendfile` where it can, else
    /// through a buffer.
    async fn write_file(&mut self, range: &FileRange) -> io::Result<()> {
        let sent = match &self.stream {
            Sink::Tcp(socket) => send::file_range(socket.as_ref(), range, &self.sent).await?,
            Sink::Other(_) => false,
        };
        if !sent {
            self.copy_file_range(range).await?;
        }
        Ok(())
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

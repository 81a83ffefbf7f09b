//! The reading half of a connection: whole request frames, within the
//! broker's budget of request bytes in flight.
//!
//! Between requests a plain TCP connection holds no read buffer: it waits
//! for the socket to become readable, and only then takes a buffer for
//! what has arrived. A thousand idle consumers would otherwise hold 8 MiB
//! of buffers that nothing is in.

use std::io;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one read may take beyond the frame in hand: small requests (and
/// the size of a large one) arrive in a single read.
const READ_AHEAD: usize = 8 * 1024;

/// Where requests come from.
pub(super) enum Source {
    /// A plain socket: read when readable, into a buffer taken only then.
    Tcp(OwnedReadHalf),
    /// A TLS stream, which keeps buffers of its own anyway.
    Other(Box<dyn AsyncRead + Send + Unpin>),
}

impl Source {
    /// Reads what has arrived, at most `most` bytes, onto the end of `buf`;
    /// 0 once the peer has closed.
    async fn read_into(&mut self, buf: &mut BytesMut, most: usize) -> io::Result<usize> {
        if let Source::Tcp(socket) = self {
            // Readiness first, holding no buffer. Polled in the reader's own
            // slot: awaiting `readable()` waits in a locked list.
            std::future::poll_fn(|cx| socket.as_ref().poll_read_ready(cx)).await?;
        }
        buf.reserve(most);
        let mut room = (&mut *buf).limit(most);
        // Through `poll_read`, not `try_read`: tokio takes a short read as
        // the socket drained, which spares the `recv` that would only say so
        // (one for each small request).
        match self {
            Source::Tcp(socket) => socket.read_buf(&mut room).await,
            Source::Other(stream) => stream.read_buf(&mut room).await,
        }
    }
}

/// The reading half of a connection, one frame at a time.
pub(crate) struct FrameReader {
    source: Source,
    /// Bytes read beyond the frames handed out (a client may send its next
    /// request before the answer to the last). Between requests it is
    /// usually empty and then holds no memory.
    pending: BytesMut,
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

impl FrameReader {
    pub(super) fn new(source: Source, max_frame_bytes: u32, budget: &InFlight) -> FrameReader {
        FrameReader {
            source,
            pending: BytesMut::new(),
            max_frame_bytes,
            in_flight: budget.permits.clone(),
            budget_total: budget.total,
        }
    }

    /// The next whole frame, or `None` when the peer closed between frames
    /// (or within a frame's size).
    /// Waits (reading nothing more from the socket) while the in-flight budget is spent.
    /// A frame over `limit` (at most the connection's maximum) closes the connection.
    pub(crate) async fn read_frame(&mut self, limit: u32) -> Result<Option<Frame>, FrameError> {
        while self.pending.len() < 4 {
            if self.source.read_into(&mut self.pending, READ_AHEAD).await? == 0 {
                return Ok(None);
            }
        }
        let size = self.pending.get_i32();
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
        let len = len as usize;
        let body = if self.pending.len() >= len {
            // Copied out, so that a request held for long (a long poll)
            // does not keep the whole read buffer alive.
            let body = Bytes::copy_from_slice(&self.pending[..len]);
            self.pending.advance(len);
            body
        } else {
            // Read straight into the frame's spare capacity: zeroing it
            // first costs as much as a tenth of a produce.
            let mut body = BytesMut::with_capacity(len);
            body.put(&mut self.pending);
            while body.len() < len {
                let want = len - body.len();
                if self.source.read_into(&mut body, want).await? == 0 {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
            }
            body.freeze()
        };
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
        Ok(Some(Frame {
            body,
            _budget: budget,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A reader on the accepted end of a loopback pair, and the client end.
    async fn pair() -> (FrameReader, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read, _write) = server.into_split();
        let reader = FrameReader::new(Source::Tcp(read), 1 << 20, &InFlight::new(1 << 20));
        (reader, client)
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        [&(body.len() as i32).to_be_bytes()[..], body].concat()
    }

    #[tokio::test]
    async fn frames_sent_together_come_out_one_by_one_and_leave_no_buffer() {
        let (mut reader, mut client) = pair().await;
        let big = vec![7u8; 3 * READ_AHEAD + 5];
        let sent = [framed(b"first"), framed(b""), framed(&big), framed(b"last")].concat();
        client.write_all(&sent).await.unwrap();
        for want in [&b"first"[..], b"", &big, b"last"] {
            let frame = reader.read_frame(u32::MAX).await.unwrap().unwrap();
            assert_eq!(&frame.body[..], want);
        }
        assert_eq!(
            reader.pending.capacity(),
            0,
            "nothing is held between requests"
        );
        drop(client);
        assert!(reader.read_frame(u32::MAX).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_frame_in_pieces_is_put_together() {
        let (mut reader, mut client) = pair().await;
        let body: Vec<u8> = (0..2 * READ_AHEAD as u32).map(|i| i as u8).collect();
        let sent = framed(&body);
        let writing = tokio::spawn(async move {
            for piece in sent.chunks(1000) {
                client.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let frame = reader.read_frame(u32::MAX).await.unwrap().unwrap();
        assert_eq!(frame.body, body);
        drop(writing.await.unwrap());
        assert!(reader.read_frame(u32::MAX).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_close_inside_a_frame_is_an_error_and_a_bad_size_is_refused() {
        let (mut reader, mut client) = pair().await;
        client.write_all(&framed(b"whole")[..6]).await.unwrap();
        drop(client);
        assert!(matches!(
            reader.read_frame(u32::MAX).await,
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));

        let (mut reader, mut client) = pair().await;
        client.write_all(&(-1i32).to_be_bytes()).await.unwrap();
        assert!(matches!(
            reader.read_frame(u32::MAX).await,
            Err(FrameError::BadSize(-1, _))
        ));
        let (mut reader, mut client) = pair().await;
        client.write_all(&framed(&[0; 101])).await.unwrap();
        assert!(matches!(
            reader.read_frame(100).await,
            Err(FrameError::BadSize(101, 100))
        ));
    }
}

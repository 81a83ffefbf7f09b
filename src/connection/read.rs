//! The reading half of a connection: whole request frames, within the
//! broker's budget of request bytes in flight.
//!
//! Between requests a plain TCP connection holds no read buffer: it waits
//! for the socket to become readable, and only then takes a buffer for
//! what has arrived. Each idle consumer would otherwise hold an 8 KiB
//! buffer with nothing in it.

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
    /// 0 once the peer has closed. On a plain socket, an empty `buf` holds
    /// no memory while it waits.
    async fn read_into(&mut self, buf: &mut BytesMut, most: usize) -> io::Result<usize> {
        match self {
            Source::Tcp(socket) => {
                std::future::poll_fn(|cx| {
                    // Readiness first, holding no buffer. Polled in the
                    // reader's own slot: awaiting `readable()` waits in a
                    // locked list.
                    std::task::ready!(socket.as_ref().poll_read_ready(cx))?;
                    buf.reserve(most);
                    // Through `poll_read`, not `try_read`: tokio takes a
                    // short read as the socket drained, which spares the
                    // `recv` that would only say so (one per small request).
                    let read = {
                        let mut room = (&mut *buf).limit(most);
                        std::pin::pin!(socket.read_buf(&mut room)).poll(cx)
                    };
                    // A read that filled its room leaves the readiness set
                    // though the socket may be empty: wait without the buffer.
                    if read.is_pending() && buf.is_empty() {
                        *buf = BytesMut::new();
                    }
                    read
                })
                .await
            }
            Source::Other(stream) => {
                buf.reserve(most);
                stream.read_buf(&mut (&mut *buf).limit(most)).await
            }
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
            match self.source.read_into(&mut self.pending, READ_AHEAD).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                // A TLS peer gone without its close_notify, between frames.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e.into()),
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
        let body = self.body(len as usize).await?;
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
        Ok(Some(Frame {
            body,
            _budget: budget,
        }))
    }

    /// The `len` bytes of the frame whose size was just read.
    async fn body(&mut self, len: usize) -> io::Result<Bytes> {
        if self.pending.len() >= len {
            // Copied out, so that a request held for long (a long poll)
            // does not keep the whole read buffer alive.
            let body = Bytes::copy_from_slice(&self.pending[..len]);
            self.pending.advance(len);
            return Ok(body);
        }
        // Read straight into the frame's spare capacity: zeroing it first
        // costs as much as a tenth of a produce. With nothing of the body in
        // hand yet, the room is taken when its bytes can be read.
        let mut body = BytesMut::new();
        if !self.pending.is_empty() {
            body.reserve(len);
            body.put(&mut self.pending);
        }
        while body.len() < len {
            let want = len - body.len();
            if self.source.read_into(&mut body, want).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(body.freeze())
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
    async fn a_frame_that_filled_its_reads_leaves_no_buffer_while_waiting() {
        let (mut reader, mut client) = pair().await;
        // The first read fills the read-ahead and the second the rest of
        // the body exactly: neither tells tokio the socket is drained.
        let body = vec![3u8; READ_AHEAD + 100];
        client.write_all(&framed(&body)).await.unwrap();
        assert_eq!(
            reader.read_frame(u32::MAX).await.unwrap().unwrap().body,
            body
        );
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        {
            let mut next = std::pin::pin!(reader.read_frame(u32::MAX));
            assert!(next.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(reader.pending.capacity(), 0);
    }

    /// A source that hands out one piece (or as much as fits) per read,
    /// then ends, or fails with the error given.
    struct Pieces(std::collections::VecDeque<Vec<u8>>, Option<io::ErrorKind>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if let Some(mut piece) = self.0.pop_front() {
                let rest = piece.split_off(piece.len().min(buf.remaining()));
                buf.put_slice(&piece);
                if !rest.is_empty() {
                    self.0.push_front(rest);
                }
            } else if let Some(kind) = self.1 {
                return std::task::Poll::Ready(Err(kind.into()));
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_size_and_a_body_split_anywhere_are_put_together() {
        let body: Vec<u8> = (0..3 * READ_AHEAD as u32).map(|i| i as u8).collect();
        let sent = [framed(&body), framed(b"next")].concat();
        for cut in [1, 2, 3, 5, READ_AHEAD, sent.len() - 9] {
            let pieces = [&sent[..cut], &sent[cut..cut + 1], &sent[cut + 1..]];
            let source = Source::Other(Box::new(Pieces(
                pieces.iter().map(|p| p.to_vec()).collect(),
                None,
            )));
            let mut reader = FrameReader::new(source, 1 << 20, &InFlight::new(1 << 20));
            assert_eq!(
                reader.read_frame(u32::MAX).await.unwrap().unwrap().body,
                body
            );
            assert_eq!(
                &reader.read_frame(u32::MAX).await.unwrap().unwrap().body[..],
                b"next"
            );
            assert!(reader.read_frame(u32::MAX).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_tls_peer_gone_without_close_notify_closes_cleanly_only_between_frames() {
        // rustls reports a peer gone without its close_notify as UnexpectedEof.
        let reader = |sent: &[u8]| {
            let pieces = Pieces([sent.to_vec()].into(), Some(io::ErrorKind::UnexpectedEof));
            FrameReader::new(
                Source::Other(Box::new(pieces)),
                1 << 20,
                &InFlight::new(1 << 20),
            )
        };
        let mut whole = reader(&framed(b"last"));
        let frame = whole.read_frame(u32::MAX).await.unwrap().unwrap();
        assert_eq!(&frame.body[..], b"last");
        assert!(whole.read_frame(u32::MAX).await.unwrap().is_none());
        let mut cut = reader(&framed(b"last")[..6]);
        assert!(matches!(
            cut.read_frame(u32::MAX).await,
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
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

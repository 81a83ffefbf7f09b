//! Framing: every Kafka request and response is a 4-byte big-endian size
//! followed by that many bytes. This module knows nothing else of Kafka.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

/// One client socket, read one frame at a time.
#[derive(Debug)]
pub struct Connection {
    stream: BufWriter<TcpStream>,
    max_frame_bytes: u32,
}

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {0} is outside 0..={1}")]
    BadSize(i32, u32),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Connection {
    /// Wraps an accepted socket; frames larger than `max_frame_bytes` close it.
    pub fn new(stream: TcpStream, max_frame_bytes: u32) -> Connection {
        // Responses are written whole; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        Connection {
            stream: BufWriter::new(stream),
            max_frame_bytes,
        }
    }

    /// The next whole frame, or `None` when the peer closed cleanly between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let mut size = [0u8; 4];
        match self.stream.read_exact(&mut size).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let size = i32::from_be_bytes(size);
        // The size is checked before anything is allocated for it.
        let len = u32::try_from(size)
            .ok()
            .filter(|&n| n <= self.max_frame_bytes)
            .ok_or(FrameError::BadSize(size, self.max_frame_bytes))?;
        let mut body = BytesMut::zeroed(len as usize);
        self.stream.read_exact(&mut body).await?;
        Ok(Some(body.freeze()))
    }

    /// Writes one frame (the caller includes the size prefix) and flushes it.
    pub async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.stream.write_all(frame).await?;
        self.stream.flush().await
    }

    /// Writes a frame made of several buffers (e.g. header, then record bytes) and flushes.
    pub async fn write_parts(&mut self, parts: &[Bytes]) -> io::Result<()> {
        for part in parts {
            self.stream.write_all(part).await?;
        }
        self.stream.flush().await
    }
}

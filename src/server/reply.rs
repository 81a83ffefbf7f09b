//! A connection's writing half: its replies in order, each bounded by how
//! long the client may take nothing of it (`connections_max_idle_ms`) and,
//! once the broker stops, by `shutdown_reply_timeout_ms`.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::pipeline;
use crate::connection::{Chunk, Frame, FrameWriter, Progress};
use crate::handler::Reply;
use crate::shutdown::Stop;

/// How long replies may take to go out: a client that stops reading must
/// neither hold its connection (and the segment files of its queued
/// answers) for ever nor keep the broker from stopping.
pub(super) struct WriteLimits {
    /// A reply that takes nothing of the client for this long closes the
    /// connection.
    pub(super) idle: Duration,
    /// Once `stop` is set, replies not out this much later are dropped with
    /// the connection.
    pub(super) after_stop: Duration,
    pub(super) stop: Stop,
}

pub(super) async fn write_replies(
    writer: &mut FrameWriter,
    peer: SocketAddr,
    replies: pipeline::Writer<'_, (Frame, Reply)>,
    limits: &WriteLimits,
) {
    let progress = writer.progress();
    // Set by the first reply that waits on the client after the stop.
    let mut cut_at = None;
    while let Some((frame, reply)) = replies.recv().await {
        let parts = match reply {
            Reply::Frame(parts) => parts,
            Reply::Nothing => continue,
            Reply::Deferred(answer) => match answer.await {
                Ok(parts) => parts,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break;
                }
            },
        };
        let sent = send_reply(writer, &parts, (&progress, limits, &mut cut_at)).await;
        let written = match sent {
            Ok(written) => written,
            Err(why) => {
                tracing::info!(%peer, "closing connection: {why}");
                break;
            }
        };
        if let Err(e) = written {
            tracing::debug!(%peer, error = %e, "write failed");
            break;
        }
        drop(frame);
    }
    // The client sees the end of the stream now, not once the reading
    // half is done too.
    writer.end().await;
}

/// Writes one reply; `Err` when the connection is to close first (see
/// [`wait_out`]). Most replies go out at once. Only one that waits on the
/// client arms timers, in a future of its own on the heap: inline, their
/// state would sit in every connection's task.
async fn send_reply(
    writer: &mut FrameWriter,
    parts: &[Chunk],
    limits: (&Progress, &WriteLimits, &mut Option<Instant>),
) -> Result<std::io::Result<()>, &'static str> {
    let mut write = pin!(writer.write_parts(parts));
    match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        Poll::Ready(written) => Ok(written),
        Poll::Pending => Box::pin(wait_out(write.as_mut(), limits)).await,
    }
}

/// Drives `write`, a reply waiting on the client, to its end; `Err` when
/// the connection is to close first: the client has taken no byte for the
/// idle time (looked at in quarters of it, so within 1.25 times it), or
/// the stop is `after_stop` old (from when a reply first waited after it,
/// `cut_at`). Over TLS a byte counts once the TLS layer takes it, up to its
/// buffer (64 KiB) ahead of the socket.
async fn wait_out(
    mut write: Pin<&mut impl Future<Output = std::io::Result<()>>>,
    (progress, limits, cut_at): (&Progress, &WriteLimits, &mut Option<Instant>),
) -> Result<std::io::Result<()>, &'static str> {
    let cut = async {
        limits.stop.wait().await;
        let at = *cut_at.get_or_insert_with(|| Instant::now() + limits.after_stop);
        tokio::time::sleep_until(at).await;
    };
    tokio::pin!(cut);
    let mut still = 0;
    loop {
        let before = progress.get();
        tokio::select! {
            // A write that went on wins over a deadline met at the same time.
            biased;
            written = write.as_mut() => return Ok(written),
            () = tokio::time::sleep(limits.idle / 4) => {
                still = if progress.get() == before { still + 1 } else { 0 };
                if still >= 4 {
                    return Err("the client took nothing of its reply for connections_max_idle_ms");
                }
            }
            () = cut.as_mut() => {
                return Err("its replies were not out within shutdown_reply_timeout_ms of the stop");
            }
        }
    }
}

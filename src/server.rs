//! The accept loop and the per-connection loop (one task each).
//!
//! A connection reads a frame, handles it and writes the response before it
//! reads the next, so responses leave in request order. Malformed input closes
//! only that connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::connection::Connection;
use crate::handler::{self, Context, Reply};

/// Serves `listener` until `shutdown` turns true, then waits for every
/// connection to finish the request it is handling.
pub async fn run(listener: TcpListener, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(ctx.config.max_connections));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            serve(socket, peer, &ctx, shutdown).await;
            drop(permit);
            drop(done);
        });
    }
    drop(done_tx);
    // Every connection task holds a sender; recv() returns None once all have ended.
    let _ = done_rx.recv().await;
}

async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: &Context,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "connection opened");
    let mut conn = Connection::new(socket, ctx.config.socket_request_max_bytes);
    let idle = Duration::from_millis(ctx.config.connections_max_idle_ms);
    loop {
        let frame = tokio::select! {
            read = tokio::time::timeout(idle, conn.read_frame()) => match read {
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break;
                }
                Err(_) => {
                    tracing::debug!(%peer, "closing idle connection");
                    break;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        match handler::handle(ctx, frame).await {
            Ok(Reply::Frame(parts)) => {
                if let Err(e) = conn.write_parts(&parts).await {
                    tracing::debug!(%peer, error = %e, "write failed");
                    break;
                }
            }
            Ok(Reply::Nothing) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection after a bad request");
                break;
            }
        }
    }
    tracing::debug!(%peer, "connection closed");
}

/// Resolves once the stop signal is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

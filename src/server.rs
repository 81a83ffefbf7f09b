//! The accept loop and the per-connection loop (one task each).
//!
//! A connection reads a frame, handles it and writes the response before it
//! reads the next, so responses leave in request order. Malformed input closes
//! only that connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::connection::{Connection, InFlight};
use crate::handler::{self, Context, Reply};

/// Serves `listener` until `shutdown` turns true, then waits for every
/// connection to finish the request it is handling.
pub async fn run(listener: TcpListener, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(ctx.config.max_connections));
    let per_ip = PerIp::default();
    let budget = InFlight::new(ctx.config.queued_max_request_bytes);
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
        let Some(slot) = per_ip.take(peer.ip(), ctx.config.max_connections_per_ip) else {
            tracing::warn!(%peer, "closing connection: too many from this address");
            continue;
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let done = done_tx.clone();
        let conn = Connection::new(socket, ctx.config.socket_request_max_bytes, &budget);
        tokio::spawn(async move {
            serve(conn, peer, &ctx, shutdown).await;
            drop((permit, slot, done));
        });
    }
    drop(done_tx);
    // Every connection task holds a sender; recv() returns None once all have ended.
    let _ = done_rx.recv().await;
}

async fn serve(
    mut conn: Connection,
    peer: SocketAddr,
    ctx: &Context,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "connection opened");
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
        // The frame's share of the in-flight budget is held until the answer is written.
        match handler::handle(ctx, frame.body.clone()).await {
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

/// Open connections per client address.
#[derive(Debug, Default, Clone)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in [`PerIp`], given back on drop.
#[derive(Debug)]
struct Slot(PerIp, IpAddr);

impl PerIp {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.1);
            }
        }
    }
}

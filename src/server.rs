//! The accept loop and the per-connection loop (one task each).
//!
//! A connection handles its requests one after another, in order, and its
//! answers leave in the same order; an answer that waits (for an fsync) does
//! not stop the next requests from being handled. Malformed input closes only
//! that connection.

mod pipeline;
mod reply;
mod tcp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use tokio_rustls::TlsAcceptor;

use crate::connection::{Connection, Frame, FrameReader, InFlight, Progress};
use crate::handler::{self, Context, Reply};
use crate::session::Session;
use crate::shutdown::{Stop, Stops, stopped};
use reply::{WriteLimits, write_replies};

/// The broker-wide connection limits, shared by every listener:
/// `max_connections`, `max_connections_per_ip` and `queued_max_request_bytes`.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    connections: Arc<Semaphore>,
    per_ip: PerIp,
    budget: InFlight,
}

impl Limits {
    pub(crate) fn new(config: &crate::config::Config) -> Limits {
        Limits {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            per_ip: PerIp::default(),
            budget: InFlight::new(config.queued_max_request_bytes),
        }
    }
}

/// Serves `listener` until `shutdown` turns true, then waits for every
/// connection to finish the request it is handling (or, once `kill` turns
/// true, closes them at once).
pub(crate) async fn run(
    listener: TcpListener,
    ctx: Arc<Context>,
    (tls, limits): (Option<(TlsAcceptor, Duration)>, Limits),
    (mut shutdown, kill): (watch::Receiver<bool>, Option<watch::Receiver<bool>>),
) {
    let Limits {
        connections: limit,
        per_ip,
        budget,
    } = limits;
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let stops = Stops::default();
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
        tcp::tune(&socket, peer, &ctx.config.loopback_congestion_control);
        let signals = (stops.register(), kill.clone());
        tokio::spawn(open_and_serve(
            (socket, peer),
            (ctx.clone(), tls.clone(), budget.clone()),
            signals,
            (permit, slot, done_tx.clone()),
        ));
    }
    // The port is free as soon as accepting ends.
    drop(listener);
    stops.stop_all();
    drop(done_tx);
    // Every connection task holds a sender; recv() returns None once all have ended.
    let _ = done_rx.recv().await;
}

/// One accepted connection's task: its TLS handshake if the listener has
/// TLS, then its requests. `_held` (its share of the connection limits, and
/// the sender whose drop tells the listener it has ended) goes at the end.
async fn open_and_serve(
    (socket, peer): (tokio::net::TcpStream, SocketAddr),
    (ctx, tls, budget): (Arc<Context>, Option<(TlsAcceptor, Duration)>, InFlight),
    signals: (Stop, Option<watch::Receiver<bool>>),
    _held: (OwnedSemaphorePermit, Slot, mpsc::Sender<()>),
) {
    let max_frame = ctx.config.socket_request_max_bytes;
    let opened = match tls {
        None => Some((Connection::new(socket, max_frame, &budget), None)),
        // A stop does not wait out a stalled handshake.
        Some(tls) => tokio::select! {
            opened = handshake(tls, socket, peer, max_frame, &budget) => opened,
            () = signals.0.wait() => None,
        },
    };
    if let Some((conn, principal)) = opened {
        serve(conn, (peer, principal), &ctx, signals).await;
    }
}

/// The TLS handshake of an accepted socket (within `limit`): the connection, and the
/// principal of a verified client certificate. `None`: the handshake failed
/// (garbage, an untrusted or missing certificate, a stalled client).
async fn handshake(
    (acceptor, limit): (TlsAcceptor, Duration),
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    max_frame: u32,
    budget: &InFlight,
) -> Option<(Connection, Option<String>)> {
    let _ = socket.set_nodelay(true);
    match tokio::time::timeout(limit, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => {
            let principal = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| crate::security::tls::principal(cert));
            Some((Connection::tls(stream, max_frame, budget), principal))
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Answers waiting to be written per connection; beyond it, reading pauses.
const PIPELINE_DEPTH: usize = 32;

/// One connection: the reader handles requests in order and queues their
/// replies; the writer sends them in the same order, waiting on a deferred
/// one (a produce awaiting its group-commit fsync) while the reader goes on.
async fn serve(
    mut conn: Connection,
    (peer, principal): (SocketAddr, Option<String>),
    ctx: &Context,
    (stop, kill): (Stop, Option<watch::Receiver<bool>>),
) {
    tracing::debug!(%peer, "connection opened");
    // The connection's task is sized to stay in the allocator's 3 KiB
    // class (2.8 KiB of future): an argument moved into an async fn is
    // stored twice in its state, so the halves get the session, the
    // sockets and the limits by reference, and the session (0.3 KiB) is
    // boxed. Past 4 KiB (as once with the writer's limits) a connection
    // costs 5.
    let mut session = Box::new(ctx.clients.open(peer, ctx.listener.sasl()));
    if let Some(principal) = principal {
        session.auth.set_certificate_principal(principal);
        session.authenticated();
    }
    session.stop = stop.clone();
    let replies = pipeline::Queue::new(PIPELINE_DEPTH);
    // Replies going out count as activity for the reader's idle time too.
    let sent = conn.writer.progress();
    // Pinned here, so that each half is stored once in the task: passed by
    // value to `both` and on to `select!`, they were stored three times
    // over (this future was 20.1 KiB).
    let reader = pin!(read_requests(
        (&mut conn.reader, &sent),
        (peer, &mut session),
        ctx,
        replies.reader()
    ));
    let limits = WriteLimits {
        idle: Duration::from_millis(ctx.config.connections_max_idle_ms),
        after_stop: Duration::from_millis(ctx.config.shutdown_reply_timeout_ms),
        stop,
    };
    let mut writer = pin!(write_replies(
        &mut conn.writer,
        peer,
        replies.writer(),
        &limits
    ));
    let served = pipeline::both(reader, writer.as_mut());
    match kill {
        // A test cluster's node going down drops whatever the connection
        // was doing (reading, handling, writing), and its socket.
        Some(mut kill) => tokio::select! {
            _ = served => {}
            _ = stopped(&mut kill) => {}
        },
        None => {
            served.await;
        }
    }
    tracing::debug!(%peer, "connection closed");
}

async fn read_requests(
    (reader, sent): (&mut FrameReader, &Progress),
    (peer, session): (SocketAddr, &mut Session),
    ctx: &Context,
    replies: pipeline::Reader<'_, (Frame, Reply)>,
) {
    let idle = Duration::from_millis(ctx.config.connections_max_idle_ms);
    // One timer for the connection's life, moved on only when it fires: a
    // timer set again for every request costs an idle long-poller more than
    // its own fetch does.
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    while let Some(frame) = next_frame((reader, sent), timer.as_mut(), (peer, session), ctx).await {
        // Boxed: the state of the largest handler would otherwise sit in
        // every connection's task between requests (8.6 KiB -> 5.9 when it
        // was boxed).
        match Box::pin(handler::handle(ctx, frame.body.clone(), session)).await {
            // The frame (and its share of the in-flight budget) lives until its answer is written.
            Ok(reply) => {
                if replies.send((frame, reply)).await.is_err() {
                    break;
                }
                if session.auth.closing() {
                    // A failed SASL authentication: its answer goes out, then the connection closes.
                    tracing::info!(%peer, "closing connection after a failed authentication");
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection after a bad request");
                break;
            }
        }
    }
}

/// The connection's next request, or `None` when it is to close: the peer
/// closed or sent a bad frame, it sat idle for `connections_max_idle_ms`
/// (neither sending nor taking a reply, as `sent` tells), or the broker is
/// stopping. `timer` is the connection's one idle timer.
async fn next_frame(
    (reader, sent): (&mut FrameReader, &Progress),
    mut timer: Pin<&mut tokio::time::Sleep>,
    (peer, session): (SocketAddr, &Session),
    ctx: &Context,
) -> Option<Frame> {
    // Once the broker stops, the request in hand was the last: a client
    // that keeps sending would otherwise hold the stop open.
    if session.stop.is_set() {
        return None;
    }
    let idle = Duration::from_millis(ctx.config.connections_max_idle_ms);
    let waiting_since = Instant::now();
    let read = reader.read_frame(frame_limit(ctx, session));
    tokio::pin!(read);
    let read = loop {
        tokio::select! {
            // A request that has arrived wins over the idle deadline.
            biased;
            read = &mut read => break read,
            _ = &mut timer => {
                // A client still taking a long reply is not idle.
                let active = sent
                    .last_at()
                    .map_or(waiting_since, |at| Instant::from_std(at).max(waiting_since));
                let due = active + idle;
                if Instant::now() >= due {
                    tracing::debug!(%peer, "closing idle connection");
                    return None;
                }
                timer.as_mut().reset(due);
            }
            () = session.stop.wait() => return None,
        }
    };
    match read {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "closing connection");
            None
        }
    }
}

/// The largest frame this connection may send now: before a SASL login,
/// only `sasl.max_receive_size` (Kafka's `sasl.server.max.receive.size`).
fn frame_limit(ctx: &Context, session: &Session) -> u32 {
    if session.auth.logged_out() {
        ctx.config
            .sasl
            .max_receive_size
            .min(ctx.config.socket_request_max_bytes)
    } else {
        ctx.config.socket_request_max_bytes
    }
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

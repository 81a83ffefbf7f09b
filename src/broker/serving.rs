//! The nodes a broker serves: each node's listeners, started and stopped on
//! their own. A single broker serves one node (with all its listeners); a
//! test cluster serves several over the same catalog, and can take one down
//! (its listeners and connections close at once) and bring it back on the
//! same port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::split_host_port;
use crate::data_dir::DirLock;
use crate::error::{Error, Result, io_err};
use crate::handler::Context;
use crate::security::SecurityProtocol;
use crate::server;

/// A bound listener of a node, not yet served.
#[derive(Debug)]
pub(super) struct Bound {
    pub protocol: SecurityProtocol,
    pub listener: TcpListener,
    pub addr: SocketAddr,
    /// The host and port Metadata gives the listener's clients.
    pub advertised: (String, u16),
}

/// Binds one listener; it advertises `advertised` (HOST:PORT) or its own address.
pub(super) async fn bind_listener(
    protocol: SecurityProtocol,
    bind: &str,
    advertised: Option<String>,
) -> Result<Bound> {
    let listener = TcpListener::bind(bind).await.map_err(io_err(bind))?;
    let addr = listener.local_addr().map_err(io_err(bind))?;
    let advertised = match advertised {
        Some(adv) => split_host_port(&adv).map_err(Error::Config)?,
        None => (addr.ip().to_string(), addr.port()),
    };
    Ok(Bound {
        protocol,
        listener,
        addr,
        advertised,
    })
}

/// A test cluster's bind addresses: `listen`'s port and the ones after it
/// (port 0: any free port for each node).
pub(super) fn cluster_binds(config: &crate::Config) -> Result<Vec<String>> {
    let (host, port) = split_host_port(&config.listen).map_err(Error::Config)?;
    let too_few = || {
        Error::Config(format!(
            "listen = {:?}: no room for {} ports",
            config.listen, config.brokers
        ))
    };
    (0..config.brokers as u16)
        .map(|i| match port {
            0 => Ok(format!("{host}:0")),
            p => p
                .checked_add(i)
                .map(|p| format!("{host}:{p}"))
                .ok_or_else(too_few),
        })
        .collect()
}

/// One node being served.
#[derive(Debug)]
struct Node {
    listeners: Vec<(SecurityProtocol, SocketAddr)>,
    /// Turns true to stop: accepting stops, connections end after the request they handle.
    stop: watch::Sender<bool>,
    /// Turns true to take the node down: connections close at once.
    kill: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The served nodes and what a node needs to be served again.
pub(super) struct Serving {
    /// The context every node's listeners share, before their own fields.
    template: Context,
    tls: Option<(TlsAcceptor, Duration)>,
    limits: server::Limits,
    /// Held by every node's task: a broker dropped without shutdown keeps
    /// the data directory locked until its tasks are gone.
    lock: Arc<DirLock>,
    nodes: Mutex<BTreeMap<i32, Node>>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("nodes", &self.lock_nodes().keys().collect::<Vec<_>>())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Serving {
    pub(super) fn new(
        template: Context,
        tls: Option<(TlsAcceptor, Duration)>,
        lock: Arc<DirLock>,
    ) -> Serving {
        let limits = server::Limits::new(&template.config);
        Serving {
            template,
            tls,
            limits,
            lock,
            nodes: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `bound` as node `node`: one accept loop per listener, each
    /// with its own view of the context (node id, security protocol,
    /// advertised address).
    pub(super) fn start(&self, node: i32, bound: Vec<Bound>) {
        let (stop, stop_rx) = watch::channel(false);
        let (kill, kill_rx) = watch::channel(false);
        // Only a test cluster's nodes are ever killed.
        let kill_rx = self.template.nodes.is_cluster().then_some(kill_rx);
        let listeners = bound.iter().map(|b| (b.protocol, b.addr)).collect();
        let mut servers = Vec::new();
        for b in bound {
            let ctx = Arc::new(Context {
                node,
                advertised: (b.advertised.0, i32::from(b.advertised.1)),
                listener: b.protocol,
                ..self.template.clone()
            });
            let tls = self.tls.clone().filter(|_| b.protocol.tls());
            servers.push(tokio::spawn(server::run(
                b.listener,
                ctx,
                (tls, self.limits.clone()),
                (stop_rx.clone(), kill_rx.clone()),
            )));
        }
        let lock = self.lock.clone();
        let task = tokio::spawn(async move {
            for s in servers {
                let _ = s.await;
            }
            drop(lock);
        });
        let served = Node {
            listeners,
            stop,
            kill,
            task,
        };
        self.lock_nodes().insert(node, served);
    }

    /// The listeners of `node`, while it is served.
    pub(super) fn listeners(&self, node: i32) -> Option<Vec<(SecurityProtocol, SocketAddr)>> {
        self.lock_nodes().get(&node).map(|n| n.listeners.clone())
    }

    /// Stops serving `node`: its listeners close, and its connections close
    /// at once (`kill`) or after the request each is handling. Returns the
    /// listeners it had.
    pub(super) async fn stop(
        &self,
        node: i32,
        kill: bool,
    ) -> Option<Vec<(SecurityProtocol, SocketAddr)>> {
        let served = self.lock_nodes().remove(&node)?;
        if kill {
            let _ = served.kill.send(true);
        }
        let _ = served.stop.send(true);
        let _ = served.task.await;
        Some(served.listeners)
    }

    /// Stops every node, letting each connection answer what it is handling.
    pub(super) async fn stop_all(&self) {
        let served = std::mem::take(&mut *self.lock_nodes());
        for node in served.values() {
            let _ = node.stop.send(true);
        }
        for (_, node) in served {
            let _ = node.task.await;
        }
    }
}

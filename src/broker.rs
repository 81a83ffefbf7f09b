//! The in-process broker: open the catalog, bind, serve, and stop cleanly.
//!
//! ```no_run
//! # async fn demo() -> sluice::Result<()> {
//! let config = sluice::Config { listen: "127.0.0.1:0".into(), ..Default::default() };
//! let broker = sluice::Broker::start(config).await?;
//! println!("bootstrap.servers={}", broker.bootstrap());
//! broker.shutdown().await
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::cleaner::Cleaner;
use crate::cluster::Nodes;
use crate::config::{Config, FlushMode};
use crate::data_dir::DirLock;
use crate::dynamic_config::DynamicConfigs;
use crate::error::{Error, Result, io_err};
use crate::faults::Faults;
use crate::group::Coordinator;
use crate::handler::Context;
use crate::observe::{Metrics, http};
use crate::security::SecurityProtocol;
use crate::security::credentials::Credentials;
use crate::session::Clients;
use crate::storage::{Disk, OpenSegments, RealDisk};
use crate::txn::TxnCoordinator;

mod cluster_ops;
mod serving;

pub(crate) use cluster_ops::Control;
use serving::{Bound, Serving, bind_listener};

/// A running broker. Dropping it without [`Broker::shutdown`] leaves the logs
/// to be recovered at the next start, like a crash.
#[derive(Debug)]
pub struct Broker {
    addr: SocketAddr,
    listeners: Vec<(SecurityProtocol, SocketAddr)>,
    http_addr: Option<SocketAddr>,
    catalog: Arc<Catalog>,
    cleaner: Cleaner,
    groups: Arc<Coordinator>,
    txns: Arc<TxnCoordinator>,
    stop: watch::Sender<bool>,
    /// The nodes served (one, or a test cluster's), and faults.
    control: Arc<Control>,
    metrics: Arc<Metrics>,
    background: Vec<JoinHandle<()>>,
    /// Released after the logs are closed (fields drop after `shutdown`'s body).
    _lock: Arc<DirLock>,
}

impl Broker {
    /// Validates `config`, opens the data directory, binds and starts serving.
    pub async fn start(config: Config) -> Result<Broker> {
        Broker::start_on(config, Arc::new(RealDisk)).await
    }

    /// [`Broker::start`] with the partition logs' file operations on `disk`:
    /// for tests that make the disk fail (see `storage::testing::FaultyDisk`).
    pub async fn start_on(config: Config, disk: Arc<dyn Disk>) -> Result<Broker> {
        if config.brokers <= 1 {
            return Broker::start_nodes(config, disk, None).await;
        }
        let binds = serving::cluster_binds(&config)?;
        Broker::start_nodes(config, disk, Some(binds)).await
    }

    /// Starts a broker, or with `cluster` (each node's bind address) a test
    /// cluster of nodes 1..=n, each with one PLAINTEXT listener, sharing
    /// the data directory.
    pub(crate) async fn start_nodes(
        config: Config,
        disk: Arc<dyn Disk>,
        cluster: Option<Vec<String>>,
    ) -> Result<Broker> {
        let started = Instant::now();
        config.validate().map_err(Error::Config)?;
        // IMPORTANT: nothing in the data directory is read or written before this.
        let lock = Arc::new(DirLock::acquire(&config.data_dir)?);
        let dynamic = Arc::new(DynamicConfigs::open(&config.data_dir, config.log.clone())?);
        let log_config = dynamic.log_defaults();
        let data_dir = config.data_dir.clone();
        let files = (disk, OpenSegments::new(config.max_open_segment_files));
        let catalog =
            tokio::task::spawn_blocking(move || Catalog::open_on(&data_dir, log_config, files))
                .await
                .map_err(|e| {
                    Error::Config(format!("opening the data directory panicked: {e}"))
                })??;
        let catalog = Arc::new(catalog);
        let (data_dir, group_config) = (config.data_dir.clone(), config.group.clone());
        let flush_always = config.flush == FlushMode::Always;
        let groups = tokio::task::spawn_blocking(move || {
            Coordinator::open(&data_dir, group_config, flush_always)
        })
        .await
        .map_err(|e| Error::Config(format!("opening the offsets log panicked: {e}")))??;
        let groups = Arc::new(groups);
        let c = catalog.clone();
        let max_timeout = config.transaction_max_timeout_ms;
        let g = groups.clone();
        let txns = tokio::task::spawn_blocking(move || {
            TxnCoordinator::recover(&c, g, (flush_always, max_timeout))
        })
        .await
        .map_err(|e| Error::Config(format!("recovering transactions panicked: {e}")))??;
        let txns = Arc::new(txns);
        // Each node's listeners: one node with every configured listener,
        // or a cluster's nodes 1..=n with one PLAINTEXT listener each.
        let mut bound: Vec<(i32, Vec<Bound>)> = Vec::new();
        match &cluster {
            None => {
                let mut listeners = Vec::new();
                for (protocol, bind, advertised) in
                    config.listener_specs().map_err(Error::Config)?
                {
                    listeners.push(bind_listener(protocol, &bind, advertised).await?);
                }
                bound.push((config.node_id, listeners));
            }
            Some(binds) => {
                for (id, bind) in (1..).zip(binds) {
                    let listener = bind_listener(SecurityProtocol::Plaintext, bind, None).await?;
                    bound.push((id, vec![listener]));
                }
            }
        }
        let nodes = Arc::new(match &cluster {
            None => Nodes::single(config.node_id),
            Some(_) => Nodes::cluster(bound.iter().map(|(id, b)| {
                let (host, port) = b[0].advertised.clone();
                (*id, (host, i32::from(port)))
            })),
        });
        let (addr, listeners): (SocketAddr, Vec<(SecurityProtocol, SocketAddr)>) =
            match bound.first() {
                Some((_, b)) if !b.is_empty() => {
                    (b[0].addr, b.iter().map(|l| (l.protocol, l.addr)).collect())
                }
                _ => return Err(Error::Config("no listener".into())),
            };
        let users: Vec<(String, String)> = config
            .sasl
            .users
            .iter()
            .map(|u| (u.name.clone(), u.password.clone()))
            .collect();
        let credentials = Arc::new(Credentials::open(&config.data_dir, &users)?);
        let tls = match &config.tls {
            Some(tls) if listeners.iter().any(|(p, _)| p.tls()) => Some((
                tls.acceptor().map_err(Error::Config)?,
                std::time::Duration::from_millis(tls.handshake_timeout_ms),
            )),
            _ => None,
        };
        let http = bind_http(&config).await?;
        let config = Arc::new(config);
        let (stop, stop_rx) = watch::channel(false);
        let clients = Arc::new(Clients::default());
        let metrics = Arc::new(Metrics::new(
            catalog.clone(),
            groups.clone(),
            clients.clone(),
        ));
        let mut acls = crate::acl::Acls::open(&config.data_dir)?;
        if config.authorizer {
            acls = acls.enforce(&config.super_users);
        }
        let faults = Arc::new(Faults::default());
        let ctx = Context {
            catalog: catalog.clone(),
            config: config.clone(),
            node: config.node_id,
            nodes: nodes.clone(),
            faults: faults.clone(),
            advertised: (String::new(), 0),
            listener: SecurityProtocol::Plaintext,
            groups: groups.clone(),
            txns: txns.clone(),
            metrics: metrics.clone(),
            clients: clients.clone(),
            quotas: Arc::new(crate::quotas::ClientQuotas::open(&config.data_dir)?),
            acls: Arc::new(acls),
            dynamic,
            credentials,
            fetch_sessions: Arc::new(crate::handler::FetchSessions::new(
                config.max_incremental_fetch_session_cache_slots,
            )),
        };
        let cleaner = Cleaner::start((&catalog, &groups, &txns), &config, &lock)
            .map_err(io_err("log cleaner thread"))?;
        let mut background = background_tasks(&catalog, &config);
        background.push(transaction_timeouts(catalog.clone(), txns.clone()));
        background.push(groups.spawn_timer(stop_rx.clone()));
        let http_stop = stop_rx.clone();
        let serving = Serving::new(ctx, tls, lock.clone());
        let binds = bound
            .iter()
            .filter_map(|(node, listeners)| Some((*node, listeners.first()?.addr)))
            .collect();
        for (node, listeners) in bound {
            serving.start(node, listeners);
        }
        let control = Arc::new(Control {
            serving,
            nodes,
            faults,
            binds,
            changing: tokio::sync::Mutex::new(false),
        });
        let http_addr = match http {
            Some(listener) => {
                let addr = listener.local_addr().ok();
                let shared = http::Shared {
                    catalog: catalog.clone(),
                    groups: groups.clone(),
                    clients,
                    metrics: metrics.clone(),
                    control: cluster.is_some().then(|| control.clone()),
                };
                background.push(tokio::spawn(http::serve(listener, shared, http_stop)));
                addr
            }
            None => None,
        };
        let node_addrs: Vec<String> = match &cluster {
            None => vec![addr.to_string()],
            Some(_) => control
                .nodes
                .live()
                .into_iter()
                .filter_map(|(_, a)| a.map(|(host, port)| format!("{host}:{port}")))
                .collect(),
        };
        tracing::info!(
            %addr,
            nodes = %node_addrs.join(","),
            http = %http_addr.map_or("off".to_string(), |a| a.to_string()),
            data_dir = %config.data_dir.display(),
            topics = catalog.topics().len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "sluice is ready"
        );
        Ok(Broker {
            addr,
            listeners,
            http_addr,
            catalog,
            cleaner,
            groups,
            txns,
            stop,
            control,
            metrics,
            background,
            _lock: lock,
        })
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the HTTP server (status page, `/metrics`), when it runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Every listener: its security protocol and bound address, in the
    /// order of `listeners`.
    pub fn listeners(&self) -> &[(SecurityProtocol, SocketAddr)] {
        &self.listeners
    }

    /// `host:port` for a client's `bootstrap.servers` (the first listener).
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The topics and partitions (for tests and embedding).
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Stops accepting, answers the requests in flight, then flushes every log
    /// and marks it clean.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.control.close().await;
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        let cleaner = self.cleaner;
        let _ = tokio::task::spawn_blocking(move || cleaner.stop()).await;
        let (groups, txns) = (self.groups, self.txns);
        let groups_closed = tokio::task::spawn_blocking(move || groups.close().and(txns.close()))
            .await
            .map_err(|e| Error::Config(format!("closing the internal logs panicked: {e}")))?;
        let catalog = self.catalog;
        let closed = tokio::task::spawn_blocking(move || catalog.close())
            .await
            .map_err(|e| Error::Config(format!("closing panicked: {e}")))?;
        tracing::info!("sluice stopped");
        groups_closed.and(closed)
    }
}

/// Aborts transactions past their timeout, checked every second.
fn transaction_timeouts(catalog: Arc<Catalog>, txns: Arc<TxnCoordinator>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            txns.abort_expired(&catalog).await;
        }
    })
}

fn background_tasks(catalog: &Arc<Catalog>, config: &Config) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(crate::memory::give_back_freed_buffers())];
    let c = catalog.clone();
    let every = Duration::from_millis(config.retention_check_interval_ms);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let c = c.clone();
            let _ = tokio::task::spawn_blocking(move || c.apply_retention()).await;
        }
    }));
    // Sealed segments are fsynced soon after they roll, off the produce path,
    // and the recovery points move forward with them.
    let c = catalog.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            c.rolled().await;
            c.flush_rolled().await;
        }
    }));
    if config.flush == FlushMode::Interval {
        let c = catalog.clone();
        let every = Duration::from_millis(config.flush_interval_ms);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                for topic in c.topics() {
                    for partition in topic.partitions() {
                        let _ = partition.flush().await;
                    }
                }
                if let Err(e) = c.write_recovery_points() {
                    tracing::warn!(error = %e, "cannot write the recovery point checkpoint");
                }
            }
        }));
    }
    tasks
}

/// Binds the HTTP server's address (`http_listen`), if it is on. An address
/// given explicitly that cannot be bound stops start-up; the default one
/// (taken by another broker on this machine) only warns.
async fn bind_http(config: &Config) -> Result<Option<TcpListener>> {
    let Some(addr) = config.http_address() else {
        return Ok(None);
    };
    match TcpListener::bind(&addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if config.http_default => {
            tracing::warn!(%addr, error = %e, "the default HTTP port is taken; running without the status page and metrics");
            Ok(None)
        }
        Err(e) => Err(Error::Config(format!("http_listen = {addr:?}: {e}"))),
    }
}

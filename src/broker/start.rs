//! Start-up, step by step: open what the data directory holds, bind each
//! node's listeners, build the context the handlers share, and start the
//! background tasks. [`super::Broker::start_nodes`] runs the steps in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::Control;
use super::serving::{Bound, bind_listener};
use crate::catalog::Catalog;
use crate::cluster::Nodes;
use crate::config::{Config, FlushMode};
use crate::data_dir::DirLock;
use crate::dynamic_config::DynamicConfigs;
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::group::Coordinator;
use crate::handler::Context;
use crate::observe::{Metrics, http};
use crate::security::SecurityProtocol;
use crate::security::credentials::Credentials;
use crate::session::Clients;
use crate::storage::{Disk, OpenSegments};
use crate::txn::TxnCoordinator;

/// What the data directory holds, opened. Fields drop in order: a start
/// that fails after opening them closes them in the reverse of the order
/// they were opened in, and lets go of the directory last.
pub(super) struct Stores {
    pub txns: Arc<TxnCoordinator>,
    pub groups: Arc<Coordinator>,
    pub catalog: Arc<Catalog>,
    pub dynamic: Arc<DynamicConfigs>,
    pub lock: Arc<DirLock>,
}

/// Locks the data directory, then opens the partition logs, the offsets
/// log and the transaction state, each on a blocking thread.
pub(super) async fn open_stores(config: &Config, disk: Arc<dyn Disk>) -> Result<Stores> {
    // IMPORTANT: nothing in the data directory is read or written before this.
    let lock = Arc::new(DirLock::acquire(&config.data_dir)?);
    let dynamic = Arc::new(DynamicConfigs::open(&config.data_dir, config.log.clone())?);
    let log_config = dynamic.log_defaults();
    let data_dir = config.data_dir.clone();
    let files = (disk, OpenSegments::new(config.max_open_segment_files));
    let catalog = blocking("opening the data directory", move || {
        Catalog::open_on(&data_dir, log_config, files)
    })
    .await?;
    let catalog = Arc::new(catalog);
    let (data_dir, group_config) = (config.data_dir.clone(), config.group.clone());
    let files = catalog.files();
    let flush_always = config.flush == FlushMode::Always;
    if flush_always {
        catalog.read_only_synced();
    }
    let groups = blocking("opening the offsets log", move || {
        Coordinator::open((&data_dir, files), group_config, flush_always)
    })
    .await?;
    let groups = Arc::new(groups);
    let (c, g) = (catalog.clone(), groups.clone());
    let max_timeout = config.transaction_max_timeout_ms;
    let txns = blocking("recovering transactions", move || {
        TxnCoordinator::recover(&c, g, (flush_always, max_timeout))
    })
    .await?;
    Ok(Stores {
        txns: Arc::new(txns),
        groups,
        catalog,
        dynamic,
        lock,
    })
}

/// Runs `open` on a blocking thread; a panic there is a start-up error.
async fn blocking<T, F>(what: &str, open: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| Error::Config(format!("{what} panicked: {e}")))?
}

/// Each node's listeners: one node with every configured listener, or a
/// cluster's nodes 1..=n with one PLAINTEXT listener each.
pub(super) async fn bind_nodes(
    config: &Config,
    cluster: Option<&[String]>,
) -> Result<Vec<(i32, Vec<Bound>)>> {
    let mut bound = Vec::new();
    match cluster {
        None => {
            let mut listeners = Vec::new();
            for (protocol, bind, advertised) in config.listener_specs().map_err(Error::Config)? {
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
    Ok(bound)
}

/// The nodes Metadata lists: the broker itself, or each cluster node at
/// its first listener's advertised address.
pub(super) fn nodes(config: &Config, bound: &[(i32, Vec<Bound>)], cluster: bool) -> Nodes {
    if !cluster {
        return Nodes::single(config.node_id);
    }
    Nodes::cluster(bound.iter().filter_map(|(id, b)| {
        let (host, port) = b.first()?.advertised.clone();
        Some((*id, (host, i32::from(port))))
    }))
}

/// The first node's first address, and each of its listeners.
pub(super) fn first_node(
    bound: &[(i32, Vec<Bound>)],
) -> Result<(SocketAddr, Vec<(SecurityProtocol, SocketAddr)>)> {
    match bound.first() {
        Some((_, b)) if !b.is_empty() => {
            Ok((b[0].addr, b.iter().map(|l| (l.protocol, l.addr)).collect()))
        }
        _ => Err(Error::Config("no listener".into())),
    }
}

/// The TLS acceptor and handshake timeout, when a listener needs them.
pub(super) fn tls(
    config: &Config,
    listeners: &[(SecurityProtocol, SocketAddr)],
) -> Result<Option<(TlsAcceptor, Duration)>> {
    match &config.tls {
        Some(tls) if listeners.iter().any(|(p, _)| p.tls()) => Ok(Some((
            tls.acceptor().map_err(Error::Config)?,
            Duration::from_millis(tls.handshake_timeout_ms),
        ))),
        _ => Ok(None),
    }
}

/// The context every listener's handlers start from: the stores, the
/// nodes, and the users, ACLs and quotas kept in the data directory.
pub(super) fn context(
    config: &Arc<Config>,
    stores: &Stores,
    (nodes, faults, metrics, clients): (&Arc<Nodes>, &Arc<Faults>, &Arc<Metrics>, &Arc<Clients>),
) -> Result<Context> {
    let users: Vec<(String, String)> = config
        .sasl
        .users
        .iter()
        .map(|u| (u.name.clone(), u.password.clone()))
        .collect();
    let credentials = Arc::new(Credentials::open(&config.data_dir, &users)?);
    let mut acls = crate::acl::Acls::open(&config.data_dir)?;
    if config.authorizer {
        acls = acls.enforce(&config.super_users);
    }
    Ok(Context {
        catalog: stores.catalog.clone(),
        config: config.clone(),
        node: config.node_id,
        nodes: nodes.clone(),
        faults: faults.clone(),
        advertised: (String::new(), 0),
        listener: SecurityProtocol::Plaintext,
        groups: stores.groups.clone(),
        txns: stores.txns.clone(),
        metrics: metrics.clone(),
        clients: clients.clone(),
        quotas: Arc::new(crate::quotas::ClientQuotas::open(&config.data_dir)?),
        acls: Arc::new(acls),
        dynamic: stores.dynamic.clone(),
        credentials,
        fetch_sessions: Arc::new(crate::handler::FetchSessions::new(
            config.max_incremental_fetch_session_cache_slots,
        )),
    })
}

/// Binds the HTTP server's address (`http_listen`), if it is on. An address
/// given explicitly that cannot be bound stops start-up; the default one
/// (taken by another broker on this machine) only warns.
pub(super) async fn bind_http(config: &Config) -> Result<Option<TcpListener>> {
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

/// Serves the status page, `/metrics` and the cluster endpoints on
/// `listener`, if there is one, until `stop`; gives its address.
pub(super) fn serve_http(
    listener: Option<TcpListener>,
    shared: http::Shared,
    stop: watch::Receiver<bool>,
    background: &mut Vec<JoinHandle<()>>,
) -> Option<SocketAddr> {
    let listener = listener?;
    let addr = listener.local_addr().ok();
    background.push(tokio::spawn(http::serve(listener, shared, stop)));
    addr
}

/// The first pause before the background flusher tries a failed pass again.
const FLUSH_RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest such pause.
const FLUSH_RETRY_MOST: Duration = Duration::from_secs(5);

/// The tasks that run beside the listeners: memory given back, retention,
/// flushing sealed segments (and all logs, with `flush = "interval"`),
/// transaction timeouts and the group coordinator's timer.
pub(super) fn background_tasks(
    stores: &Stores,
    config: &Config,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let catalog = &stores.catalog;
    let mut tasks = vec![
        tokio::spawn(crate::memory::give_back_freed_buffers()),
        retention(catalog.clone(), config.retention_check_interval_ms),
    ];
    // Sealed segments are fsynced soon after they roll, off the produce path,
    // and the recovery points move forward with them. A pass that failed
    // (out of descriptors, say) is tried again after a pause that doubles
    // while failures go on, rather than at every append.
    let c = catalog.clone();
    tasks.push(tokio::spawn(async move {
        let mut pause = Duration::ZERO;
        loop {
            if pause.is_zero() {
                c.rolled().await;
            } else {
                tokio::time::sleep(pause).await;
            }
            pause = if c.flush_rolled().await {
                Duration::ZERO
            } else {
                (pause * 2).clamp(FLUSH_RETRY_FIRST, FLUSH_RETRY_MOST)
            };
        }
    }));
    if config.flush == FlushMode::Interval {
        tasks.push(flush_every(catalog.clone(), config.flush_interval_ms));
    }
    tasks.push(transaction_timeouts(catalog.clone(), stores.txns.clone()));
    tasks.push(stores.groups.spawn_timer(stop.clone()));
    tasks
}

/// Applies retention every `every_ms`, the first time one period after start.
fn retention(catalog: Arc<Catalog>, every_ms: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
        tick.tick().await;
        loop {
            tick.tick().await;
            let c = catalog.clone();
            let _ = tokio::task::spawn_blocking(move || c.apply_retention()).await;
        }
    })
}

/// Flushes every partition and writes the recovery points every `every_ms`.
fn flush_every(catalog: Arc<Catalog>, every_ms: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
        loop {
            tick.tick().await;
            for topic in catalog.topics() {
                for partition in topic.partitions() {
                    let _ = partition.flush().await;
                }
            }
            if let Err(e) = catalog.write_recovery_points() {
                tracing::warn!(error = %e, "cannot write the recovery point checkpoint");
            }
        }
    })
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

/// Logs that the broker serves: its address, each node's, the HTTP server's.
pub(super) fn log_ready(
    started: Instant,
    (addr, cluster): (SocketAddr, bool),
    control: &Control,
    http: Option<SocketAddr>,
    catalog: &Catalog,
) {
    let nodes: Vec<String> = if cluster {
        control
            .nodes
            .live()
            .into_iter()
            .filter_map(|(_, a)| a.map(|(host, port)| format!("{host}:{port}")))
            .collect()
    } else {
        vec![addr.to_string()]
    };
    tracing::info!(
        %addr,
        nodes = %nodes.join(","),
        http = %http.map_or("off".to_string(), |a| a.to_string()),
        data_dir = %catalog.data_dir().display(),
        topics = catalog.topics().len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "sluice is ready"
    );
}

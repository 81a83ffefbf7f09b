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
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::cleaner::Cleaner;
use crate::config::Config;
use crate::data_dir::DirLock;
use crate::error::{Error, Result, io_err};
use crate::faults::Faults;
use crate::group::Coordinator;
use crate::observe::{Metrics, http};
use crate::security::SecurityProtocol;
use crate::session::Clients;
use crate::storage::{Disk, RealDisk};
use crate::txn::TxnCoordinator;

mod cluster_ops;
mod serving;
mod start;

pub(crate) use cluster_ops::Control;
use serving::Serving;

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
        let stores = start::open_stores(&config, disk).await?;
        let bound = start::bind_nodes(&config, cluster.as_deref()).await?;
        let nodes = Arc::new(start::nodes(&config, &bound, cluster.is_some()));
        let (addr, listeners) = start::first_node(&bound)?;
        let tls = start::tls(&config, &listeners)?;
        let http = start::bind_http(&config).await?;
        let config = Arc::new(config);
        let (stop, stop_rx) = watch::channel(false);
        let clients = Arc::new(Clients::default());
        let catalog = stores.catalog.clone();
        let metrics = Arc::new(Metrics::new(
            catalog.clone(),
            stores.groups.clone(),
            clients.clone(),
        ));
        let faults = Arc::new(Faults::default());
        let ctx = start::context(&config, &stores, (&nodes, &faults, &metrics, &clients))?;
        let cleaner = Cleaner::start(
            (&catalog, &stores.groups, &stores.txns),
            &config,
            &stores.lock,
        )
        .map_err(io_err("log cleaner thread"))?;
        let mut background = start::background_tasks(&stores, &config, &stop_rx);
        let serving = Serving::new(ctx, tls, stores.lock.clone());
        let control = Arc::new(Control::serve(serving, bound, nodes, faults));
        let shared = http::Shared {
            catalog: catalog.clone(),
            groups: stores.groups.clone(),
            clients,
            metrics: metrics.clone(),
            control: cluster.is_some().then(|| control.clone()),
        };
        let http_addr = start::serve_http(http, shared, stop_rx, &mut background);
        start::log_ready(
            started,
            (addr, cluster.is_some()),
            &control,
            http_addr,
            &catalog,
        );
        Ok(Broker {
            addr,
            listeners,
            http_addr,
            catalog,
            cleaner,
            groups: stores.groups,
            txns: stores.txns,
            stop,
            control,
            metrics,
            background,
            _lock: stores.lock,
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

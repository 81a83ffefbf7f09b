//! A cluster of brokers in this process that misbehaves on command, for
//! testing an application's retry, failover and idempotence code.
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice::testing::{ApiKey, Cluster, Fault, ResponseError};
//! # async fn demo() -> sluice::Result<()> {
//! let cluster = Cluster::start(3).await?;
//! cluster.create_topic("orders", 6).await?;
//! // give cluster.bootstrap() to the client under test, then:
//! cluster.inject(ApiKey::Produce, Fault::error(ResponseError::NotLeaderOrFollower).times(2));
//! cluster.broker_down(cluster.leader("orders", 0)?).await?;
//! cluster.shutdown().await
//! # }
//! ```
//!
//! The nodes share one catalog and one copy of each log: no replication is
//! simulated, every live node is in sync, and leadership can move to any
//! live node without losing a record. Each node has its own listener, node
//! id and port. Metadata lists the live nodes; a partition request to a node
//! that does not lead the partition answers NOT_LEADER_OR_FOLLOWER; each
//! group and transactional id has one coordinator node (NOT_COORDINATOR
//! elsewhere), which moves when its node goes down.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use kafka_protocol::ResponseError;
pub use kafka_protocol::messages::ApiKey;

pub use crate::faults::{Fault, FaultKind};
use crate::storage::RealDisk;
use crate::{Broker, Config, Error, Result};

/// A cluster of nodes 1..=n in this process, on 127.0.0.1, over one
/// temporary data directory that is removed when the cluster is dropped.
/// Stop it with [`Cluster::shutdown`]; one dropped without it stops
/// serving only when its Tokio runtime ends (as a test's does).
#[derive(Debug)]
pub struct Cluster {
    broker: Broker,
    _dir: tempfile::TempDir,
}

/// Settings of a [`Cluster`] before it starts.
#[derive(Debug)]
pub struct ClusterBuilder {
    nodes: usize,
    config: Config,
}

impl ClusterBuilder {
    /// The number of nodes (3 unless set).
    pub fn nodes(mut self, nodes: usize) -> ClusterBuilder {
        self.nodes = nodes;
        self
    }

    /// Changes the settings the nodes share (the data directory and the
    /// listeners are the cluster's own).
    pub fn config(mut self, adjust: impl FnOnce(&mut Config)) -> ClusterBuilder {
        adjust(&mut self.config);
        self
    }

    /// Starts the nodes, each on a free port.
    pub async fn start(self) -> Result<Cluster> {
        if self.nodes == 0 {
            return Err(Error::Config("a cluster needs at least one node".into()));
        }
        let dir = tempfile::tempdir().map_err(|e| Error::Config(format!("temp dir: {e}")))?;
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            listeners: Vec::new(),
            advertised_listeners: Vec::new(),
            listen: "127.0.0.1:0".into(),
            brokers: self.nodes,
            ..self.config
        };
        let binds = vec!["127.0.0.1:0".to_string(); self.nodes];
        let broker = Broker::start_nodes(config, Arc::new(RealDisk), Some(binds)).await?;
        Ok(Cluster { broker, _dir: dir })
    }
}

impl Cluster {
    /// Starts `nodes` nodes with the default settings.
    pub async fn start(nodes: usize) -> Result<Cluster> {
        Cluster::builder().nodes(nodes).start().await
    }

    /// A cluster with settings of its own.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            nodes: 3,
            config: Config::default(),
        }
    }

    /// `bootstrap.servers` for a client: the live nodes' addresses.
    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap_all()
    }

    /// Each live node's id and address.
    pub fn nodes(&self) -> BTreeMap<i32, String> {
        self.broker.live_nodes()
    }

    /// Creates `name` with `partitions` partitions, their leaders spread
    /// round-robin over the live nodes.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.broker.create_topic(name, partitions).await
    }

    /// The node id of the current leader of `partition` of `topic`.
    pub fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        self.broker.leader(topic, partition)
    }

    /// Moves the leadership of `partition` of `topic` to node `node` (its
    /// leader epoch goes up by one).
    pub async fn set_leader(&self, topic: &str, partition: i32, node: i32) -> Result<()> {
        self.broker.set_leader(topic, partition, node)
    }

    /// Takes node `node` down: its listener and connections close, and the
    /// partitions it led move to the other live nodes.
    pub async fn broker_down(&self, node: i32) -> Result<()> {
        self.broker.control().node_down(node).await
    }

    /// Brings node `node` back, with the same id and port.
    pub async fn broker_up(&self, node: i32) -> Result<()> {
        self.broker.control().node_up(node).await
    }

    /// Adds `fault` for the next requests of `api`, after the faults already waiting.
    pub fn inject(&self, api: ApiKey, fault: Fault) {
        self.broker.control().inject(api, fault);
    }

    /// Drops every fault still waiting.
    pub fn clear_faults(&self) {
        self.broker.control().clear_faults();
    }

    /// Requests of `api` received so far by every node (those a fault
    /// refused or dropped included).
    pub fn request_count(&self, api: ApiKey) -> u64 {
        self.broker.request_count(api)
    }

    /// Stops every node and closes the logs.
    pub async fn shutdown(self) -> Result<()> {
        self.broker.shutdown().await
    }
}

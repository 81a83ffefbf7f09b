//! What a test cluster ([`crate::testing::Cluster`]) and the HTTP fault
//! endpoints ask of a broker: topics, leadership, nodes going down and up,
//! faults and request counts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::Broker;
use super::serving::{Bound, Serving, bind_listener};
use crate::cluster::Nodes;
use crate::error::{Error, Result};
use crate::faults::{Fault, FaultKind, Faults};
use crate::handler::refuse::REFUSABLE;
use crate::security::SecurityProtocol;

/// Takes nodes down and up, and injects faults: shared by the broker and
/// its HTTP server.
#[derive(Debug)]
pub(crate) struct Control {
    pub(super) serving: Serving,
    pub(super) nodes: Arc<Nodes>,
    pub(super) faults: Arc<Faults>,
    /// Each node's bound address, to bind again when it comes back up.
    pub(super) binds: BTreeMap<i32, SocketAddr>,
    /// Taken by every node change, one at a time; true once the broker
    /// shuts down (no node starts after that).
    pub(super) changing: tokio::sync::Mutex<bool>,
}

impl Control {
    /// Starts serving each node of `bound` on its listeners.
    pub(super) fn serve(
        serving: Serving,
        bound: Vec<(i32, Vec<Bound>)>,
        nodes: Arc<Nodes>,
        faults: Arc<Faults>,
    ) -> Control {
        let binds = bound
            .iter()
            .filter_map(|(node, listeners)| Some((*node, listeners.first()?.addr)))
            .collect();
        for (node, listeners) in bound {
            serving.start(node, listeners);
        }
        Control {
            serving,
            nodes,
            faults,
            binds,
            changing: tokio::sync::Mutex::new(false),
        }
    }

    /// Takes a node down: its partitions and coordinators move, then its
    /// listeners and connections close.
    pub(crate) async fn node_down(&self, node: i32) -> Result<()> {
        let closed = self.changing.lock().await;
        if *closed || self.serving.listeners(node).is_none() || !self.nodes.is_cluster() {
            return Err(unknown_node(node, "is not up in a test cluster"));
        }
        self.nodes.down(node).map_err(|m| unknown_node(node, &m))?;
        self.serving.stop(node, true).await;
        Ok(())
    }

    /// Brings a node that is down back up on the same port.
    pub(crate) async fn node_up(&self, node: i32) -> Result<()> {
        let closed = self.changing.lock().await;
        if *closed {
            return Err(unknown_node(node, "the broker is shutting down"));
        }
        if self.serving.listeners(node).is_some() {
            return Ok(());
        }
        let addr = self
            .binds
            .get(&node)
            .filter(|_| self.nodes.is_cluster())
            .ok_or_else(|| unknown_node(node, "is not a node of this test cluster"))?;
        let bound = bind_listener(SecurityProtocol::Plaintext, &addr.to_string(), None).await?;
        // Up in the table first: by the time a client connects, the node
        // answers for what it leads.
        self.nodes.up(node).map_err(|m| unknown_node(node, &m))?;
        self.serving.start(node, vec![bound]);
        Ok(())
    }

    /// Stops every node for good (the broker is shutting down).
    pub(super) async fn close(&self) {
        let mut closed = self.changing.lock().await;
        *closed = true;
        self.serving.stop_all().await;
    }

    /// Whether `node` is a node of this test cluster (up or down).
    pub(crate) fn has_node(&self, node: i32) -> bool {
        self.nodes.is_cluster() && self.binds.contains_key(&node)
    }

    /// Adds `fault` for the next requests of `api`.
    pub(crate) fn inject(&self, api: ApiKey, fault: Fault) {
        if matches!(fault.kind(), FaultKind::Error(_)) && !REFUSABLE.contains(&api) {
            tracing::warn!(
                ?api,
                "no error answer for this API: the fault closes the connection"
            );
        }
        self.faults.inject(api, fault);
    }

    /// Drops every waiting fault.
    pub(crate) fn clear_faults(&self) {
        self.faults.clear();
    }
}

impl Broker {
    /// `bootstrap.servers` naming every live node.
    pub(crate) fn bootstrap_all(&self) -> String {
        let live: Vec<String> = self.live_nodes().into_values().collect();
        live.join(",")
    }

    /// Each live node's id and `host:port`.
    pub(crate) fn live_nodes(&self) -> BTreeMap<i32, String> {
        self.control
            .nodes
            .live()
            .into_iter()
            .map(|(id, addr)| {
                let addr = match addr {
                    Some((host, port)) => format!("{host}:{port}"),
                    None => self.addr.to_string(),
                };
                (id, addr)
            })
            .collect()
    }

    /// Creates a topic; its leaders spread round-robin over the live nodes.
    pub(crate) async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let catalog = self.catalog.clone();
        let topic = name.to_string();
        tokio::task::spawn_blocking(move || {
            catalog.create_topic(&topic, partitions, BTreeMap::new(), false)
        })
        .await
        .map_err(|e| Error::Config(format!("creating a topic panicked: {e}")))??;
        for p in 0..partitions {
            self.control.nodes.leader(name, p);
        }
        Ok(())
    }

    /// The leader of a partition that exists.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        self.catalog.partition(topic, partition)?;
        Ok(self.control.nodes.leader(topic, partition).node)
    }

    /// Moves a partition's leadership to a live node.
    pub(crate) fn set_leader(&self, topic: &str, partition: i32, node: i32) -> Result<()> {
        self.catalog.partition(topic, partition)?;
        self.control
            .nodes
            .set_leader(topic, partition, node)
            .map_err(|m| Error::api(ResponseError::BrokerNotAvailable, m))
    }

    /// Node control and faults.
    pub(crate) fn control(&self) -> &Control {
        &self.control
    }

    /// Requests of `api` answered so far.
    pub(crate) fn request_count(&self, api: ApiKey) -> u64 {
        self.metrics.request_count(api)
    }
}

fn unknown_node(node: i32, why: &str) -> Error {
    Error::api(
        ResponseError::BrokerNotAvailable,
        format!("node {node}: {why}"),
    )
}

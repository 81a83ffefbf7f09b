//! What this node answers for: the partitions it leads and the groups and
//! transactional ids it coordinates ([`crate::cluster::Nodes`]). A single
//! broker answers for everything.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::BrokerId;

use super::Context;
use crate::cluster::Leader;
use crate::error::Error;

/// NOT_COORDINATOR (from [`Context::coordinates_transaction`] or
/// [`Context::coordinates_group`]) as a handler error.
pub(crate) fn not_coordinator(code: ResponseError) -> Error {
    Error::api(code, "this node is not the coordinator")
}

/// A leadership refusal (NOT_LEADER_OR_FOLLOWER or a leader epoch's) as a handler error.
pub(crate) fn not_led(code: ResponseError) -> Error {
    Error::api(
        code,
        "this node does not lead the partition at that leader epoch",
    )
}

/// The internal topics whose partitions place the coordinators, as in Kafka.
const GROUPS: &str = "__consumer_offsets";
const TRANSACTIONS: &str = "__transaction_state";

impl Context {
    /// The leader of `partition` of `topic` if it is this node;
    /// NOT_LEADER_OR_FOLLOWER otherwise.
    pub(crate) fn leads(&self, topic: &str, partition: i32) -> Result<Leader, ResponseError> {
        let leader = self.nodes.leader(topic, partition);
        if leader.node == self.node {
            Ok(leader)
        } else {
            Err(ResponseError::NotLeaderOrFollower)
        }
    }

    /// [`Context::leads`], also checking the leader epoch a client names
    /// (-1: none): an older one is FENCED_LEADER_EPOCH, a newer one
    /// UNKNOWN_LEADER_EPOCH, as Kafka answers.
    pub(crate) fn leads_at(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Result<Leader, ResponseError> {
        let leader = self.leads(topic, partition)?;
        match epoch {
            e if e >= 0 && e < leader.epoch => Err(ResponseError::FencedLeaderEpoch),
            e if e > leader.epoch => Err(ResponseError::UnknownLeaderEpoch),
            _ => Ok(leader),
        }
    }

    /// The node coordinating group `group`.
    pub(crate) fn group_coordinator(&self, group: &str) -> i32 {
        self.nodes.coordinator(GROUPS, group)
    }

    /// The node coordinating transactional id `id`.
    pub(crate) fn transaction_coordinator(&self, id: &str) -> i32 {
        self.nodes.coordinator(TRANSACTIONS, id)
    }

    /// NOT_COORDINATOR unless this node coordinates group `group`.
    pub(crate) fn coordinates_group(&self, group: &str) -> Result<(), ResponseError> {
        match self.group_coordinator(group) == self.node {
            true => Ok(()),
            false => Err(ResponseError::NotCoordinator),
        }
    }

    /// NOT_COORDINATOR unless this node coordinates transactional id `id`.
    pub(crate) fn coordinates_transaction(&self, id: &str) -> Result<(), ResponseError> {
        match self.transaction_coordinator(id) == self.node {
            true => Ok(()),
            false => Err(ResponseError::NotCoordinator),
        }
    }

    /// Each live node: its id, host and port as this listener's clients
    /// reach it (a node that is down is absent, as a fenced Kafka broker is).
    pub(crate) fn brokers(&self) -> Vec<(i32, String, i32)> {
        self.nodes
            .live()
            .into_iter()
            .map(|(id, _)| {
                let (host, port) = self.address_of(id);
                (id, host, port)
            })
            .collect()
    }

    /// The replicas of every partition, all in sync: every live node (no
    /// replication is simulated).
    pub(crate) fn replicas(&self) -> Vec<BrokerId> {
        self.nodes
            .live()
            .iter()
            .map(|(id, _)| BrokerId(*id))
            .collect()
    }

    /// The `(host, port)` clients reach node `node` at: this listener's
    /// own address for this node, the cluster table's for the others.
    pub(crate) fn address_of(&self, node: i32) -> (String, i32) {
        if node == self.node {
            return self.advertised.clone();
        }
        self.nodes
            .live()
            .into_iter()
            .find(|(id, _)| *id == node)
            .and_then(|(_, addr)| addr)
            .unwrap_or_else(|| (String::new(), -1))
    }
}

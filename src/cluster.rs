//! The nodes of a cluster and what each leads. A single broker is a cluster
//! of one, which leads everything at leader epoch 0. The nodes of a test
//! cluster ([`crate::testing::Cluster`]) share the catalog and the logs;
//! this table alone decides what each answers: the leader of each
//! partition (with its leader epoch), which nodes are up, and which node
//! coordinates each group and transactional id.
//!
//! No replication is simulated: every live node is a replica in sync, so a
//! leader can move to any live node without losing anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::watch;

/// Who leads a partition, since which leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leader {
    pub node: i32,
    pub epoch: i32,
}

/// The node table, shared by the nodes' listeners.
#[derive(Debug)]
pub(crate) struct Nodes {
    /// A single broker's node id: it leads everything, and nothing changes.
    single: Option<i32>,
    inner: RwLock<Inner>,
    /// Bumped whenever a leader moves: a waiting Fetch looks again.
    moved: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every node: the host and port it advertises, and whether it is up.
    nodes: BTreeMap<i32, ((String, i32), bool)>,
    /// The partitions whose leader has been decided.
    leaders: HashMap<(String, i32), Leader>,
}

impl Inner {
    fn live(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, (_, up))| *up)
            .map(|(id, _)| *id)
            .collect()
    }
}

impl Nodes {
    /// One broker with node id `node`.
    pub(crate) fn single(node: i32) -> Nodes {
        Nodes {
            single: Some(node),
            inner: RwLock::new(Inner::default()),
            moved: watch::Sender::new(0),
        }
    }

    /// A test cluster: each node's id and advertised host and port, all up.
    pub(crate) fn cluster(nodes: impl IntoIterator<Item = (i32, (String, i32))>) -> Nodes {
        Nodes {
            single: None,
            inner: RwLock::new(Inner {
                nodes: nodes.into_iter().map(|(id, a)| (id, (a, true))).collect(),
                leaders: HashMap::new(),
            }),
            moved: watch::Sender::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The live nodes, by id, with their advertised address (`None` for a
    /// single broker: each listener advertises its own).
    pub(crate) fn live(&self) -> Vec<(i32, Option<(String, i32)>)> {
        if let Some(node) = self.single {
            return vec![(node, None)];
        }
        let inner = self.read();
        inner
            .nodes
            .iter()
            .filter(|(_, (_, up))| *up)
            .map(|(id, (addr, _))| (*id, Some(addr.clone())))
            .collect()
    }

    /// The controller Metadata names: the lowest live node id.
    pub(crate) fn controller(&self) -> i32 {
        self.live().first().map_or(-1, |(id, _)| *id)
    }

    /// Whether this is a test cluster (not a single broker).
    pub(crate) fn is_cluster(&self) -> bool {
        self.single.is_none()
    }

    /// Whether `node` is up.
    pub(crate) fn is_live(&self, node: i32) -> bool {
        match self.single {
            Some(single) => node == single,
            None => matches!(self.read().nodes.get(&node), Some((_, true))),
        }
    }

    /// A receiver that changes whenever a leader moves; none on a single
    /// broker, where nothing moves.
    pub(crate) fn moves(&self) -> Option<watch::Receiver<u64>> {
        self.single.is_none().then(|| self.moved.subscribe())
    }

    /// Who leads `partition` of `topic`. A partition first asked about is
    /// given to the live nodes round-robin by index (partition p of n live
    /// nodes: the (p mod n)-th), and stays there until moved. With no node
    /// up, none leads it (node -1), and nothing is decided yet.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Leader {
        if let Some(node) = self.single {
            return Leader { node, epoch: 0 };
        }
        let key = (topic.to_string(), partition);
        if let Some(leader) = self.read().leaders.get(&key) {
            return *leader;
        }
        let mut inner = self.write();
        let live = inner.live();
        if live.is_empty() {
            return Leader { node: -1, epoch: 0 };
        }
        let node = live[partition.unsigned_abs() as usize % live.len()];
        *inner
            .leaders
            .entry(key)
            .or_insert(Leader { node, epoch: 0 })
    }

    /// Moves the leadership of `partition` of `topic` to `node` (a live
    /// node), one leader epoch later.
    pub(crate) fn set_leader(&self, topic: &str, partition: i32, node: i32) -> Result<(), String> {
        self.leader(topic, partition);
        let mut inner = self.write();
        if !matches!(inner.nodes.get(&node), Some((_, true))) {
            return Err(format!("node {node} is not a live node"));
        }
        let key = (topic.to_string(), partition);
        let epoch = inner.leaders.get(&key).map_or(0, |l| l.epoch + 1);
        inner.leaders.insert(key, Leader { node, epoch });
        drop(inner);
        self.moved.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Hands every partition led by a node that is not up to the live
    /// nodes, round-robin, one leader epoch later.
    fn reassign(&self, inner: &mut Inner) {
        let live = inner.live();
        if live.is_empty() {
            return;
        }
        let up = |node: &i32| live.contains(node);
        for (i, leader) in inner
            .leaders
            .values_mut()
            .filter(|l| !up(&l.node))
            .enumerate()
        {
            leader.node = live[i % live.len()];
            leader.epoch += 1;
        }
        self.moved.send_modify(|n| *n += 1);
    }

    /// Marks `node` down: the partitions it led move to the other live
    /// nodes (round-robin), one leader epoch later. (With no node left up,
    /// they stay until one comes back.)
    pub(crate) fn down(&self, node: i32) -> Result<(), String> {
        self.set_up(node, false)
    }

    /// Marks `node` up again. It leads nothing until leadership moves to it,
    /// except what no live node led (everything was down).
    pub(crate) fn up(&self, node: i32) -> Result<(), String> {
        self.set_up(node, true)
    }

    fn set_up(&self, node: i32, is_up: bool) -> Result<(), String> {
        let mut inner = self.write();
        match inner.nodes.get_mut(&node) {
            Some((_, up)) => *up = is_up,
            None => return Err(format!("no node {node}")),
        }
        self.reassign(&mut inner);
        Ok(())
    }

    /// Forgets the leaders of a deleted topic.
    pub(crate) fn forget(&self, topic: &str) {
        if self.single.is_none() {
            self.write().leaders.retain(|(t, _), _| t != topic);
        }
    }

    /// The node that coordinates `key` (a group id, or a transactional id):
    /// as in Kafka, the leader of the partition of the internal topic
    /// (`__consumer_offsets` or `__transaction_state`) the key hashes to, so
    /// a coordinator moves only when its node goes down.
    pub(crate) fn coordinator(&self, internal_topic: &str, key: &str) -> i32 {
        let partition = crate::storage::crc32c(key.as_bytes()) % COORDINATOR_PARTITIONS;
        self.leader(internal_topic, partition as i32).node
    }
}

/// Partitions of Kafka's internal topics that coordinators are spread over.
const COORDINATOR_PARTITIONS: u32 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Nodes {
        Nodes::cluster((1..=3).map(|id| (id, ("127.0.0.1".to_string(), 9000 + id))))
    }

    #[test]
    fn leaders_spread_move_and_survive_a_node_going_down() {
        let nodes = three();
        let leaders: Vec<i32> = (0..6).map(|p| nodes.leader("t", p).node).collect();
        assert_eq!(leaders, [1, 2, 3, 1, 2, 3]);
        nodes.set_leader("t", 0, 2).expect("move");
        assert_eq!(nodes.leader("t", 0), Leader { node: 2, epoch: 1 });
        nodes.down(2).expect("down");
        for p in 0..6 {
            let leader = nodes.leader("t", p);
            assert_ne!(leader.node, 2, "partition {p}");
        }
        assert_eq!(nodes.leader("t", 0).epoch, 2);
        assert_eq!(nodes.leader("t", 2).epoch, 0, "untouched");
        assert!(nodes.set_leader("t", 1, 2).is_err(), "node 2 is down");
        assert_eq!(nodes.controller(), 1);
        nodes.up(2).expect("up");
        assert_eq!(nodes.live().len(), 3);
        // Everything down, then one node back: it leads what was orphaned.
        for id in 1..=3 {
            nodes.down(id).expect("down");
        }
        assert_eq!(
            nodes.leader("new", 0).node,
            -1,
            "no leader while all are down"
        );
        nodes.up(3).expect("up");
        for p in 0..6 {
            assert_eq!(nodes.leader("t", p).node, 3, "partition {p}");
        }
        assert_eq!(nodes.leader("new", 0).node, 3);
    }

    #[test]
    fn a_coordinator_moves_only_when_its_node_goes_down() {
        let nodes = three();
        let coordinator = |g: usize| nodes.coordinator("__consumer_offsets", &format!("g{g}"));
        let before: Vec<i32> = (0..20).map(coordinator).collect();
        assert!(before.contains(&1) && before.contains(&2) && before.contains(&3));
        nodes.down(3).expect("down");
        for (g, was) in before.iter().enumerate() {
            let now = coordinator(g);
            match was {
                3 => assert_ne!(now, 3, "group {g} left the down node"),
                _ => assert_eq!(now, *was, "group {g} stayed"),
            }
        }
        let single = Nodes::single(7);
        assert_eq!(single.leader("t", 3), Leader { node: 7, epoch: 0 });
        assert_eq!(single.coordinator("__consumer_offsets", "g"), 7);
    }
}

//! One group's state: members, generation, chosen protocol and committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::codec::{GroupValue, MemberValue, OffsetValue};

/// The classic protocol's group states (Kafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for every member to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl GroupState {
    /// The name Kafka reports in DescribeGroups and ListGroups.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member, for the leader only.
    pub members: Vec<JoinedMember>,
    /// JoinGroup v9: the leader need not compute an assignment (a static leader rejoined).
    pub skip_assignment: bool,
}

impl JoinResult {
    pub(crate) fn error(error: ResponseError, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub(crate) fn error(error: ResponseError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A result now, or a receiver that gets it when the rebalance moves on.
#[derive(Debug)]
pub(crate) enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

/// One member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    /// (protocol name, metadata), in the member's order of preference.
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    /// Set while a JoinGroup waits for the rebalance to complete.
    pub(crate) join: Option<oneshot::Sender<JoinResult>>,
    /// Set while a SyncGroup waits for the leader's assignment.
    pub(crate) sync: Option<oneshot::Sender<SyncResult>>,
    /// The member is removed if no heartbeat arrives before this.
    pub(crate) deadline: Instant,
}

impl Member {
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        self.deadline = now + Duration::from_millis(self.session_timeout_ms.max(0) as u64);
    }

    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn fail_waiters(&mut self, error: ResponseError) {
        if let Some(tx) = self.join.take() {
            let _ = tx.send(JoinResult::error(error, &self.id));
        }
        if let Some(tx) = self.sync.take() {
            let _ = tx.send(SyncResult::error(error));
        }
    }

    pub(crate) fn to_value(&self, protocol: Option<&str>) -> MemberValue {
        MemberValue {
            member_id: self.id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            session_timeout_ms: self.session_timeout_ms,
            subscription: protocol.map(|p| self.metadata(p)).unwrap_or_default(),
            assignment: self.assignment.clone(),
        }
    }
}

/// One consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) id: String,
    pub(crate) state: GroupState,
    /// Wall-clock time of the last state change (persisted; drives offset expiry).
    pub(crate) state_since_ms: i64,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// group.instance.id → member id.
    pub(crate) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pub(crate) pending: HashMap<String, Instant>,
    pub(crate) offsets: BTreeMap<(String, i32), OffsetValue>,
    /// PreparingRebalance: the join completes at this time even if members are missing.
    pub(crate) join_deadline: Option<Instant>,
    /// PreparingRebalance from Empty: wait at least until then for more members.
    pub(crate) delay_until: Option<Instant>,
    pub(crate) new_member_added: bool,
    /// CompletingRebalance: members that have not sent SyncGroup by then are removed.
    pub(crate) sync_deadline: Option<Instant>,
    /// The persisted group record is out of date.
    pub(crate) dirty: bool,
    /// When the current rebalance began (for the log line that reports its length).
    pub(crate) rebalance_started: Option<Instant>,
    /// Set when the group uses the consumer protocol (KIP-848); the classic
    /// fields above then stay empty.
    pub(crate) consumer: Option<super::consumer::ConsumerGroup>,
}

impl Group {
    pub(crate) fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            offsets: BTreeMap::new(),
            join_deadline: None,
            delay_until: None,
            new_member_added: false,
            sync_deadline: None,
            dirty: false,
            rebalance_started: None,
            consumer: None,
        }
    }

    /// No member of either protocol: offsets may expire, the group may be deleted.
    pub(crate) fn is_empty(&self) -> bool {
        self.state == GroupState::Empty
            && self.pending.is_empty()
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }

    /// "classic" or "consumer", as ListGroups v5 reports it.
    pub(crate) fn group_type(&self) -> &'static str {
        if self.consumer.is_some() {
            "consumer"
        } else {
            "classic"
        }
    }

    /// The state name Kafka reports for the group, whatever its protocol.
    pub(crate) fn state_name(&self) -> &'static str {
        match &self.consumer {
            Some(c) => c.state().name(),
            None => self.state.name(),
        }
    }

    /// FENCED_INSTANCE_ID: `instance` now belongs to another member id.
    pub(crate) fn is_fenced(&self, instance: Option<&str>, member_id: &str) -> bool {
        instance
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|owner| owner != member_id)
    }

    /// Kafka's rule: a joining member must share the group's protocol type and
    /// support at least one protocol every current member supports.
    pub(crate) fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// The protocol every member supports that most members list first among those.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for member in self.members.values() {
            let vote = member
                .protocols
                .iter()
                .find(|(p, _)| candidates.contains(&p));
            if let Some((p, _)) = vote
                && let Some(slot) = votes.iter_mut().find(|(_, c)| *c == p)
            {
                slot.0 += 1;
            }
        }
        // Ties go to the first member's preference: max_by_key keeps the last maximum.
        votes
            .iter()
            .rev()
            .max_by_key(|(n, _)| *n)
            .map(|(_, p)| (*p).clone())
    }

    /// Every member with the metadata of the chosen protocol (the leader's view).
    pub(crate) fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    pub(crate) fn join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.joined_members()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    /// The group's persisted form.
    pub(crate) fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.as_deref();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| m.to_value(protocol))
                .collect(),
        }
    }

    /// Restores a group from its persisted form; members get a fresh session.
    pub(crate) fn from_value(id: &str, value: GroupValue, now: Instant) -> Group {
        let mut group = Group::new(id, value.state_timestamp);
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        group.protocol = value.protocol;
        group.leader = value.leader;
        for m in value.members {
            if let Some(instance) = &m.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            let protocols = group
                .protocol
                .iter()
                .map(|p| (p.clone(), m.subscription.clone()))
                .collect();
            let mut member = Member {
                id: m.member_id.clone(),
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols,
                assignment: m.assignment,
                join: None,
                sync: None,
                deadline: now,
            };
            member.heartbeat(now);
            group.members.insert(m.member_id, member);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
        }
        group
    }
}

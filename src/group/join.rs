//! JoinGroup: new members, returning members and static members.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::GroupConfig;
use super::state::{Group, GroupState, JoinResult, Member, Pending};

/// A JoinGroup request, whatever its version.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a first join gets MEMBER_ID_REQUIRED and a member id to rejoin with.
    pub require_known_member_id: bool,
    /// v9+: a rejoining static leader may be told to skip the assignment.
    pub supports_skip_assignment: bool,
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl Group {
    /// Handles a JoinGroup for this group (which exists, possibly just created).
    pub(crate) fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Pending<JoinResult> {
        let fail = |e| Pending::Ready(JoinResult::error(e, &req.member_id));
        if req.member_id.is_empty() {
            if !self.supports(&req.protocol_type, &req.protocols) {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            return self.join_new(req, now, cfg);
        }
        if self.is_fenced(req.instance_id.as_deref(), &req.member_id) {
            return fail(ResponseError::FencedInstanceId);
        }
        if self.pending.remove(&req.member_id).is_some() {
            if !self.supports(&req.protocol_type, &req.protocols) {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            let id = req.member_id.clone();
            return self.add_member(id, req, now, cfg);
        }
        if !self.members.contains_key(&req.member_id) || self.state == GroupState::Empty {
            return fail(ResponseError::UnknownMemberId);
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        self.join_known(req, now, cfg)
    }

    fn join_new(
        &mut self,
        req: JoinRequest,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Pending<JoinResult> {
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old, req, now, cfg);
            }
            let id = new_member_id(&instance);
            return self.add_member(id, req, now, cfg);
        }
        let id = new_member_id(&req.client_id);
        if req.require_known_member_id {
            let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            self.pending.insert(id.clone(), now + session);
            return Pending::Ready(JoinResult::error(ResponseError::MemberIdRequired, &id));
        }
        self.add_member(id, req, now, cfg)
    }

    fn add_member(
        &mut self,
        id: String,
        req: JoinRequest,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Pending<JoinResult> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        let (tx, rx) = oneshot::channel();
        let mut member = Member {
            id: id.clone(),
            instance_id: req.instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join: Some(tx),
            sync: None,
            deadline: now,
        };
        member.heartbeat(now);
        tracing::info!(group = %self.id, member = %id, "member joined");
        self.members.insert(id, member);
        self.new_member_added = true;
        self.prepare_rebalance(now, cfg.initial_rebalance_delay_ms, "a member joined");
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    /// A known member rejoins: an unchanged follower of a settled group gets
    /// the current generation back; anything else rebalances.
    fn join_known(
        &mut self,
        req: JoinRequest,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Pending<JoinResult> {
        let id = req.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let unchanged = self
            .members
            .get(&id)
            .is_some_and(|m| m.protocols == req.protocols);
        match self.state {
            GroupState::CompletingRebalance if unchanged => {
                return Pending::Ready(self.join_result(&id, is_leader));
            }
            GroupState::Stable if unchanged && !is_leader => {
                return Pending::Ready(self.join_result(&id, false));
            }
            _ => {}
        }
        let rx = self.await_join(&id, req, now);
        self.prepare_rebalance(now, cfg.initial_rebalance_delay_ms, "a member rejoined");
        self.try_complete_join(now);
        rx
    }

    /// Updates a member from its JoinGroup and parks the request until the join completes.
    fn await_join(&mut self, id: &str, req: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(member) = self.members.get_mut(id) {
            if let Some(old) = member.join.take() {
                let _ = old.send(JoinResult::error(ResponseError::RebalanceInProgress, id));
            }
            member.protocols = req.protocols;
            member.session_timeout_ms = req.session_timeout_ms;
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
            member.client_id = req.client_id;
            member.client_host = req.client_host;
            member.join = Some(tx);
            member.heartbeat(now);
        }
        Pending::Wait(rx)
    }

    /// A static member came back with no member id: it takes over its old
    /// membership under a new id, and the old id is fenced.
    fn replace_static_member(
        &mut self,
        old: &str,
        req: JoinRequest,
        now: Instant,
        cfg: &GroupConfig,
    ) -> Pending<JoinResult> {
        let Some(mut member) = self.members.remove(old) else {
            return Pending::Ready(JoinResult::error(
                ResponseError::UnknownMemberId,
                &req.member_id,
            ));
        };
        member.fail_waiters(ResponseError::FencedInstanceId);
        let prefix = req.instance_id.clone().unwrap_or_default();
        let id = new_member_id(&prefix);
        member.id = id.clone();
        member.protocols = req.protocols.clone();
        self.members.insert(id.clone(), member);
        self.static_members.insert(prefix, id.clone());
        let was_leader = self.leader.as_deref() == Some(old);
        if was_leader {
            self.leader = Some(id.clone());
        }
        tracing::info!(group = %self.id, old = %old, new = %id, "static member rejoined");
        let mut req = req;
        req.member_id = id.clone();
        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol => {
                // Kafka's rule: no rebalance while the group's protocol stays the same.
                self.dirty = true;
                if let Some(m) = self.members.get_mut(&id) {
                    m.session_timeout_ms = req.session_timeout_ms;
                    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
                    m.client_id = req.client_id;
                    m.client_host = req.client_host;
                    m.heartbeat(now);
                }
                let skip = was_leader && req.supports_skip_assignment;
                let mut result = self.join_result(&id, skip);
                result.skip_assignment = skip;
                Pending::Ready(result)
            }
            _ => {
                let rx = self.await_join(&id, req, now);
                self.prepare_rebalance(
                    now,
                    cfg.initial_rebalance_delay_ms,
                    "a static member rejoined",
                );
                self.try_complete_join(now);
                rx
            }
        }
    }
}

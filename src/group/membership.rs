//! SyncGroup, Heartbeat and LeaveGroup.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::state::{Group, GroupState, Pending, SyncResult};

/// A SyncGroup request, whatever its version.
#[derive(Debug, Clone)]
pub(crate) struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// v5+: must match the group's, when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: member id → bytes.
    pub assignments: HashMap<String, Bytes>,
}

/// A member named in a LeaveGroup.
#[derive(Debug, Clone)]
pub(crate) struct Leaving {
    pub member_id: String,
    pub instance_id: Option<String>,
}

impl Group {
    /// Checks that `member_id` (of `instance`) belongs to the current generation.
    fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if self.is_fenced(instance, member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    pub(crate) fn sync(&mut self, req: SyncRequest, now: Instant) -> Pending<SyncResult> {
        let fail = |e| Pending::Ready(SyncResult::error(e));
        if let Err(e) =
            self.check_member(&req.member_id, req.instance_id.as_deref(), req.generation)
        {
            return fail(e);
        }
        let type_differs = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_differs = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol.as_ref());
        if type_differs || name_differs {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty => fail(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let member = self.members.get_mut(&req.member_id);
                let assignment = member.map(|m| {
                    m.heartbeat(now);
                    m.assignment.clone()
                });
                Pending::Ready(self.sync_result(assignment.unwrap_or_default()))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(&req.member_id) {
                    member.sync = Some(tx);
                    member.heartbeat(now);
                }
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    self.assign(req.assignments);
                }
                Pending::Wait(rx)
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    /// The leader's assignment arrived: store it, settle, answer every waiting SyncGroup.
    fn assign(&mut self, mut assignments: HashMap<String, Bytes>) {
        let (protocol_type, protocol) = (self.protocol_type.clone(), self.protocol.clone());
        for member in self.members.values_mut() {
            member.assignment = assignments.remove(&member.id).unwrap_or_default();
            if let Some(tx) = member.sync.take() {
                let _ = tx.send(SyncResult {
                    error: None,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol.clone(),
                    assignment: member.assignment.clone(),
                });
            }
        }
        self.sync_deadline = None;
        self.dirty = true;
        self.set_state(GroupState::Stable);
        let rebalance_ms = self
            .rebalance_started
            .take()
            .map(|t| t.elapsed().as_secs_f64() * 1e3);
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), rebalance_ms, "group is stable");
    }

    pub(crate) fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        self.check_member(member_id, instance, generation)?;
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat(now);
        }
        match self.state {
            GroupState::Empty => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Removes each named member; a static member may be named by its instance id alone.
    pub(crate) fn leave(
        &mut self,
        leaving: &[Leaving],
        now: Instant,
    ) -> Vec<Result<(), ResponseError>> {
        leaving.iter().map(|l| self.leave_one(l, now)).collect()
    }

    fn leave_one(&mut self, l: &Leaving, now: Instant) -> Result<(), ResponseError> {
        let id = match &l.instance_id {
            Some(instance) => {
                let owner = self
                    .static_members
                    .get(instance)
                    .cloned()
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !l.member_id.is_empty() && owner != l.member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                owner
            }
            None => l.member_id.clone(),
        };
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id, now, "the member left");
        Ok(())
    }
}

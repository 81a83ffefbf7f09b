//! Rebalance mechanics: preparing a rebalance, completing the join phase,
//! removing members, and the timers that drive them without a client's help.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{Group, GroupState};
use crate::util::now_ms;

fn ms(v: i32) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

impl Group {
    pub(crate) fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_since_ms = now_ms();
    }

    fn rebalance_timeout(&self) -> Duration {
        ms(self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0))
    }

    /// Moves to PreparingRebalance; pending SyncGroups get REBALANCE_IN_PROGRESS.
    pub(crate) fn prepare_rebalance(&mut self, now: Instant, initial_delay_ms: i32, reason: &str) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.sync.take() {
                    let _ = tx.send(super::state::SyncResult::error(
                        ResponseError::RebalanceInProgress,
                    ));
                }
            }
        }
        let timeout = self.rebalance_timeout();
        self.join_deadline = Some(now + timeout);
        self.delay_until = None;
        if self.state == GroupState::Empty && initial_delay_ms > 0 {
            self.delay_until = Some(now + ms(initial_delay_ms).min(timeout));
            self.new_member_added = false;
        }
        self.sync_deadline = None;
        self.rebalance_started = Some(now);
        tracing::debug!(group = %self.id, generation = self.generation, reason, "preparing rebalance");
        self.set_state(GroupState::PreparingRebalance);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join.is_some())
    }

    /// Completes the join phase once every member has rejoined or the rebalance timeout passed.
    pub(crate) fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance || self.delay_until.is_some() {
            return;
        }
        let expired = self.join_deadline.is_some_and(|d| now >= d);
        if self.all_joined() || expired {
            self.complete_join(now);
        }
    }

    /// Drops members that did not rejoin, starts the next generation and answers every JoinGroup.
    fn complete_join(&mut self, now: Instant) {
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.forget_member(&id);
        }
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.generation += 1;
        self.join_deadline = None;
        self.pending.clear();
        self.dirty = true;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol = self.select_protocol();
        self.set_state(GroupState::CompletingRebalance);
        self.sync_deadline = Some(now + self.rebalance_timeout());
        let leader = self.leader.clone().unwrap_or_default();
        let members = self.joined_members();
        let (protocol_type, protocol) = (self.protocol_type.clone(), self.protocol.clone());
        let generation = self.generation;
        tracing::info!(group = %self.id, generation = self.generation, members = members.len(), %leader,
            protocol = protocol.as_deref().unwrap_or_default(), "join phase complete");
        for member in self.members.values_mut() {
            member.heartbeat(now);
            if let Some(tx) = member.join.take() {
                let result = super::state::JoinResult {
                    error: None,
                    generation,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol.clone(),
                    leader: leader.clone(),
                    member_id: member.id.clone(),
                    members: if member.id == leader {
                        members.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                };
                let _ = tx.send(result);
            }
        }
    }

    /// Removes a member from the maps without touching the group state.
    pub(crate) fn forget_member(&mut self, id: &str) {
        if let Some(member) = self.members.remove(id)
            && let Some(instance) = &member.instance_id
            && self
                .static_members
                .get(instance)
                .is_some_and(|owner| owner == id)
        {
            self.static_members.remove(instance);
        }
    }

    /// A member left or expired: its waiters fail and the others rebalance.
    pub(crate) fn remove_member(&mut self, id: &str, now: Instant, reason: &str) {
        if let Some(member) = self.members.get_mut(id) {
            member.fail_waiters(ResponseError::UnknownMemberId);
        }
        self.forget_member(id);
        tracing::info!(group = %self.id, member = %id, reason, "member removed");
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, 0, reason);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty => {}
        }
    }

    /// Runs the group's timers: initial delay, join and sync deadlines, sessions.
    pub(crate) fn tick(&mut self, now: Instant, initial_delay_ms: i32) {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, d)| now >= **d)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.pending.remove(&id);
        }
        if let Some(until) = self.delay_until
            && now >= until
        {
            let room = self.join_deadline.is_some_and(|d| d > now);
            self.delay_until = (self.new_member_added && room)
                .then(|| now + ms(initial_delay_ms))
                .map(|t| self.join_deadline.map_or(t, |d| t.min(d)));
            self.new_member_added = false;
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now >= d)
        {
            let lagging: Vec<String> = self
                .members
                .values()
                .filter(|m| m.sync.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in lagging {
                tracing::info!(group = %self.id, member = %id, "member did not sync in time; removed");
                self.forget_member(&id);
            }
            self.prepare_rebalance(now, 0, "sync timeout");
        }
        self.try_complete_join(now);
        let silent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none() && m.sync.is_none() && now >= m.deadline)
            .map(|m| m.id.clone())
            .collect();
        for id in silent {
            self.remove_member(&id, now, "session timeout");
        }
    }
}

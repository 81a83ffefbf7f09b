//! ConsumerGroupHeartbeat for one group: join, stay, reconcile, leave.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use super::assignor::{self, Subscriber};
use super::reconcile::{self, Current, MemberState};
use super::records::MemberValue;
use super::{
    ASSIGNORS, Assignment, ConsumerGroup, ConsumerMember, ConsumerState, LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH, compile,
};
use crate::catalog::TopicImage;

/// A ConsumerGroupHeartbeat request, whatever its version.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeartbeatRequest {
    pub group_id: String,
    /// Chosen by the client from v1; by the broker on a v0 first join.
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// `None` when unchanged.
    pub topic_names: Option<Vec<String>>,
    pub topic_regex: Option<String>,
    pub assignor: Option<String>,
    /// What the member owns; `None` when unchanged.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What a heartbeat answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeartbeatResponse {
    pub member_id: String,
    pub member_epoch: i32,
    /// The member's assignment, when it changed or the request was a full one.
    pub assignment: Option<Assignment>,
}

/// An error code and the message that explains it.
pub(crate) type Refusal = (ResponseError, String);

fn refuse(code: ResponseError, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

impl HeartbeatRequest {
    /// Kafka's checks of a heartbeat's fields, before any group is touched.
    pub(crate) fn validate(&self) -> Result<(), Refusal> {
        let invalid = |m: &str| Err(refuse(ResponseError::InvalidRequest, m));
        if self.group_id.is_empty() {
            return Err(refuse(
                ResponseError::InvalidGroupId,
                "GroupId can't be empty.",
            ));
        }
        if self.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if self.rack_id.as_deref() == Some("") {
            return invalid("RackId can't be empty.");
        }
        match self.member_epoch {
            0 => {
                if self.rebalance_timeout_ms == -1 {
                    return invalid("RebalanceTimeoutMs must be provided in first request.");
                }
                if self.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                    return invalid("TopicPartitions must be empty when (re-)joining.");
                }
                if self.topic_names.is_none() && self.topic_regex.is_none() {
                    return invalid(
                        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                    );
                }
            }
            STATIC_LEAVE_EPOCH if self.instance_id.is_none() => {
                return invalid("InstanceId can't be null.");
            }
            e if e > 0 || e == LEAVE_EPOCH || e == STATIC_LEAVE_EPOCH => {}
            _ => return invalid("MemberEpoch is invalid."),
        }
        if self.member_id.is_empty() && self.member_epoch != 0 {
            return invalid("MemberId can't be empty.");
        }
        if let Some(a) = &self.assignor
            && !ASSIGNORS.contains(&a.as_str())
        {
            return Err(refuse(
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    ASSIGNORS.join(", ")
                ),
            ));
        }
        if let Some(r) = &self.topic_regex
            && let Err(e) = compile(r)
        {
            return Err(refuse(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex {r:?} is not a valid regular expression: {e}"),
            ));
        }
        Ok(())
    }
}

impl ConsumerGroup {
    /// One heartbeat of a member whose request passed [`HeartbeatRequest::validate`].
    pub(crate) fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        image: &TopicImage,
        session: Duration,
        now: Instant,
    ) -> Result<HeartbeatResponse, Refusal> {
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&req, now);
        }
        let (id, mut bump) = self.admit(&req, now)?;
        let full = req.member_epoch == 0
            || (req.rebalance_timeout_ms != -1
                && (req.topic_names.is_some() || req.topic_regex.is_some())
                && req.owned.is_some());
        let before = self.members.get(&id).map(|m| m.current.assigned.clone());
        if let Some(member) = self.members.get_mut(&id) {
            bump |= update(member, &req);
            member.deadline = now + session;
        }
        if bump {
            self.dirty_members.insert(id.clone());
        }
        if bump || self.resolved_at != Some(image.generation) {
            let resolved = self.resolve(image);
            self.resolved_at = Some(image.generation);
            if resolved != self.resolved {
                self.resolved = resolved;
                bump = true;
            }
        }
        if bump {
            self.bump_epoch(now);
            tracing::info!(member = %id, epoch = self.epoch, "consumer group epoch bumped");
        }
        if self.epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&id, req.owned.as_ref(), now);
        if self.state() == ConsumerState::Stable
            && let Some(started) = self.rebalance_started.take()
        {
            let rebalance_ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::info!(
                epoch = self.epoch,
                members = self.members.len(),
                rebalance_ms,
                "consumer group is stable"
            );
        }
        let member = self
            .members
            .get(&id)
            .ok_or_else(|| refuse(ResponseError::UnknownMemberId, "member vanished"))?;
        let changed = before.as_ref() != Some(&member.current.assigned);
        Ok(HeartbeatResponse {
            member_id: id,
            member_epoch: member.current.epoch,
            assignment: (full || changed).then(|| member.current.assigned.clone()),
        })
    }

    /// Finds the member the heartbeat is from, or adds it; returns its id and
    /// whether it is new (which bumps the group epoch).
    fn admit(&mut self, req: &HeartbeatRequest, now: Instant) -> Result<(String, bool), Refusal> {
        let id = if req.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        let unknown = || {
            refuse(
                ResponseError::UnknownMemberId,
                format!("Member {id} is not a member of the group."),
            )
        };
        if let Some(instance) = &req.instance_id {
            match self.static_members.get(instance).cloned() {
                Some(owner) if owner != id && req.member_epoch == 0 => {
                    let old_epoch = self.members.get(&owner).map(|m| m.current.epoch);
                    if old_epoch != Some(STATIC_LEAVE_EPOCH) {
                        return Err(refuse(
                            ResponseError::UnreleasedInstanceId,
                            format!("Instance id {instance} is owned by member {owner}."),
                        ));
                    }
                    // An id that is already a member takes over the instance: it
                    // leaves first, so nothing of it is left behind.
                    let bump = self.members.contains_key(&id);
                    if bump {
                        self.remove_member(&id, now, "rejoined as another static member");
                    }
                    self.replace_static(&owner, &id, now);
                    return Ok((id, bump));
                }
                Some(owner) if owner != id => {
                    return Err(refuse(
                        ResponseError::FencedInstanceId,
                        format!("Instance id {instance} belongs to member {owner}."),
                    ));
                }
                None if req.member_epoch != 0 => return Err(unknown()),
                _ => {}
            }
        }
        if req.member_epoch == 0 {
            if self.members.contains_key(&id) {
                // A rejoin: whatever the member held, it has let go of.
                self.set_current(&id, fresh(0));
                self.set_instance(&id, req.instance_id.as_deref());
                return Ok((id, false));
            }
            self.members.insert(id.clone(), new_member(&id, now));
            if let Some(instance) = &req.instance_id {
                self.static_members.insert(instance.clone(), id.clone());
            }
            tracing::info!(member = %id, "member joins the consumer group");
            return Ok((id, true));
        }
        let member = self.members.get(&id).ok_or_else(unknown)?;
        check_epoch(member, req.member_epoch, req.owned.as_ref())?;
        Ok((id, false))
    }

    /// Keeps the instance index in step when a member's instance id changes.
    fn set_instance(&mut self, id: &str, instance: Option<&str>) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        if member.subscription.instance_id.as_deref() == instance || instance.is_none() {
            return;
        }
        if let Some(old) = member.subscription.instance_id.take()
            && self.static_members.get(&old).is_some_and(|m| m == id)
        {
            self.static_members.remove(&old);
        }
        if let Some(new) = instance {
            member.subscription.instance_id = Some(new.to_string());
            self.static_members.insert(new.to_string(), id.to_string());
        }
    }

    /// A static member comes back under a new member id: it takes over the
    /// old member's epoch, assignment and target.
    fn replace_static(&mut self, old: &str, new: &str, now: Instant) {
        let Some(mut member) = self.members.remove(old) else {
            return;
        };
        let current = std::mem::replace(&mut member.current, fresh(0));
        member.id = new.to_string();
        member.deadline = now;
        self.members.insert(new.to_string(), member);
        if let Some(target) = self.target.remove(old) {
            self.target.insert(new.to_string(), target);
        }
        for owner in self.owners.values_mut().filter(|o| *o == old) {
            *owner = new.to_string();
        }
        let restored = Current {
            epoch: current.previous_epoch.max(0),
            ..current
        };
        if let Some(m) = self.members.get_mut(new) {
            m.current = restored;
            if let Some(instance) = &m.subscription.instance_id {
                self.static_members
                    .insert(instance.clone(), new.to_string());
            }
        }
        self.dirty_members.insert(old.to_string());
        self.dirty_members.insert(new.to_string());
        tracing::info!(old, new, "static member rejoined under a new member id");
    }

    fn leave(
        &mut self,
        req: &HeartbeatRequest,
        now: Instant,
    ) -> Result<HeartbeatResponse, Refusal> {
        let id = match &req.instance_id {
            Some(instance) => {
                let owner = self.static_members.get(instance).cloned().ok_or_else(|| {
                    refuse(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    )
                })?;
                if owner != req.member_id {
                    return Err(refuse(
                        ResponseError::FencedInstanceId,
                        format!("Instance id {instance} belongs to member {owner}."),
                    ));
                }
                owner
            }
            None => req.member_id.clone(),
        };
        if !self.members.contains_key(&id) {
            return Err(refuse(
                ResponseError::UnknownMemberId,
                format!("Member {id} is not a member of the group."),
            ));
        }
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            // The static member keeps its partitions until it returns or its
            // session ends; what it was revoking is released now.
            if let Some(m) = self.members.get(&id) {
                let away = Current {
                    state: MemberState::Stable,
                    epoch: STATIC_LEAVE_EPOCH,
                    previous_epoch: m.current.epoch,
                    assigned: m.current.assigned.clone(),
                    revoking: Assignment::new(),
                };
                self.set_current(&id, away);
            }
            if let Some(m) = self.members.get_mut(&id) {
                m.revoke_deadline = None;
            }
            self.dirty_members.insert(id.clone());
            tracing::info!(member = %id, "static member left temporarily");
        } else {
            self.remove_member(&id, now, "the member left");
        }
        Ok(HeartbeatResponse {
            member_id: id,
            member_epoch: req.member_epoch,
            assignment: None,
        })
    }

    /// What the members' subscriptions resolve to in `image`.
    fn resolve(&self, image: &TopicImage) -> BTreeMap<String, (uuid::Uuid, i32)> {
        let mut out = BTreeMap::new();
        for m in self.members.values() {
            for name in &m.subscription.topic_names {
                if let Some(t) = image.topics.get(name) {
                    out.insert(name.clone(), *t);
                }
            }
            if let Some(re) = &m.regex {
                for (name, t) in image.topics.iter().filter(|(n, _)| re.is_match(n)) {
                    out.insert(name.clone(), *t);
                }
            }
        }
        out
    }

    /// A new target assignment at the group epoch.
    fn compute_target(&mut self) {
        let subscribers: Vec<Subscriber> = self
            .members
            .values()
            .map(|m| Subscriber {
                member_id: m.id.clone(),
                topics: self
                    .resolved
                    .iter()
                    .filter(|(name, _)| m.subscribes(name))
                    .map(|(_, (id, _))| *id)
                    .collect(),
            })
            .collect();
        let partitions = self.resolved.values().copied().collect();
        let target = assignor::assign(self.assignor(), &subscribers, &partitions, &self.target);
        for (id, a) in &target {
            if self.target.get(id) != Some(a) {
                self.dirty_members.insert(id.clone());
            }
        }
        self.target = target;
        self.assignment_epoch = self.epoch;
        self.dirty_epochs = true;
    }

    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let Some(member) = self.members.get(id) else {
            return;
        };
        let empty = Assignment::new();
        let target = self.target.get(id).unwrap_or(&empty);
        let owners = &self.owners;
        let next = reconcile::advance(
            &member.current,
            self.assignment_epoch,
            target,
            owned,
            |t, p| owners.get(&(t, p)).is_none_or(|o| o == id),
        );
        let timeout = Duration::from_millis(member.subscription.rebalance_timeout_ms.max(0) as u64);
        let revoking = next.state == MemberState::UnrevokedPartitions;
        // A new revocation (not the one already asked for) restarts the clock.
        let asked_again = revoking && next != member.current;
        self.set_current(id, next);
        if let Some(m) = self.members.get_mut(id) {
            m.revoke_deadline = match (revoking, m.revoke_deadline) {
                (false, _) => None,
                (true, Some(d)) if !asked_again => Some(d),
                (true, _) => Some(now + timeout),
            };
        }
    }
}

/// Kafka's epoch check: an epoch ahead of the broker's is fenced; one behind
/// is accepted only if it is the previous epoch and the member owns no more
/// than it is assigned (the answer with the new epoch was lost).
fn check_epoch(
    member: &ConsumerMember,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), Refusal> {
    let known = member.current.epoch;
    let fenced = |how| {
        Err(refuse(
            ResponseError::FencedMemberEpoch,
            format!(
                "The member has a {how} epoch ({received}) than the coordinator's ({known}). \
                 It must abandon its partitions and rejoin."
            ),
        ))
    };
    if received > known {
        return fenced("greater");
    }
    if received < known {
        let subset = owned.is_some_and(|o| {
            o.iter().all(|(t, ps)| {
                member
                    .current
                    .assigned
                    .get(t)
                    .is_some_and(|a| ps.is_subset(a))
                    || ps.is_empty()
            })
        });
        if received != member.current.previous_epoch || !subset {
            return fenced("smaller");
        }
    }
    Ok(())
}

/// Applies the heartbeat's fields; returns whether the subscription changed.
fn update(member: &mut ConsumerMember, req: &HeartbeatRequest) -> bool {
    let s = &mut member.subscription;
    let mut changed = false;
    if let Some(names) = &req.topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        changed |= s.topic_names != names;
        s.topic_names = names;
    }
    if let Some(regex) = &req.topic_regex {
        let regex = Some(regex.clone()).filter(|r| !r.is_empty());
        if s.topic_regex != regex {
            changed = true;
            member.regex = regex.as_deref().and_then(|r| compile(r).ok());
            s.topic_regex = regex;
        }
    }
    if let Some(a) = &req.assignor
        && s.assignor.as_ref() != Some(a)
    {
        s.assignor = Some(a.clone());
        changed = true;
    }
    if req.rebalance_timeout_ms != -1 {
        s.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if req.instance_id.is_some() {
        s.instance_id = req.instance_id.clone();
    }
    if req.rack_id.is_some() {
        s.rack_id = req.rack_id.clone();
    }
    s.client_id = req.client_id.clone();
    s.client_host = req.client_host.clone();
    changed
}

fn fresh(epoch: i32) -> Current {
    Current {
        state: MemberState::Stable,
        epoch,
        previous_epoch: -1,
        assigned: Assignment::new(),
        revoking: Assignment::new(),
    }
}

fn new_member(id: &str, now: Instant) -> ConsumerMember {
    ConsumerMember {
        id: id.to_string(),
        subscription: MemberValue {
            rebalance_timeout_ms: -1,
            ..MemberValue::default()
        },
        regex: None,
        current: fresh(0),
        deadline: now,
        revoke_deadline: None,
    }
}

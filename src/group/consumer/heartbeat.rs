//! ConsumerGroupHeartbeat for one group: join, stay, reconcile, leave.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use super::assignor::{self, Subscriber};
use super::reconcile::{self, MemberState};
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

pub(super) fn refuse(code: ResponseError, message: impl Into<String>) -> Refusal {
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
        self.advance_epoch(&id, bump, image, now);
        self.reconcile(&id, req.owned.as_ref(), now);
        self.note_stable();
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

    /// Bumps the group epoch when the member `id` changed (`bump`) or the
    /// subscriptions now resolve to other topics, then computes the target
    /// assignment if the epoch moved past it.
    fn advance_epoch(&mut self, id: &str, mut bump: bool, image: &TopicImage, now: Instant) {
        if bump {
            self.dirty_members.insert(id.to_string());
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
    }

    /// Logs how long a rebalance took, once the group is stable again.
    fn note_stable(&mut self) {
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

//! Who a heartbeat is from: admitting new members, static members coming
//! back under a new id, epoch checks, and leaving (-1, or -2 for a while).

use std::time::Instant;

use kafka_protocol::ResponseError;

use super::heartbeat::{HeartbeatRequest, HeartbeatResponse, Refusal, refuse};
use super::reconcile::{Current, MemberState};
use super::records::MemberValue;
use super::{Assignment, ConsumerGroup, ConsumerMember, STATIC_LEAVE_EPOCH};

impl ConsumerGroup {
    /// Finds the member the heartbeat is from, or adds it; returns its id and
    /// whether it is new (which bumps the group epoch).
    pub(super) fn admit(
        &mut self,
        req: &HeartbeatRequest,
        now: Instant,
    ) -> Result<(String, bool), Refusal> {
        let id = if req.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        if let Some(instance) = &req.instance_id
            && let Some(bump) = self.admit_static(instance, &id, req.member_epoch, now)?
        {
            return Ok((id, bump));
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
        let member = self.members.get(&id).ok_or_else(|| unknown_member(&id))?;
        check_epoch(member, req.member_epoch, req.owned.as_ref())?;
        Ok((id, false))
    }

    /// Checks a static member's `instance` id against the member `id`
    /// heartbeating at `epoch`. A join (epoch 0) takes the instance over
    /// from a member that left it with the static leave epoch: `Some`, with
    /// whether that bumps the group epoch. `None`: nothing decided yet.
    fn admit_static(
        &mut self,
        instance: &str,
        id: &str,
        epoch: i32,
        now: Instant,
    ) -> Result<Option<bool>, Refusal> {
        match self.static_members.get(instance).cloned() {
            Some(owner) if owner != id && epoch == 0 => {
                let old_epoch = self.members.get(&owner).map(|m| m.current.epoch);
                if old_epoch != Some(STATIC_LEAVE_EPOCH) {
                    return Err(refuse(
                        ResponseError::UnreleasedInstanceId,
                        format!("Instance id {instance} is owned by member {owner}."),
                    ));
                }
                // An id that is already a member takes over the instance: it
                // leaves first, so nothing of it is left behind.
                let bump = self.members.contains_key(id);
                if bump {
                    self.remove_member(id, now, "rejoined as another static member");
                }
                self.replace_static(&owner, id, now);
                Ok(Some(bump))
            }
            Some(owner) if owner != id => Err(refuse(
                ResponseError::FencedInstanceId,
                format!("Instance id {instance} belongs to member {owner}."),
            )),
            None if epoch != 0 => Err(unknown_member(id)),
            _ => Ok(None),
        }
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

    pub(super) fn leave(
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

/// UNKNOWN_MEMBER_ID for the member `id`.
fn unknown_member(id: &str) -> Refusal {
    refuse(
        ResponseError::UnknownMemberId,
        format!("Member {id} is not a member of the group."),
    )
}

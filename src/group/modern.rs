//! The coordinator's side of the consumer group protocol (KIP-848):
//! ConsumerGroupHeartbeat, ConsumerGroupDescribe, and the member checks of
//! OffsetCommit and OffsetFetch for such groups. A group id is of one
//! protocol at a time: an empty group of the other protocol is converted, a
//! non-empty one refuses.

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use super::codec::Entry;
use super::consumer::records::MemberValue;
use super::consumer::{Assignment, ConsumerGroup, HeartbeatRequest, HeartbeatResponse};
use super::state::Group;
use super::{Coordinator, Inner};
use crate::catalog::TopicImage;

pub(crate) use super::consumer::Refusal;

/// ConsumerGroupDescribe's view of a group.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerDescription {
    pub state: &'static str,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<DescribedMember>,
}

/// ConsumerGroupDescribe's view of a member.
#[derive(Debug, Clone)]
pub(crate) struct DescribedMember {
    pub member_id: String,
    pub epoch: i32,
    pub subscription: MemberValue,
    pub assigned: Assignment,
    pub target: Assignment,
}

impl Coordinator {
    /// ConsumerGroupHeartbeat: joins, heartbeats, reconciles or leaves.
    /// `session_ms` is the group's session timeout (`None`: the broker's).
    pub(crate) fn consumer_heartbeat(
        &self,
        req: HeartbeatRequest,
        image: &TopicImage,
        session_ms: Option<i32>,
    ) -> Result<HeartbeatResponse, Refusal> {
        req.validate()?;
        let session_ms = session_ms.unwrap_or(self.config.consumer_session_timeout_ms);
        let session = Duration::from_millis(session_ms.max(0) as u64);
        let mut inner = self.lock();
        if inner.stopping {
            return Err((
                ResponseError::CoordinatorNotAvailable,
                "the broker is stopping".into(),
            ));
        }
        let group = inner.consumer_group(&req.group_id, req.member_epoch == 0)?;
        let result = group.heartbeat(req, image, session, Instant::now());
        inner.persist();
        result
    }

    /// ConsumerGroupDescribe for one group: GROUP_ID_NOT_FOUND unless it is a
    /// consumer group.
    pub(crate) fn consumer_describe(&self, group_id: &str) -> Result<ConsumerDescription, Refusal> {
        if group_id.is_empty() {
            return Err((
                ResponseError::InvalidGroupId,
                "GroupId can't be empty.".into(),
            ));
        }
        let inner = self.lock();
        let Some(c) = inner.groups.get(group_id).and_then(|g| g.consumer.as_ref()) else {
            return Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} not found."),
            ));
        };
        let members = c
            .members
            .values()
            .map(|m| DescribedMember {
                member_id: m.id.clone(),
                epoch: m.current.epoch,
                subscription: m.subscription.clone(),
                assigned: m.current.assigned.clone(),
                target: c.target.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        Ok(ConsumerDescription {
            state: c.state().name(),
            epoch: c.epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: c.assignor().to_string(),
            members,
        })
    }
}

impl Inner {
    /// The consumer group `id`, created (or converted from an empty classic
    /// group) when `create`.
    fn consumer_group(&mut self, id: &str, create: bool) -> Result<&mut ConsumerGroup, Refusal> {
        let unknown = || {
            (
                ResponseError::UnknownMemberId,
                format!("Group {id} has no such member."),
            )
        };
        let convert = match self.groups.get(id) {
            None if !create => return Err(unknown()),
            None => {
                self.groups
                    .insert(id.to_string(), Group::new(id, crate::util::now_ms()));
                true
            }
            Some(g) if g.consumer.is_some() => false,
            Some(g) if g.is_empty() && g.members.is_empty() => {
                if !create {
                    return Err(unknown());
                }
                // An empty classic group becomes a consumer group; its offsets stay.
                let tombstone = Entry::Group {
                    group: id.to_string(),
                    value: None,
                };
                if let Err(e) = self.append(&[tombstone]) {
                    return Err((super::response_error(&e), e.to_string()));
                }
                true
            }
            Some(_) => {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {id} is not a consumer group."),
                ));
            }
        };
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| (ResponseError::CoordinatorNotAvailable, String::new()))?;
        if convert {
            let offsets = std::mem::take(&mut group.offsets);
            *group = Group::new(id, crate::util::now_ms());
            group.offsets = offsets;
            group.consumer = Some(ConsumerGroup::default());
        }
        group
            .consumer
            .as_mut()
            .ok_or_else(|| (ResponseError::CoordinatorNotAvailable, String::new()))
    }

    /// A classic JoinGroup for a consumer group: an empty one becomes classic;
    /// a non-empty one answers INCONSISTENT_GROUP_PROTOCOL.
    pub(super) fn classic_join_allowed(&mut self, id: &str) -> Result<(), ResponseError> {
        let Some(group) = self.groups.get_mut(id) else {
            return Ok(());
        };
        let Some(c) = &group.consumer else {
            return Ok(());
        };
        if !c.members.is_empty() {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let entries: Vec<Entry> = c
            .tombstones()
            .into_iter()
            .map(|record| Entry::Consumer {
                group: id.to_string(),
                record,
            })
            .collect();
        self.append(&entries)
            .map_err(|e| super::response_error(&e))?;
        if let Some(group) = self.groups.get_mut(id) {
            group.consumer = None;
        }
        Ok(())
    }
}

/// OffsetCommit from a member of a consumer group: `epoch` must be the
/// member's current epoch. A commit with a negative epoch (an admin client, a
/// consumer without group management) is allowed only while the group is empty.
pub(crate) fn check_commit(
    c: &ConsumerGroup,
    member_id: &str,
    epoch: i32,
) -> Result<(), ResponseError> {
    if epoch < 0 && c.members.is_empty() {
        return Ok(());
    }
    check_member_epoch(c, member_id, epoch)
}

/// OffsetFetch v9 with a member id and epoch: both must match a member.
pub(crate) fn check_fetch(
    c: &ConsumerGroup,
    member_id: Option<&str>,
    epoch: i32,
) -> Result<(), ResponseError> {
    match member_id {
        None => Ok(()),
        Some(id) if epoch < 0 && id.is_empty() => Ok(()),
        Some(id) => check_member_epoch(c, id, epoch),
    }
}

/// UNKNOWN_MEMBER_ID unless `member_id` is a member; STALE_MEMBER_EPOCH
/// unless `epoch` is its current epoch.
fn check_member_epoch(c: &ConsumerGroup, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
    let member = c
        .members
        .get(member_id)
        .ok_or(ResponseError::UnknownMemberId)?;
    if epoch != member.current.epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

/// DescribeGroups' view of a consumer group, as Kafka gives it: protocol type
/// "consumer", the assignor as the protocol, and each member's subscription
/// and assignment in the classic consumer protocol's encoding (version 0).
pub(super) fn summary(c: &ConsumerGroup) -> super::admin::GroupSummary {
    let names: std::collections::HashMap<uuid::Uuid, &str> = c
        .resolved
        .iter()
        .map(|(name, (id, _))| (*id, name.as_str()))
        .collect();
    let members = c
        .members
        .values()
        .map(|m| {
            let mut metadata = Vec::new();
            metadata.extend_from_slice(&0i16.to_be_bytes());
            let topics: Vec<&str> = c
                .resolved
                .keys()
                .filter(|t| m.subscribes(t))
                .map(String::as_str)
                .collect();
            put_array(&mut metadata, &topics, |out, t| put_string(out, t));
            metadata.extend_from_slice(&(-1i32).to_be_bytes());
            let mut assignment = Vec::new();
            assignment.extend_from_slice(&0i16.to_be_bytes());
            let owned: Vec<_> = m.current.assigned.iter().collect();
            put_array(&mut assignment, &owned, |out, (id, ps)| {
                put_string(out, names.get(id).copied().unwrap_or_default());
                let ps: Vec<&i32> = ps.iter().collect();
                put_array(out, &ps, |out, p| out.extend_from_slice(&p.to_be_bytes()));
            });
            assignment.extend_from_slice(&(-1i32).to_be_bytes());
            super::admin::MemberSummary {
                member_id: m.id.clone(),
                instance_id: m.subscription.instance_id.clone(),
                client_id: m.subscription.client_id.clone(),
                client_host: m.subscription.client_host.clone(),
                metadata: metadata.into(),
                assignment: assignment.into(),
            }
        })
        .collect();
    super::admin::GroupSummary {
        state: c.state().name(),
        protocol_type: "consumer".to_string(),
        protocol: c.assignor().to_string(),
        members,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_array<T>(out: &mut Vec<u8>, items: &[T], mut put: impl FnMut(&mut Vec<u8>, &T)) {
    out.extend_from_slice(&(items.len() as i32).to_be_bytes());
    for item in items {
        put(out, item);
    }
}

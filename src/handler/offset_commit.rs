//! OffsetCommit: partitions unknown to the catalog are refused; the others are
//! written to the offsets log before the response. The authorizer needs
//! READ on the group (else every partition answers GROUP_AUTHORIZATION_FAILED)
//! and on each topic.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;
use crate::group::Commit;

/// Per topic, per partition: its index and either its place among the
/// commits or the refusal it gets without the group being asked.
type Slots = Vec<Vec<(i32, std::result::Result<usize, ResponseError>)>>;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: OffsetCommitRequest,
    _version: i16,
) -> Result<OffsetCommitResponse> {
    let group = ctx
        .check(op::READ, resource::GROUP, &req.group_id)
        .and_then(|()| ctx.coordinates_group(&req.group_id));
    let (commits, slots, denied_topic) = commits_and_refusals(ctx, &req, group);
    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
    // Refused by the authorizer (the group, or every topic named): the
    // group is not asked, as in Kafka.
    let results = if group.is_err() || (commits.is_empty() && denied_topic) {
        Vec::new()
    } else {
        ctx.groups
            .commit(
                &req.group_id,
                req.generation_id_or_member_epoch,
                &req.member_id,
                instance.as_deref(),
                &commits,
            )
            .await
    };
    let mut response = OffsetCommitResponse::default();
    for (topic, slot) in req.topics.into_iter().zip(slots) {
        let mut out = OffsetCommitResponseTopic::default();
        out.name = topic.name;
        out.partitions = slot
            .into_iter()
            .map(|(index, slot)| {
                let result = slot.and_then(|i| {
                    results
                        .get(i)
                        .copied()
                        .unwrap_or(Err(ResponseError::UnknownServerError))
                });
                let mut p = OffsetCommitResponsePartition::default();
                p.partition_index = index;
                p.error_code = result.err().map_or(0, |e| e.code());
                p
            })
            .collect();
        response.topics.push(out);
    }
    Ok(response)
}

/// The commits the group is asked for, where each partition's answer comes
/// from, and whether the authorizer refused a topic (`group` is the
/// group's own check).
fn commits_and_refusals(
    ctx: &Call<'_>,
    req: &OffsetCommitRequest,
    group: std::result::Result<(), ResponseError>,
) -> (Vec<Commit>, Slots, bool) {
    let mut commits = Vec::new();
    let mut slots = Vec::new();
    let mut denied_topic = false;
    for topic in &req.topics {
        let name = topic.name.to_string();
        let refused = group.and_then(|()| ctx.check(op::READ, resource::TOPIC, &name));
        denied_topic |= group.is_ok() && refused.is_err();
        let mut slot = Vec::new();
        for p in &topic.partitions {
            let refused = refused.and_then(|()| {
                ctx.catalog
                    .partition(&name, p.partition_index)
                    .map(drop)
                    .map_err(|_| ResponseError::UnknownTopicOrPartition)
            });
            if let Err(e) = refused {
                slot.push((p.partition_index, Err(e)));
                continue;
            }
            slot.push((p.partition_index, Ok(commits.len())));
            commits.push(Commit {
                topic: name.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
        slots.push(slot);
    }
    (commits, slots, denied_topic)
}

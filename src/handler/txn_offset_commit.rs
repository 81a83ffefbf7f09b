//! TxnOffsetCommit: consumer offsets written in the transaction, counted
//! when EndTxn commits it and dropped when it aborts.
//! The authorizer needs WRITE on the transactional id, READ on the group
//! (else every partition answers the refusal) and READ on each topic.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;
use crate::group::Commit;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: TxnOffsetCommitRequest,
    _version: i16,
) -> Result<TxnOffsetCommitResponse> {
    let allowed = ctx
        .check(op::WRITE, resource::TRANSACTIONAL_ID, &req.transactional_id)
        .and_then(|()| ctx.check(op::READ, resource::GROUP, &req.group_id))
        .and_then(|()| ctx.coordinates_group(&req.group_id));
    let (commits, refused, denied_topic) = commits_and_refusals(ctx, &req, allowed);
    let producer = (req.producer_id.0, req.producer_epoch);
    // Refused by the authorizer (all of it, or every topic named): the
    // transaction is not touched, as in Kafka.
    let keys: Vec<(String, i32)> = commits
        .iter()
        .map(|c| (c.topic.clone(), c.partition))
        .collect();
    let held = if allowed.is_err() || (commits.is_empty() && denied_topic) {
        Ok(Vec::new())
    } else {
        ctx.txns
            .commit_offsets(&req.transactional_id, producer, &req.group_id, commits)
            .await
    };
    // Partitions whose offset was refused when written (its metadata too long, a failed write).
    let failed: Refused = match &held {
        Ok(results) => keys
            .into_iter()
            .zip(results)
            .filter_map(|(key, r)| r.err().map(|e| (key, e)))
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut response = TxnOffsetCommitResponse::default();
    for topic in req.topics {
        let mut out = TxnOffsetCommitResponseTopic::default();
        for p in topic.partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            let key = (topic.name.to_string(), p.partition_index);
            r.error_code = match refused.iter().chain(&failed).find(|(k, _)| *k == key) {
                Some((_, e)) => e.code(),
                None => held.as_ref().err().map_or(0, |e| e.code()),
            };
            out.partitions.push(r);
        }
        out.name = topic.name;
        response.topics.push(out);
    }
    Ok(response)
}

/// Partitions answered here: refused by the authorizer, or unknown.
type Refused = Vec<((String, i32), ResponseError)>;

/// The commits the transaction holds, the partitions answered here, and
/// whether the authorizer refused a topic (`allowed`: the request's own checks).
fn commits_and_refusals(
    ctx: &Call<'_>,
    req: &TxnOffsetCommitRequest,
    allowed: std::result::Result<(), ResponseError>,
) -> (Vec<Commit>, Refused, bool) {
    let mut commits = Vec::new();
    let mut refused = Vec::new();
    let mut denied_topic = false;
    for topic in &req.topics {
        let topic_allowed =
            allowed.and_then(|()| ctx.check(op::READ, resource::TOPIC, &topic.name));
        denied_topic |= allowed.is_ok() && topic_allowed.is_err();
        for p in &topic.partitions {
            let known = || {
                ctx.catalog
                    .partition(&topic.name, p.partition_index)
                    .map(drop)
                    .map_err(|_| ResponseError::UnknownTopicOrPartition)
            };
            if let Err(e) = topic_allowed.and_then(|()| known()) {
                refused.push(((topic.name.to_string(), p.partition_index), e));
                continue;
            }
            commits.push(Commit {
                topic: topic.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
    }
    (commits, refused, denied_topic)
}

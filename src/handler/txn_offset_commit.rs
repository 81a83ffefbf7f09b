//! TxnOffsetCommit: consumer offsets held by the transaction until EndTxn
//! commits it (then written like OffsetCommit) or aborts it (then dropped).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::Context;
use crate::error::Result;
use crate::group::Commit;

pub(super) async fn handle(
    ctx: &Context,
    req: TxnOffsetCommitRequest,
    _version: i16,
) -> Result<TxnOffsetCommitResponse> {
    let mut commits = Vec::new();
    let mut unknown = Vec::new();
    for topic in &req.topics {
        for p in &topic.partitions {
            if ctx
                .catalog
                .partition(&topic.name, p.partition_index)
                .is_err()
            {
                unknown.push((topic.name.to_string(), p.partition_index));
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
    let producer = (req.producer_id.0, req.producer_epoch);
    let held = ctx
        .txns
        .commit_offsets(&req.transactional_id, producer, &req.group_id, commits);
    let mut response = TxnOffsetCommitResponse::default();
    for topic in req.topics {
        let mut out = TxnOffsetCommitResponseTopic::default();
        for p in topic.partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = if unknown.contains(&(topic.name.to_string(), p.partition_index)) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                held.as_ref().err().map_or(0, |e| e.code())
            };
            out.partitions.push(r);
        }
        out.name = topic.name;
        response.topics.push(out);
    }
    Ok(response)
}

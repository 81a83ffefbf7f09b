//! OffsetForLeaderEpoch: nothing is ever truncated (no replica diverges),
//! so every epoch up to the leader's current one ends at the log end
//! offset; a later epoch is unknown (-1, -1). A single broker has only ever
//! had epoch 0.
//! The authorizer needs DESCRIBE on each topic.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::Call;
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> Result<OffsetForLeaderEpochResponse> {
    let mut response = OffsetForLeaderEpochResponse::default();
    let replica = ctx.may(op::CLUSTER_ACTION, resource::CLUSTER, CLUSTER_NAME);
    for topic in req.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            // A replica may ask with CLUSTER_ACTION instead, as in Kafka.
            let allowed = match replica {
                true => Ok(()),
                false => ctx.require(op::DESCRIBE, resource::TOPIC, &topic.topic),
            };
            let found = allowed
                .and_then(|()| ctx.catalog.partition(&topic.topic, p.partition))
                .and_then(|partition| {
                    let leader = ctx
                        .leads_at(&topic.topic, p.partition, p.current_leader_epoch)
                        .map_err(super::placement::not_led)?;
                    Ok((partition, leader))
                });
            match found {
                Err(e) => r.error_code = e.code(),
                Ok((partition, leader)) if (0..=leader.epoch).contains(&p.leader_epoch) => {
                    match partition.offsets() {
                        Ok(offsets) => {
                            r.leader_epoch = p.leader_epoch;
                            r.end_offset = offsets.high_watermark;
                        }
                        Err(e) => r.error_code = e.code(),
                    }
                }
                Ok(_) => {
                    r.leader_epoch = -1;
                    r.end_offset = -1;
                }
            }
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    Ok(response)
}

//! DeleteRecords: move a partition's log start offset forward (-1: to the
//! end). The authorizer needs DELETE on each topic.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: DeleteRecordsRequest,
    _version: i16,
) -> Result<DeleteRecordsResponse> {
    let mut response = DeleteRecordsResponse::default();
    for topic in req.topics {
        let mut out = DeleteRecordsTopicResult::default();
        out.name = topic.name.clone();
        for p in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            let result = ctx
                .require(op::DELETE, resource::TOPIC, &topic.name)
                .and_then(|()| ctx.catalog.partition(&topic.name, p.partition_index))
                .and_then(|partition| {
                    ctx.leads(&topic.name, p.partition_index)
                        .map_err(super::placement::not_led)?;
                    Ok(partition)
                })
                .and_then(|partition| partition.delete_records(p.offset));
            match result {
                Ok(low) => r.low_watermark = low,
                Err(e) => {
                    r.error_code = e.code();
                    r.low_watermark = -1;
                }
            }
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    Ok(response)
}

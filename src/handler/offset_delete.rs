//! OffsetDelete: drops committed offsets of topics the group no longer consumes.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::{Context, str_bytes};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: OffsetDeleteRequest,
    _version: i16,
) -> Result<OffsetDeleteResponse> {
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let mut response = OffsetDeleteResponse::default();
    match ctx.groups.delete_offsets(&req.group_id, &topics).await {
        Err(e) => response.error_code = e.code(),
        Ok(results) => {
            for (name, partitions) in results {
                let mut out = OffsetDeleteResponseTopic::default();
                out.name = TopicName(str_bytes(&name));
                out.partitions = partitions
                    .into_iter()
                    .map(|(index, r)| {
                        let mut p = OffsetDeleteResponsePartition::default();
                        p.partition_index = index;
                        p.error_code = r.err().map_or(0, |e| e.code());
                        p
                    })
                    .collect();
                response.topics.push(out);
            }
        }
    }
    Ok(response)
}

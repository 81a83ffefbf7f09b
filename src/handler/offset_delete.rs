//! OffsetDelete: drops committed offsets of topics the group no longer
//! consumes. The authorizer needs DELETE on the group and READ on each topic.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: OffsetDeleteRequest,
    _version: i16,
) -> Result<OffsetDeleteResponse> {
    let mut response = OffsetDeleteResponse::default();
    if let Err(e) = ctx
        .check(op::DELETE, resource::GROUP, &req.group_id)
        .and_then(|()| ctx.coordinates_group(&req.group_id))
    {
        response.error_code = e.code();
        return Ok(response);
    }
    let (topics, unauthorized): (Vec<_>, Vec<_>) = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .partition(|(name, _)| ctx.may(op::READ, resource::TOPIC, name));
    match ctx.groups.delete_offsets(&req.group_id, &topics).await {
        Err(e) => response.error_code = e.code(),
        Ok(mut results) => {
            let refused = Err(kafka_protocol::ResponseError::TopicAuthorizationFailed);
            results.extend(unauthorized.into_iter().map(|(name, partitions)| {
                (name, partitions.into_iter().map(|p| (p, refused)).collect())
            }));
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

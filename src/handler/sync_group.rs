//! SyncGroup: followers wait here for the leader's assignment.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;
use crate::group::SyncRequest;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: SyncGroupRequest,
    version: i16,
) -> Result<SyncGroupResponse> {
    if let Err(e) = ctx
        .check(op::READ, resource::GROUP, &req.group_id)
        .and_then(|()| ctx.coordinates_group(&req.group_id))
    {
        let mut response = SyncGroupResponse::default();
        response.error_code = e.code();
        return Ok(response);
    }
    let sync = SyncRequest {
        group_id: req.group_id.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        protocol_type: req.protocol_type.map(|t| t.to_string()),
        protocol_name: req.protocol_name.map(|n| n.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let result = ctx.groups.sync(sync).await;
    let mut response = SyncGroupResponse::default();
    response.error_code = result.error.map_or(0, |e| e.code());
    if version >= 5 {
        response.protocol_type = result.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = result.protocol_name.as_deref().map(str_bytes);
    }
    response.assignment = result.assignment;
    Ok(response)
}

//! Heartbeat: REBALANCE_IN_PROGRESS tells a member to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: HeartbeatRequest,
    _version: i16,
) -> Result<HeartbeatResponse> {
    let mut response = HeartbeatResponse::default();
    if let Err(e) = ctx
        .check(op::READ, resource::GROUP, &req.group_id)
        .and_then(|()| ctx.coordinates_group(&req.group_id))
    {
        response.error_code = e.code();
        return Ok(response);
    }
    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
    let result = ctx.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        instance.as_deref(),
        req.generation_id,
    );
    response.error_code = result.err().map_or(0, |e| e.code());
    Ok(response)
}

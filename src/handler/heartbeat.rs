//! Heartbeat: REBALANCE_IN_PROGRESS tells a member to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::Context;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: HeartbeatRequest,
    _version: i16,
) -> Result<HeartbeatResponse> {
    let instance = req.group_instance_id.as_ref().map(|i| i.to_string());
    let result = ctx.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        instance.as_deref(),
        req.generation_id,
    );
    let mut response = HeartbeatResponse::default();
    response.error_code = result.err().map_or(0, |e| e.code());
    Ok(response)
}

//! JoinGroup: the handler awaits the rebalance (this connection's loop waits
//! with it, which is what the client expects).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};

use super::{Call, Reply, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;
use crate::group::{JoinRequest, JoinResult};
use crate::protocol::{Request, encode_response};

pub(super) async fn handle(ctx: &Call<'_>, req: &Request, host: &str) -> Result<Reply> {
    let version = req.version();
    let body: JoinGroupRequest = req.decode()?;
    let join = JoinRequest {
        group_id: body.group_id.to_string(),
        member_id: body.member_id.to_string(),
        instance_id: body.group_instance_id.map(|i| i.to_string()),
        client_id: req.header.client_id().into_owned(),
        client_host: host.to_string(),
        session_timeout_ms: body.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            body.rebalance_timeout_ms
        } else {
            body.session_timeout_ms
        },
        protocol_type: body.protocol_type.to_string(),
        protocols: body
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let allowed = ctx
        .check(op::READ, resource::GROUP, &join.group_id)
        .and_then(|()| ctx.coordinates_group(&join.group_id));
    let result = match allowed {
        Ok(()) => ctx.groups.join(join).await,
        // Kafka's refusal names no member.
        Err(e) => crate::group::JoinResult::error(e, ""),
    };
    let response = respond(result, version);
    let frame = encode_response(
        ApiKey::JoinGroup,
        version,
        req.header.correlation_id,
        &response,
    )?;
    Ok(Reply::Frame(vec![frame.freeze().into()]))
}

/// JoinGroup's answer at `version`.
fn respond(result: JoinResult, version: i16) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = result.error.map_or(0, |e| e.code());
    response.generation_id = result.generation;
    if version >= 7 {
        response.protocol_type = result.protocol_type.as_deref().map(str_bytes);
    }
    response.protocol_name = match (result.protocol_name, version >= 7) {
        (Some(name), _) => Some(str_bytes(&name)),
        // Before v7 the field is not nullable.
        (None, false) => Some(str_bytes("")),
        (None, true) => None,
    };
    response.leader = str_bytes(&result.leader);
    if version >= 9 {
        response.skip_assignment = result.skip_assignment;
    }
    response.member_id = str_bytes(&result.member_id);
    response.members = result
        .members
        .into_iter()
        .map(|m| {
            let mut out = JoinGroupResponseMember::default();
            out.member_id = str_bytes(&m.member_id);
            if version >= 5 {
                out.group_instance_id = m.instance_id.as_deref().map(str_bytes);
            }
            out.metadata = m.metadata;
            out
        })
        .collect();
    response
}

//! LeaveGroup: one member before v3, several (by member or instance id) from v3.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;
use crate::group::Leaving;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: LeaveGroupRequest,
    version: i16,
) -> Result<LeaveGroupResponse> {
    let leaving: Vec<Leaving> = if version >= 3 {
        req.members
            .iter()
            .map(|m| Leaving {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            })
            .collect()
    } else {
        vec![Leaving {
            member_id: req.member_id.to_string(),
            instance_id: None,
        }]
    };
    let mut response = LeaveGroupResponse::default();
    if let Err(e) = ctx
        .check(op::READ, resource::GROUP, &req.group_id)
        .and_then(|()| ctx.coordinates_group(&req.group_id))
    {
        response.error_code = e.code();
        return Ok(response);
    }
    match ctx.groups.leave(&req.group_id, &leaving) {
        Err(e) => response.error_code = e.code(),
        Ok(results) if version < 3 => {
            response.error_code = results
                .first()
                .and_then(|r| r.err())
                .map_or(0, |e| e.code());
        }
        Ok(results) => {
            response.members = leaving
                .iter()
                .zip(results)
                .map(|(l, r)| {
                    let mut m = MemberResponse::default();
                    m.member_id = str_bytes(&l.member_id);
                    m.group_instance_id = l.instance_id.as_deref().map(str_bytes);
                    m.error_code = r.err().map_or(0, |e| e.code());
                    m
                })
                .collect();
        }
    }
    Ok(response)
}

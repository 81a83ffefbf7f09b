//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+:
//! "classic" or "consumer"). Without DESCRIBE on the cluster, the authorizer
//! lists only the groups the caller may describe.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{Call, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: ListGroupsRequest,
    version: i16,
) -> Result<ListGroupsResponse> {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let mut response = ListGroupsResponse::default();
    let every = ctx.may(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME);
    response.groups = ctx
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .filter(|listed| every || ctx.may(op::DESCRIBE, resource::GROUP, &listed.id))
        .map(|listed| {
            let mut g = ListedGroup::default();
            g.group_id = GroupId(str_bytes(&listed.id));
            g.protocol_type = str_bytes(&listed.protocol_type);
            if version >= 4 {
                g.group_state = str_bytes(listed.state);
            }
            if version >= 5 {
                g.group_type = str_bytes(listed.group_type);
            }
            g
        })
        .collect();
    Ok(response)
}

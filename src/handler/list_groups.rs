//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+;
//! all Sluice groups are "classic").

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{Context, str_bytes};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: ListGroupsRequest,
    version: i16,
) -> Result<ListGroupsResponse> {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let classic = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    let mut response = ListGroupsResponse::default();
    if !classic {
        return Ok(response);
    }
    response.groups = ctx
        .groups
        .list_groups(&states)
        .into_iter()
        .map(|(id, protocol_type, state)| {
            let mut g = ListedGroup::default();
            g.group_id = GroupId(str_bytes(&id));
            g.protocol_type = str_bytes(&protocol_type);
            if version >= 4 {
                g.group_state = str_bytes(state);
            }
            if version >= 5 {
                g.group_type = str_bytes("classic");
            }
            g
        })
        .collect();
    Ok(response)
}

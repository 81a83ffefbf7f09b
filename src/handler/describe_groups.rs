//! DescribeGroups: state, protocol and members; a group that does not exist
//! is reported as "Dead" with no error, as Kafka does before v6.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    mut req: DescribeGroupsRequest,
    version: i16,
) -> Result<DescribeGroupsResponse> {
    let mut response = DescribeGroupsResponse::default();
    for id in std::mem::take(&mut req.groups) {
        let mut out = DescribedGroup::default();
        let described = ctx
            .check(op::DESCRIBE, resource::GROUP, &id)
            .and_then(|()| ctx.coordinates_group(&id))
            .and_then(|()| ctx.groups.describe(&id));
        match described {
            Err(e) => out.error_code = e.code(),
            Ok(summary) => {
                out.group_state = str_bytes(summary.state);
                out.protocol_type = str_bytes(&summary.protocol_type);
                out.protocol_data = str_bytes(&summary.protocol);
                out.members = summary
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut d = DescribedGroupMember::default();
                        d.member_id = str_bytes(&m.member_id);
                        if version >= 4 {
                            d.group_instance_id = m.instance_id.as_deref().map(str_bytes);
                        }
                        d.client_id = str_bytes(&m.client_id);
                        d.client_host = str_bytes(&m.client_host);
                        d.member_metadata = m.metadata;
                        d.member_assignment = m.assignment;
                        d
                    })
                    .collect();
            }
        }
        if version >= 3 {
            // KIP-430: only for a group described without error.
            let asked = req.include_authorized_operations && out.error_code == 0;
            out.authorized_operations = ctx.operations(asked, resource::GROUP, &id);
        }
        out.group_id = id;
        response.groups.push(out);
    }
    Ok(response)
}

//! DeleteGroups: empty groups go with their offsets; others get
//! NON_EMPTY_GROUP. The authorizer needs DELETE on each group.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: DeleteGroupsRequest,
    _version: i16,
) -> Result<DeleteGroupsResponse> {
    let checks: Vec<_> = req
        .groups_names
        .iter()
        .map(|g| {
            ctx.check(op::DELETE, resource::GROUP, g)
                .and_then(|()| ctx.coordinates_group(g))
        })
        .collect();
    let ids: Vec<String> = req
        .groups_names
        .iter()
        .zip(&checks)
        .filter(|(_, check)| check.is_ok())
        .map(|(g, _)| g.to_string())
        .collect();
    let mut deleted = ctx.groups.delete_groups(&ids).await.into_iter();
    let results = checks.into_iter().map(|check| {
        check.and_then(|()| {
            deleted
                .next()
                .unwrap_or(Err(kafka_protocol::ResponseError::UnknownServerError))
        })
    });
    let mut response = DeleteGroupsResponse::default();
    response.results = req
        .groups_names
        .into_iter()
        .zip(results)
        .map(|(id, r)| {
            let mut out = DeletableGroupResult::default();
            out.group_id = id;
            out.error_code = r.err().map_or(0, |e| e.code());
            out
        })
        .collect();
    Ok(response)
}

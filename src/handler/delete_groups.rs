//! DeleteGroups: empty groups go with their offsets; others get NON_EMPTY_GROUP.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::Context;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: DeleteGroupsRequest,
    _version: i16,
) -> Result<DeleteGroupsResponse> {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let results = ctx.groups.delete_groups(&ids).await;
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

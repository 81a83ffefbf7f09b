//! AddOffsetsToTxn: a consumer group's offsets join the transaction
//! (send_offsets_to_transaction), to be committed with it. The authorizer
//! needs WRITE on the transactional id and READ on the group.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: AddOffsetsToTxnRequest,
    _version: i16,
) -> Result<AddOffsetsToTxnResponse> {
    let mut response = AddOffsetsToTxnResponse::default();
    let producer = (req.producer_id.0, req.producer_epoch);
    let added = ctx
        .require(op::WRITE, resource::TRANSACTIONAL_ID, &req.transactional_id)
        .and_then(|()| ctx.require(op::READ, resource::GROUP, &req.group_id))
        .and_then(|()| {
            ctx.coordinates_transaction(&req.transactional_id)
                .map_err(super::placement::not_coordinator)
        });
    let added = match added {
        Ok(()) => ctx.txns.add_offsets(&req.transactional_id, producer).await,
        refused => refused,
    };
    if let Err(e) = added {
        response.error_code = e.code();
    }
    Ok(response)
}

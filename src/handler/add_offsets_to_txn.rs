//! AddOffsetsToTxn: a consumer group's offsets join the transaction
//! (send_offsets_to_transaction), to be committed with it.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::Context;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: AddOffsetsToTxnRequest,
    _version: i16,
) -> Result<AddOffsetsToTxnResponse> {
    let mut response = AddOffsetsToTxnResponse::default();
    let producer = (req.producer_id.0, req.producer_epoch);
    if let Err(e) = ctx
        .txns
        .add_offsets(&req.transactional_id, producer, &req.group_id)
    {
        response.error_code = e.code();
    }
    Ok(response)
}

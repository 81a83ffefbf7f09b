//! EndTxn: commit or abort — a marker in every partition of the
//! transaction, and on commit its consumer-group offsets. The authorizer
//! needs WRITE on the transactional id.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: EndTxnRequest,
    _version: i16,
) -> Result<EndTxnResponse> {
    let mut response = EndTxnResponse::default();
    if let Err(refused) = ctx
        .check(op::WRITE, resource::TRANSACTIONAL_ID, &req.transactional_id)
        .and_then(|()| ctx.coordinates_transaction(&req.transactional_id))
    {
        response.error_code = refused.code();
        return Ok(response);
    }
    let producer = (req.producer_id.0, req.producer_epoch);
    let ended = ctx
        .txns
        .end(&ctx.catalog, &req.transactional_id, producer, req.committed)
        .await;
    if let Err(e) = ended {
        tracing::debug!(error = %e, "EndTxn refused");
        response.error_code = e.code();
    }
    Ok(response)
}

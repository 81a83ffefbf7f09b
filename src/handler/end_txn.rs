//! EndTxn: commit or abort — a marker in every partition of the
//! transaction, and on commit its consumer-group offsets.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::Context;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: EndTxnRequest,
    _version: i16,
) -> Result<EndTxnResponse> {
    let mut response = EndTxnResponse::default();
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

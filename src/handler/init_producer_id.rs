//! InitProducerId: ids for idempotent producers, and for transactional ones
//! through the transaction coordinator (epoch bumps fence older producers).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Context;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
    req: InitProducerIdRequest,
    _version: i16,
) -> Result<InitProducerIdResponse> {
    let mut response = InitProducerIdResponse::default();
    if let Some(txn_id) = &req.transactional_id {
        match ctx
            .txns
            .init(
                &ctx.catalog,
                txn_id,
                req.transaction_timeout_ms,
                (req.producer_id.0, req.producer_epoch),
            )
            .await
        {
            Ok((id, epoch)) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = epoch;
            }
            Err(e) => {
                response.error_code = e.code();
                response.producer_id = ProducerId(-1);
                response.producer_epoch = -1;
            }
        }
        return Ok(response);
    }
    // KIP-360: a producer that knows its id asks for the next epoch.
    if req.producer_id.0 >= 0 && (0..i16::MAX - 1).contains(&req.producer_epoch) {
        response.producer_id = req.producer_id;
        response.producer_epoch = req.producer_epoch + 1;
        return Ok(response);
    }
    match ctx.catalog.next_producer_id() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            response.error_code = ResponseError::KafkaStorageError.code();
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    Ok(response)
}

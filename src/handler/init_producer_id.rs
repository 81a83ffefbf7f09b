//! InitProducerId: ids for idempotent producers, and for transactional ones
//! through the transaction coordinator (epoch bumps fence older producers).
//! The authorizer needs WRITE on the transactional id; an idempotent
//! producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
//! (CLUSTER_AUTHORIZATION_FAILED otherwise).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Call;
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: InitProducerIdRequest,
    _version: i16,
) -> Result<InitProducerIdResponse> {
    let mut response = InitProducerIdResponse::default();
    let allowed = match &req.transactional_id {
        Some(txn_id) => ctx
            .check(op::WRITE, resource::TRANSACTIONAL_ID, txn_id)
            .and_then(|()| ctx.coordinates_transaction(txn_id)),
        None if ctx.may(op::IDEMPOTENT_WRITE, resource::CLUSTER, CLUSTER_NAME)
            || ctx.may_some(op::WRITE, resource::TOPIC) =>
        {
            Ok(())
        }
        None => Err(ResponseError::ClusterAuthorizationFailed),
    };
    if let Err(refused) = allowed {
        response.error_code = refused.code();
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        return Ok(response);
    }
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

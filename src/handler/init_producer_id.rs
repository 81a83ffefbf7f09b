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
    let granted = match (allowed(ctx, &req), &req.transactional_id) {
        (Err(refused), _) => Err(refused.code()),
        (Ok(()), Some(txn_id)) => ctx
            .txns
            .init(
                &ctx.catalog,
                txn_id,
                req.transaction_timeout_ms,
                (req.producer_id.0, req.producer_epoch),
            )
            .await
            .map_err(|e| e.code()),
        (Ok(()), None) => idempotent(ctx, &req),
    };
    let mut response = InitProducerIdResponse::default();
    match granted {
        Ok((id, epoch)) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = epoch;
        }
        Err(code) => {
            response.error_code = code;
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    Ok(response)
}

/// Whether the client may have a producer id: WRITE on its transactional
/// id (which this node must coordinate), or for an idempotent producer
/// IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
fn allowed(ctx: &Call<'_>, req: &InitProducerIdRequest) -> std::result::Result<(), ResponseError> {
    match &req.transactional_id {
        Some(txn_id) => ctx
            .check(op::WRITE, resource::TRANSACTIONAL_ID, txn_id)
            .and_then(|()| ctx.coordinates_transaction(txn_id)),
        None if ctx.may(op::IDEMPOTENT_WRITE, resource::CLUSTER, CLUSTER_NAME)
            || ctx.may_some(op::WRITE, resource::TOPIC) =>
        {
            Ok(())
        }
        None => Err(ResponseError::ClusterAuthorizationFailed),
    }
}

/// An idempotent producer's id and epoch: the next epoch of the id it
/// knows (KIP-360), or a new id.
fn idempotent(ctx: &Call<'_>, req: &InitProducerIdRequest) -> std::result::Result<(i64, i16), i16> {
    if req.producer_id.0 >= 0 && (0..i16::MAX - 1).contains(&req.producer_epoch) {
        return Ok((req.producer_id.0, req.producer_epoch + 1));
    }
    ctx.catalog
        .next_producer_id()
        .map(|id| (id, 0))
        .map_err(|e| {
            tracing::error!(error = %e, "cannot allocate a producer id");
            ResponseError::KafkaStorageError.code()
        })
}

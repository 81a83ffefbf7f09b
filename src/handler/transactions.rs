//! DescribeTransactions and ListTransactions: the transaction coordinator's
//! state of each transactional id, for `kafka-transactions`-style tooling.
//! The authorizer shows only the transactional ids the caller may describe
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED for a named one), and in them only
//! the topics it may describe.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;
use crate::txn::Status;
use crate::util::now_ms;

/// Every state name ListTransactions may filter on.
const STATES: [Status; 8] = [
    Status::Empty,
    Status::Ongoing,
    Status::PrepareCommit,
    Status::PrepareAbort,
    Status::CompleteCommit,
    Status::CompleteAbort,
    Status::Dead,
    Status::PrepareEpochFence,
];

pub(super) async fn describe(
    ctx: &Call<'_>,
    req: DescribeTransactionsRequest,
    _version: i16,
) -> Result<DescribeTransactionsResponse> {
    let all = ctx.txns.snapshot();
    let mut response = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let mut state = TransactionState::default()
            .with_transactional_id(id.clone())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        let allowed = ctx
            .check(op::DESCRIBE, resource::TRANSACTIONAL_ID, &id)
            .and_then(|()| ctx.coordinates_transaction(&id));
        match all.iter().find(|(name, _)| name.as_str() == id.0.as_str()) {
            _ if allowed.is_err() => {
                state.error_code = allowed.err().map_or(0, |e| e.code());
            }
            None => state.error_code = ResponseError::TransactionalIdNotFound.code(),
            Some((_, meta)) => {
                state.transaction_state = str_bytes(meta.status.name());
                state.transaction_timeout_ms = meta.timeout_ms;
                state.transaction_start_time_ms = meta.started_ms;
                state.producer_id = ProducerId(meta.producer_id);
                state.producer_epoch = meta.epoch;
                let mut topics: Vec<TopicData> = Vec::new();
                let visible = meta
                    .partitions
                    .iter()
                    .filter(|(topic, _)| ctx.may(op::DESCRIBE, resource::TOPIC, topic));
                for (topic, partition) in visible {
                    match topics.last_mut() {
                        Some(t) if t.topic.0.as_str() == topic.as_str() => {
                            t.partitions.push(*partition)
                        }
                        _ => topics.push(
                            TopicData::default()
                                .with_topic(TopicName(str_bytes(topic)))
                                .with_partitions(vec![*partition]),
                        ),
                    }
                }
                state.topics = topics;
            }
        }
        response.transaction_states.push(state);
    }
    Ok(response)
}

pub(super) async fn list(
    ctx: &Call<'_>,
    req: ListTransactionsRequest,
    _version: i16,
) -> Result<ListTransactionsResponse> {
    let mut response = ListTransactionsResponse::default();
    let mut wanted = Vec::new();
    for filter in &req.state_filters {
        match STATES.iter().find(|s| s.name() == filter.as_str()) {
            Some(s) => wanted.push(*s),
            None => response.unknown_state_filters.push(filter.clone()),
        }
    }
    let now = now_ms();
    for (id, meta) in ctx.txns.snapshot() {
        let state_ok = req.state_filters.is_empty() || wanted.contains(&meta.status);
        let producer_ok = req.producer_id_filters.is_empty()
            || req
                .producer_id_filters
                .contains(&ProducerId(meta.producer_id));
        // v1 (KIP-994): only transactions running at least this long.
        let duration_ok = req.duration_filter < 0
            || (meta.started_ms >= 0 && now - meta.started_ms >= req.duration_filter);
        let visible = ctx.may(op::DESCRIBE, resource::TRANSACTIONAL_ID, &id);
        if state_ok && producer_ok && duration_ok && visible {
            response.transaction_states.push(
                Listed::default()
                    .with_transactional_id(TransactionalId(str_bytes(&id)))
                    .with_producer_id(ProducerId(meta.producer_id))
                    .with_transaction_state(str_bytes(meta.status.name())),
            );
        }
    }
    Ok(response)
}

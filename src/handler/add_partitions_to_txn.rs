//! AddPartitionsToTxn (v0–3, from producers): the partitions a transaction
//! will write to. Kafka adds all or none: with an unknown partition, the
//! others answer OPERATION_NOT_ATTEMPTED. The authorizer needs WRITE on the
//! transactional id and on each topic (or nothing is added either).

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::Call;
use crate::acl::{op, resource};
use crate::error::Result;
use kafka_protocol::ResponseError;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: AddPartitionsToTxnRequest,
    _version: i16,
) -> Result<AddPartitionsToTxnResponse> {
    let wanted: Vec<(String, i32)> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let producer = (
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
    );
    let transaction = &req.v3_and_below_transactional_id;
    let refusals: Vec<Result<(), ResponseError>> = wanted
        .iter()
        .map(|(topic, _)| ctx.check(op::WRITE, resource::TOPIC, topic))
        .collect();
    let coordinated = ctx
        .require(op::WRITE, resource::TRANSACTIONAL_ID, transaction)
        .and_then(|()| {
            ctx.coordinates_transaction(transaction)
                .map_err(super::placement::not_coordinator)
        });
    let results = if let Err(e) = coordinated {
        Err(e)
    } else if refusals.iter().all(Result::is_ok) {
        ctx.txns
            .add_partitions(&ctx.catalog, transaction, producer, &wanted)
            .await
    } else {
        // Kafka adds none: the refused topics say why, the others were not attempted.
        let not_attempted = |(r, (topic, p)): (Result<(), ResponseError>, &(String, i32))| {
            r.and(match ctx.catalog.partition(topic, *p) {
                Ok(_) => Err(ResponseError::OperationNotAttempted),
                Err(_) => Err(ResponseError::UnknownTopicOrPartition),
            })
        };
        Ok(refusals
            .into_iter()
            .zip(&wanted)
            .map(not_attempted)
            .collect())
    };
    let code_of = |i: usize| match &results {
        Ok(r) => r.get(i).and_then(|r| r.err()).map_or(0, |e| e.code()),
        Err(e) => e.code(),
    };
    Ok(respond(req.v3_and_below_topics, code_of))
}

/// The answer for `topics`, the `i`th partition named getting `code_of(i)`.
fn respond(
    topics: Vec<AddPartitionsToTxnTopic>,
    code_of: impl Fn(usize) -> i16,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    let mut i = 0;
    for topic in topics {
        let mut out = AddPartitionsToTxnTopicResult::default();
        out.name = topic.name;
        for p in topic.partitions {
            let mut r = AddPartitionsToTxnPartitionResult::default();
            r.partition_index = p;
            r.partition_error_code = code_of(i);
            out.results_by_partition.push(r);
            i += 1;
        }
        response.results_by_topic_v3_and_below.push(out);
    }
    response
}

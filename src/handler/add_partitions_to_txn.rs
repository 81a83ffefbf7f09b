//! AddPartitionsToTxn (v0–3, from producers): the partitions a transaction
//! will write to. Kafka adds all or none: with an unknown partition, the
//! others answer OPERATION_NOT_ATTEMPTED.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::Context;
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Context,
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
    let results = ctx.txns.add_partitions(
        &ctx.catalog,
        &req.v3_and_below_transactional_id,
        producer,
        &wanted,
    );
    let code_of = |i: usize| match &results {
        Ok(r) => r.get(i).and_then(|r| r.err()).map_or(0, |e| e.code()),
        Err(e) => e.code(),
    };
    let mut response = AddPartitionsToTxnResponse::default();
    let mut i = 0;
    for topic in req.v3_and_below_topics {
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
    Ok(response)
}

//! The transaction APIs' part of the version sweep: each call at each
//! advertised version, on a transaction of its own started with
//! InitProducerId (a transactional id), then ended.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::common::raw::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A new transactional producer: (transactional id, producer id, epoch).
async fn init(raw: &mut Raw, id: &str) -> (TransactionalId, ProducerId, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(60_000);
    let response = raw.call(1, &request).await;
    assert_eq!(response.error_code, 0, "InitProducerId for {id}");
    (
        TransactionalId(s(id)),
        response.producer_id,
        response.producer_epoch,
    )
}

async fn add_partition(
    raw: &mut Raw,
    v: i16,
    txn: &(TransactionalId, ProducerId, i16),
    topic: &str,
) -> i16 {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn.0.clone())
        .with_v3_and_below_producer_id(txn.1)
        .with_v3_and_below_producer_epoch(txn.2)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![0]),
        ]);
    let response = raw.call(v, &request).await;
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn end(raw: &mut Raw, v: i16, txn: &(TransactionalId, ProducerId, i16), commit: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(txn.0.clone())
        .with_producer_id(txn.1)
        .with_producer_epoch(txn.2)
        .with_committed(commit);
    raw.call(v, &request).await.error_code
}

async fn add_offsets(
    raw: &mut Raw,
    v: i16,
    txn: &(TransactionalId, ProducerId, i16),
    group: &str,
) -> i16 {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn.0.clone())
        .with_producer_id(txn.1)
        .with_producer_epoch(txn.2)
        .with_group_id(GroupId(s(group)));
    raw.call(v, &request).await.error_code
}

/// Runs the sweep's call for `key` at version `v`; false if `key` is not a transaction API.
pub(super) async fn exercise(raw: &mut Raw, key: ApiKey, v: i16, topic: &str) -> bool {
    let what = format!("{key:?} v{v}");
    let txn = init(raw, &format!("sweep-{key:?}-v{v}")).await;
    match key {
        ApiKey::AddPartitionsToTxn => {
            assert_eq!(add_partition(raw, v, &txn, topic).await, 0, "{what}");
            assert_eq!(end(raw, 0, &txn, false).await, 0, "{what}: abort");
        }
        ApiKey::EndTxn => {
            assert_eq!(end(raw, v, &txn, true).await, 48, "{what}: nothing open");
            assert_eq!(add_partition(raw, 0, &txn, topic).await, 0, "{what}");
            assert_eq!(end(raw, v, &txn, true).await, 0, "{what}: commit");
        }
        ApiKey::AddOffsetsToTxn => {
            assert_eq!(
                add_offsets(raw, v, &txn, "sweep-txn-group").await,
                0,
                "{what}"
            );
            assert_eq!(end(raw, 0, &txn, false).await, 0, "{what}: abort");
        }
        ApiKey::TxnOffsetCommit => {
            assert_eq!(
                add_offsets(raw, 0, &txn, "sweep-txn-group").await,
                0,
                "{what}"
            );
            let request = TxnOffsetCommitRequest::default()
                .with_transactional_id(txn.0.clone())
                .with_group_id(GroupId(s("sweep-txn-group")))
                .with_producer_id(txn.1)
                .with_producer_epoch(txn.2)
                .with_topics(vec![
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(vec![
                            TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]);
            let response = raw.call(v, &request).await;
            assert_eq!(response.topics[0].partitions[0].error_code, 0, "{what}");
            assert_eq!(end(raw, 0, &txn, true).await, 0, "{what}: commit");
        }
        ApiKey::DescribeTransactions => {
            assert_eq!(add_partition(raw, 0, &txn, topic).await, 0, "{what}");
            let request = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![txn.0.clone(), TransactionalId(s("sweep-unknown"))]);
            let response = raw.call(v, &request).await;
            let (known, unknown) = (
                &response.transaction_states[0],
                &response.transaction_states[1],
            );
            assert_eq!(known.error_code, 0, "{what}");
            assert_eq!(known.transaction_state.as_str(), "Ongoing", "{what}");
            assert_eq!(
                (known.producer_id, known.producer_epoch),
                (txn.1, txn.2),
                "{what}"
            );
            assert_eq!(known.topics.len(), 1, "{what}");
            assert_eq!(
                unknown.error_code, 105,
                "{what}: TRANSACTIONAL_ID_NOT_FOUND"
            );
            assert_eq!(end(raw, 0, &txn, false).await, 0, "{what}: abort");
        }
        ApiKey::ListTransactions => {
            let mut request = ListTransactionsRequest::default()
                .with_state_filters(vec![s("Empty"), s("NoSuchState")])
                .with_producer_id_filters(vec![txn.1]);
            if v >= 1 {
                request = request.with_duration_filter(-1);
            }
            let response = raw.call(v, &request).await;
            assert_eq!(response.error_code, 0, "{what}");
            assert_eq!(
                response.unknown_state_filters,
                vec![s("NoSuchState")],
                "{what}"
            );
            let ids: Vec<_> = response
                .transaction_states
                .iter()
                .map(|t| t.transactional_id.clone())
                .collect();
            assert_eq!(ids, vec![txn.0.clone()], "{what}");
        }
        _ => return false,
    }
    true
}

/// InitProducerId v3+ for `id` from a producer that knows (`producer`) its id and epoch.
async fn reinit(raw: &mut Raw, id: &str, producer: (ProducerId, i16)) -> (i16, ProducerId, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(producer.0)
        .with_producer_epoch(producer.1);
    let response = raw.call(4, &request).await;
    (
        response.error_code,
        response.producer_id,
        response.producer_epoch,
    )
}

#[tokio::test]
async fn kip_360_bumps_the_epoch_of_the_current_producer_only() {
    let broker = crate::common::start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (_, pid, e0) = init(&mut raw, "kip-360").await;
    // The current producer bumps its epoch (an open transaction is aborted).
    assert_eq!(
        reinit(&mut raw, "kip-360", (pid, e0)).await,
        (0, pid, e0 + 1)
    );
    // A retry with the epoch before the bump (its answer was lost) bumps again.
    assert_eq!(
        reinit(&mut raw, "kip-360", (pid, e0)).await,
        (0, pid, e0 + 2)
    );
    // Older epochs and other producer ids are fenced: PRODUCER_FENCED (90).
    assert_eq!(reinit(&mut raw, "kip-360", (pid, e0)).await.0, 90);
    assert_eq!(
        reinit(&mut raw, "kip-360", (ProducerId(pid.0 + 1), e0 + 2))
            .await
            .0,
        90
    );
    // A producer without an id (-1, -1) starts over at the next epoch.
    assert_eq!(
        reinit(&mut raw, "kip-360", (ProducerId(-1), -1)).await,
        (0, pid, e0 + 3)
    );
}

//! Produce: validate and append each partition's batches, all-or-nothing per
//! partition; with `flush = "always"` the acknowledgement waits for a group-commit fsync.
//! The authorizer needs WRITE on each topic, and on the transactional id of
//! a transactional producer.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Call, Reply};
use crate::acl::{op, resource};
use crate::catalog::{AppendInfo, Partition};
use crate::config::FlushMode;
use crate::error::{Error, Result};
use crate::protocol::{Request, encode_response};

pub(super) async fn handle(ctx: &Call<'_>, req: &Request) -> Result<Reply> {
    let body: ProduceRequest = req.decode()?;
    let version = req.version();
    let transaction = transaction_allowed(ctx, &body);
    let durable = ctx.config.flush == FlushMode::Always;
    let (mut results, to_sync) = append_all(ctx, body.topic_data, body.acks, transaction, durable);
    if body.acks == 0 {
        // No answer waits for it, but consumers do: under flush = "always"
        // they read only what is fsynced.
        if !to_sync.is_empty() {
            tokio::spawn(async move {
                for (partition, last_offset) in to_sync {
                    let _ = partition.sync_through(last_offset).await;
                }
            });
        }
        // Kafka closes the connection after a failed acks=0 produce, so the producer notices.
        let failed = results.iter().flat_map(|(_, p)| p).any(|(_, r)| r.is_err());
        return if failed {
            Err(Error::Protocol("acks=0 produce failed".into()))
        } else {
            Ok(Reply::Nothing)
        };
    }
    let correlation_id = req.header.correlation_id;
    if to_sync.is_empty() {
        let frame = respond(results, version, correlation_id)?;
        return Ok(Reply::Frame(vec![frame.into()]));
    }
    // The appends are done; the answer waits for the fsync, which later
    // requests (on this connection too) can share.
    Ok(Reply::Deferred(Box::pin(async move {
        for (partition, last_offset) in to_sync {
            if let Err(e) = partition.sync_through(last_offset).await {
                fail_partition(&mut results, &partition, &e);
            }
        }
        Ok(vec![respond(results, version, correlation_id)?.into()])
    })))
}

/// Whether the request may write the transactional records it holds:
/// they need the transactional id they belong to, and WRITE on it (Kafka
/// refuses them without one, authorizer or not).
fn transaction_allowed(
    ctx: &Call<'_>,
    body: &ProduceRequest,
) -> std::result::Result<(), ResponseError> {
    let transactional = body
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_deref())
        .any(|records| Partition::transactional_producer(records).is_some());
    match (&body.transactional_id, transactional) {
        (_, false) => Ok(()),
        (Some(id), true) => ctx.check(op::WRITE, resource::TRANSACTIONAL_ID, id),
        (None, true) => Err(ResponseError::TransactionalIdAuthorizationFailed),
    }
}

/// Appends each partition's records (`transaction`: whether the request
/// may write its transactional ones). With `durable`, each partition
/// written is listed with the last offset to see fsynced: before the
/// answer, or (acks=0) in the background.
fn append_all(
    ctx: &Call<'_>,
    topics: Vec<TopicProduceData>,
    acks: i16,
    transaction: std::result::Result<(), ResponseError>,
    durable: bool,
) -> (TopicResults, Vec<(Arc<Partition>, i64)>) {
    let acks_valid = matches!(acks, -1..=1);
    let mut results = Vec::new();
    let mut to_sync = Vec::new();
    for topic in topics {
        let mut partitions = Vec::new();
        let allowed = transaction.and_then(|()| ctx.check(op::WRITE, resource::TOPIC, &topic.name));
        for data in topic.partition_data {
            let result = if let Err(refused) = allowed {
                Err(Error::api(refused, "not authorized"))
            } else if acks_valid {
                produce_one(ctx, &topic.name, data.index, data.records, acks)
            } else {
                Err(Error::api(
                    ResponseError::InvalidRequiredAcks,
                    "acks must be -1, 0 or 1",
                ))
            };
            let result = result.map(|(info, partition)| {
                if durable {
                    to_sync.push((partition, info.last_offset));
                }
                info
            });
            partitions.push((data.index, result));
        }
        results.push((topic.name, partitions));
    }
    (results, to_sync)
}

type TopicResults = Vec<(TopicName, Vec<(i32, Result<AppendInfo>)>)>;

/// Replaces a partition's success with `e` (its fsync failed, or its topic
/// was deleted meanwhile).
fn fail_partition(results: &mut TopicResults, partition: &Partition, e: &Error) {
    let code = if e.is(ResponseError::UnknownTopicOrPartition) {
        ResponseError::UnknownTopicOrPartition
    } else {
        ResponseError::KafkaStorageError
    };
    for (name, partitions) in results.iter_mut() {
        if name.as_str() != partition.topic {
            continue;
        }
        for (index, result) in partitions.iter_mut() {
            if *index == partition.index && result.is_ok() {
                *result = Err(Error::api(code, e.message()));
            }
        }
    }
}

fn respond(results: TopicResults, version: i16, correlation_id: i32) -> Result<Bytes> {
    let mut response = ProduceResponse::default();
    for (name, partitions) in results {
        let mut out = TopicProduceResponse::default();
        out.name = name;
        out.partition_responses = partitions
            .into_iter()
            .map(|(index, result)| partition_response(index, result, version))
            .collect();
        response.responses.push(out);
    }
    Ok(encode_response(ApiKey::Produce, version, correlation_id, &response)?.freeze())
}

fn produce_one(
    ctx: &Call<'_>,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
) -> Result<(AppendInfo, Arc<Partition>)> {
    let partition = ctx.catalog.partition(topic, index)?;
    ctx.leads(topic, index).map_err(super::placement::not_led)?;
    // Every live node is in sync: one for a single broker.
    let min_insync = partition.min_insync_replicas();
    if acks == -1 && min_insync > 1 && min_insync as usize > ctx.nodes.live().len() {
        return Err(Error::api(
            ResponseError::NotEnoughReplicas,
            format!(
                "min.insync.replicas is {min_insync} but only {} replicas are in sync",
                ctx.nodes.live().len()
            ),
        ));
    }
    let records = records.ok_or_else(|| Error::api(ResponseError::InvalidRecord, "no records"))?;
    let size = records.len();
    let info = match Partition::transactional_producer(&records) {
        Some(producer) => {
            ctx.txns.check_produce(producer, topic, index)?;
            partition.append_transactional(&records)?
        }
        None => partition.append(&records)?,
    };
    if !info.duplicate {
        let messages = (info.last_offset - info.base_offset + 1).max(0) as u64;
        ctx.metrics.produced(topic, size, messages);
    }
    Ok((info, partition))
}

fn partition_response(
    index: i32,
    result: Result<AppendInfo>,
    version: i16,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    match result {
        Ok(info) => {
            p.base_offset = info.base_offset;
            p.log_append_time_ms = info.log_append_time;
            if version >= 5 {
                p.log_start_offset = info.log_start_offset;
            }
        }
        Err(e) => {
            tracing::debug!(index, error = %e, "produce refused");
            p.error_code = e.code();
            p.base_offset = -1;
            if version >= 8 {
                p.error_message = Some(StrBytes::from_string(e.message()));
                if let Some((records, reason)) = e.record_errors() {
                    let reason = StrBytes::from_string(reason.to_string());
                    p.record_errors = records
                        .iter()
                        .map(|&i| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(i)
                                .with_batch_index_error_message(Some(reason.clone()))
                        })
                        .collect();
                }
            }
        }
    }
    p
}

//! DescribeTopicPartitions (KIP-966), DescribeProducers (KIP-664),
//! ElectLeaders and ListPartitionReassignments: the partition views and
//! controls of a cluster, answered for one node that leads every partition.
//! The authorizer needs DESCRIBE on the topics described (all topics: those
//! it may describe), READ on those whose producers are listed, and ALTER or
//! DESCRIBE on the cluster to elect leaders or list reassignments.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    BrokerId, DescribeProducersRequest, DescribeProducersResponse, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse, ElectLeadersRequest, ElectLeadersResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ProducerId, TopicName,
};

use super::{Call, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

/// DescribeTopicPartitions: the named topics (every topic when none is
/// named), by name, from the cursor on, at most `response_partition_limit`
/// partitions; `next_cursor` says where to go on.
pub(super) async fn describe_topic_partitions(
    ctx: &Call<'_>,
    req: DescribeTopicPartitionsRequest,
    _version: i16,
) -> Result<DescribeTopicPartitionsResponse> {
    let replicas = ctx.replicas();
    let names = named_topics(ctx, &req);
    let (from_topic, from_partition) = match &req.cursor {
        Some(c) => (c.topic_name.to_string(), c.partition_index.max(0)),
        None => (String::new(), 0),
    };
    let mut budget = usize::try_from(req.response_partition_limit.max(1)).unwrap_or(1);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names.into_iter().filter(|n| *n >= from_topic) {
        let mut out = DescribeTopicPartitionsResponseTopic::default();
        out.name = Some(TopicName(str_bytes(&name)));
        if let Err(refused) = ctx.check(op::DESCRIBE, resource::TOPIC, &name) {
            out.error_code = refused.code();
            response.topics.push(out);
            continue;
        }
        out.topic_authorized_operations = ctx.operations(true, resource::TOPIC, &name);
        let Some(topic) = ctx.catalog.topic(&name) else {
            out.error_code = ResponseError::UnknownTopicOrPartition.code();
            response.topics.push(out);
            continue;
        };
        out.topic_id = topic.id;
        let first = if name == from_topic {
            from_partition
        } else {
            0
        };
        for p in topic.partitions().iter().filter(|p| p.index >= first) {
            if budget == 0 {
                let mut next = Cursor::default();
                next.topic_name = TopicName(str_bytes(&name));
                next.partition_index = p.index;
                response.next_cursor = Some(next);
                break;
            }
            budget -= 1;
            let d = described_partition(ctx, &name, p.index, &replicas);
            out.partitions.push(d);
        }
        response.topics.push(out);
        if response.next_cursor.is_some() {
            break;
        }
    }
    Ok(response)
}

/// The topics DescribeTopicPartitions answers for, sorted, each once: those
/// named, or every topic the client may describe.
fn named_topics(ctx: &Call<'_>, req: &DescribeTopicPartitionsRequest) -> Vec<String> {
    let mut names: Vec<String> = if req.topics.is_empty() {
        ctx.catalog
            .topics()
            .iter()
            .map(|t| t.name.clone())
            .filter(|name| ctx.may(op::DESCRIBE, resource::TOPIC, name))
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    names
}

/// Partition `index` of topic `name`: its leader, and `replicas` as its
/// replicas and in-sync replicas.
fn described_partition(
    ctx: &Call<'_>,
    name: &str,
    index: i32,
    replicas: &[BrokerId],
) -> DescribeTopicPartitionsResponsePartition {
    let mut d = DescribeTopicPartitionsResponsePartition::default();
    d.partition_index = index;
    let leader = ctx.nodes.leader(name, index);
    d.leader_id = BrokerId(leader.node);
    d.leader_epoch = leader.epoch;
    d.replica_nodes = replicas.to_vec();
    d.isr_nodes = replicas.to_vec();
    d.eligible_leader_replicas = Some(Vec::new());
    d.last_known_elr = Some(Vec::new());
    d
}

/// ElectLeaders: the one node already leads every partition, so each named
/// partition answers ELECTION_NOT_NEEDED (and a request for all partitions
/// answers none, as Kafka leaves those out).
pub(super) async fn elect_leaders(
    ctx: &Call<'_>,
    req: ElectLeadersRequest,
    version: i16,
) -> Result<ElectLeadersResponse> {
    let mut response = ElectLeadersResponse::default();
    // Refused, Kafka answers the refusal for every named partition too (v0
    // has no top-level code).
    let refused = ctx.check(op::ALTER, resource::CLUSTER, CLUSTER_NAME).err();
    if let Some(refused) = refused {
        response.error_code = refused.code();
    } else if version >= 1 && !(0..=1).contains(&req.election_type) {
        response.error_code = ResponseError::InvalidRequest.code();
        return Ok(response);
    }
    let Some(topics) = req.topic_partitions else {
        return Ok(response);
    };
    for topic in topics {
        let mut out = ReplicaElectionResult::default();
        let known = ctx.catalog.topic(&topic.topic);
        out.partition_result = topic
            .partitions
            .iter()
            .map(|&p| {
                let mut r = PartitionResult::default();
                r.partition_id = p;
                let exists = known.as_ref().is_some_and(|t| t.partition(p).is_some());
                let (code, message) = match refused {
                    Some(refused) => (refused, None),
                    None if exists => (
                        ResponseError::ElectionNotNeeded,
                        Some("Leader election not needed for topic partition."),
                    ),
                    None => (
                        ResponseError::UnknownTopicOrPartition,
                        Some("The partition does not exist."),
                    ),
                };
                r.error_code = code.code();
                r.error_message = message.map(str_bytes);
                r
            })
            .collect();
        out.topic = topic.topic;
        response.replica_election_results.push(out);
    }
    Ok(response)
}

/// ListPartitionReassignments: nothing is ever being reassigned on one node.
pub(super) async fn list_partition_reassignments(
    ctx: &Call<'_>,
    _req: ListPartitionReassignmentsRequest,
    _version: i16,
) -> Result<ListPartitionReassignmentsResponse> {
    let mut response = ListPartitionReassignmentsResponse::default();
    if let Err(refused) = ctx.check(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME) {
        response.error_code = refused.code();
    }
    Ok(response)
}

/// DescribeProducers (KIP-664): the idempotent and transactional producers
/// each partition knows, with their open transaction's first offset.
pub(super) async fn describe_producers(
    ctx: &Call<'_>,
    req: DescribeProducersRequest,
    _version: i16,
) -> Result<DescribeProducersResponse> {
    let mut response = DescribeProducersResponse::default();
    for topic in req.topics {
        let mut out = TopicResponse::default();
        for &index in &topic.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            let found = ctx
                .check(op::READ, resource::TOPIC, &topic.name)
                .and_then(|()| {
                    ctx.catalog
                        .partition(&topic.name, index)
                        .map_err(|_| ResponseError::UnknownTopicOrPartition)
                })
                .and_then(|partition| {
                    ctx.leads(&topic.name, index)?;
                    Ok(partition)
                });
            match found.and_then(|partition| {
                partition.active_producers().map_err(|e| {
                    ResponseError::try_from_code(e.code())
                        .unwrap_or(ResponseError::KafkaStorageError)
                })
            }) {
                Err(e) => p.error_code = e.code(),
                Ok(producers) => {
                    p.active_producers = producers
                        .into_iter()
                        .map(|(id, epoch, last_sequence, txn_start)| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(id);
                            s.producer_epoch = i32::from(epoch);
                            s.last_sequence = last_sequence;
                            s.last_timestamp = -1;
                            s.coordinator_epoch = -1;
                            s.current_txn_start_offset = txn_start.unwrap_or(-1);
                            s
                        })
                        .collect();
                }
            }
            out.partitions.push(p);
        }
        out.name = topic.name;
        response.topics.push(out);
    }
    Ok(response)
}

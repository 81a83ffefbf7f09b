//! An injected error fault's answer ([`crate::faults`]): the request is
//! answered with one error code on every partition it names (or on the
//! whole request, for an API without partitions), and nothing else happens.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

use super::{Reply, answer};
use crate::error::{Error, Result};
use crate::protocol::Request;

/// The APIs an error fault can answer ([`refuse`]); on any other, the
/// connection is closed instead.
pub(crate) const REFUSABLE: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::InitProducerId,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ListGroups,
    ApiKey::AddPartitionsToTxn,
    ApiKey::TxnOffsetCommit,
];

/// The answer to `req` that refuses all of it with `error`. An API this
/// does not know how to refuse closes the connection instead.
pub(super) fn refuse(req: &Request, error: ResponseError) -> Result<Reply> {
    let code = error.code();
    match req.api_key {
        ApiKey::Produce => produce(req, error),
        ApiKey::Fetch => fetch(req, code),
        ApiKey::ListOffsets => list_offsets(req, code),
        ApiKey::OffsetCommit => offset_commit(req, code),
        ApiKey::OffsetFetch => offset_fetch(req, code),
        ApiKey::FindCoordinator => find_coordinator(req, code),
        ApiKey::JoinGroup => join_group(req, code),
        ApiKey::SyncGroup => answer(req, &SyncGroupResponse::default().with_error_code(code)),
        ApiKey::Heartbeat => answer(req, &HeartbeatResponse::default().with_error_code(code)),
        ApiKey::LeaveGroup => answer(req, &LeaveGroupResponse::default().with_error_code(code)),
        ApiKey::InitProducerId => answer(
            req,
            &InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        ApiKey::AddOffsetsToTxn => answer(
            req,
            &AddOffsetsToTxnResponse::default().with_error_code(code),
        ),
        ApiKey::EndTxn => answer(req, &EndTxnResponse::default().with_error_code(code)),
        ApiKey::ConsumerGroupHeartbeat => answer(
            req,
            &ConsumerGroupHeartbeatResponse::default().with_error_code(code),
        ),
        ApiKey::ListGroups => answer(req, &ListGroupsResponse::default().with_error_code(code)),
        ApiKey::AddPartitionsToTxn if req.version() <= 3 => add_partitions_to_txn(req, code),
        ApiKey::TxnOffsetCommit => txn_offset_commit(req, code),
        other => Err(Error::Protocol(format!(
            "injected {error:?} on {other:?}: closing instead (no error answer for this API)"
        ))),
    }
}

fn produce(req: &Request, error: ResponseError) -> Result<Reply> {
    let body: ProduceRequest = req.decode()?;
    let mut response = ProduceResponse::default();
    for topic in body.topic_data {
        let mut out = produce_response::TopicProduceResponse::default();
        out.name = topic.name;
        out.partition_responses = topic
            .partition_data
            .iter()
            .map(|p| {
                let mut r = produce_response::PartitionProduceResponse::default();
                r.index = p.index;
                r.error_code = error.code();
                r.base_offset = -1;
                r
            })
            .collect();
        response.responses.push(out);
    }
    if body.acks == 0 {
        // An acks=0 producer hears of a failure only by the connection closing.
        return Err(Error::Protocol(format!("injected {error:?} (acks=0)")));
    }
    answer(req, &response)
}

fn fetch(req: &Request, code: i16) -> Result<Reply> {
    let body: FetchRequest = req.decode()?;
    let mut response = FetchResponse::default();
    for topic in body.topics {
        let mut out = fetch_response::FetchableTopicResponse::default();
        out.topic = topic.topic;
        out.topic_id = topic.topic_id;
        out.partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let mut r = fetch_response::PartitionData::default();
                r.partition_index = p.partition;
                r.error_code = code;
                r.high_watermark = -1;
                r.last_stable_offset = -1;
                r.log_start_offset = -1;
                r
            })
            .collect();
        response.responses.push(out);
    }
    answer(req, &response)
}

fn list_offsets(req: &Request, code: i16) -> Result<Reply> {
    let body: ListOffsetsRequest = req.decode()?;
    let mut response = ListOffsetsResponse::default();
    for topic in body.topics {
        let mut out = list_offsets_response::ListOffsetsTopicResponse::default();
        out.name = topic.name;
        out.partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let mut r = list_offsets_response::ListOffsetsPartitionResponse::default();
                r.partition_index = p.partition_index;
                r.error_code = code;
                r.offset = -1;
                r.timestamp = -1;
                r
            })
            .collect();
        response.topics.push(out);
    }
    answer(req, &response)
}

fn offset_commit(req: &Request, code: i16) -> Result<Reply> {
    let body: OffsetCommitRequest = req.decode()?;
    let mut response = OffsetCommitResponse::default();
    for topic in body.topics {
        let mut out = offset_commit_response::OffsetCommitResponseTopic::default();
        out.name = topic.name;
        out.partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let mut r = offset_commit_response::OffsetCommitResponsePartition::default();
                r.partition_index = p.partition_index;
                r.error_code = code;
                r
            })
            .collect();
        response.topics.push(out);
    }
    answer(req, &response)
}

fn offset_fetch(req: &Request, code: i16) -> Result<Reply> {
    let body: OffsetFetchRequest = req.decode()?;
    let version = req.version();
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        response.groups = body
            .groups
            .into_iter()
            .map(|g| {
                let mut out = offset_fetch_response::OffsetFetchResponseGroup::default();
                out.group_id = g.group_id;
                out.error_code = code;
                out
            })
            .collect();
    } else if version >= 2 {
        response.error_code = code;
    } else {
        // v1 has no top-level error: each partition asked for carries it.
        for topic in body.topics.unwrap_or_default() {
            let mut out = offset_fetch_response::OffsetFetchResponseTopic::default();
            out.name = topic.name;
            out.partitions = topic
                .partition_indexes
                .iter()
                .map(|p| {
                    offset_fetch_response::OffsetFetchResponsePartition::default()
                        .with_partition_index(*p)
                        .with_committed_offset(-1)
                        .with_error_code(code)
                })
                .collect();
            response.topics.push(out);
        }
    }
    answer(req, &response)
}

fn find_coordinator(req: &Request, code: i16) -> Result<Reply> {
    let body: FindCoordinatorRequest = req.decode()?;
    let mut response = FindCoordinatorResponse::default();
    response.error_code = code;
    response.node_id = BrokerId(-1);
    response.port = -1;
    response.coordinators = body
        .coordinator_keys
        .into_iter()
        .map(|key| {
            let mut c = find_coordinator_response::Coordinator::default();
            c.key = key;
            c.error_code = code;
            c.node_id = BrokerId(-1);
            c.port = -1;
            c
        })
        .collect();
    answer(req, &response)
}

fn join_group(req: &Request, code: i16) -> Result<Reply> {
    let mut response = JoinGroupResponse::default();
    response.error_code = code;
    response.generation_id = -1;
    if req.version() < 7 {
        response.protocol_name = Some(Default::default());
    }
    answer(req, &response)
}

fn add_partitions_to_txn(req: &Request, code: i16) -> Result<Reply> {
    let body: AddPartitionsToTxnRequest = req.decode()?;
    let mut response = AddPartitionsToTxnResponse::default();
    for topic in body.v3_and_below_topics {
        let mut out = add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
        out.name = topic.name;
        out.results_by_partition = topic
            .partitions
            .iter()
            .map(|p| {
                add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(code)
            })
            .collect();
        response.results_by_topic_v3_and_below.push(out);
    }
    answer(req, &response)
}

fn txn_offset_commit(req: &Request, code: i16) -> Result<Reply> {
    let body: TxnOffsetCommitRequest = req.decode()?;
    let mut response = TxnOffsetCommitResponse::default();
    for topic in body.topics {
        let mut out = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
        out.name = topic.name;
        out.partitions = topic
            .partitions
            .iter()
            .map(|p| {
                txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
            })
            .collect();
        response.topics.push(out);
    }
    answer(req, &response)
}

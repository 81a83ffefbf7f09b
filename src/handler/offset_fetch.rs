//! OffsetFetch: one group before v8, several from v8. Partitions without a
//! commit report offset -1; a null topic list means every committed partition.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{Context, str_bytes};
use crate::error::Result;
use crate::group::{FetchedOffset, TopicResults};

type Fetched = Result<TopicResults<Option<FetchedOffset>>, ResponseError>;

pub(super) async fn handle(
    ctx: &Context,
    req: OffsetFetchRequest,
    version: i16,
) -> Result<OffsetFetchResponse> {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        for group in req.groups {
            let topics = group.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect::<Vec<_>>()
            });
            let fetched = ctx.groups.fetch_offsets(&group.group_id, topics.as_deref());
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = group.group_id;
            out.error_code = fetched.as_ref().err().map_or(0, |e| e.code());
            out.topics = fetched
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| group_topic(t, ps))
                .collect();
            response.groups.push(out);
        }
        return Ok(response);
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect::<Vec<_>>()
    });
    let fetched: Fetched = ctx.groups.fetch_offsets(&req.group_id, topics.as_deref());
    match fetched {
        Ok(found) => {
            response.topics = found
                .into_iter()
                .map(|(t, ps)| single_topic(t, ps, version))
                .collect()
        }
        Err(e) if version >= 2 => response.error_code = e.code(),
        Err(e) => {
            // v1 has no top-level error: report it on every requested partition.
            for (name, partitions) in topics.unwrap_or_default() {
                let mut out = OffsetFetchResponseTopic::default();
                out.name = TopicName(str_bytes(&name));
                out.partitions = partitions
                    .into_iter()
                    .map(|p| single_partition(p, None, Some(e), version))
                    .collect();
                response.topics.push(out);
            }
        }
    }
    Ok(response)
}

fn single_topic(
    name: String,
    partitions: Vec<(i32, Option<FetchedOffset>)>,
    version: i16,
) -> OffsetFetchResponseTopic {
    let mut out = OffsetFetchResponseTopic::default();
    out.name = TopicName(str_bytes(&name));
    out.partitions = partitions
        .into_iter()
        .map(|(p, o)| single_partition(p, o, None, version))
        .collect();
    out
}

fn single_partition(
    index: i32,
    found: Option<FetchedOffset>,
    error: Option<ResponseError>,
    version: i16,
) -> OffsetFetchResponsePartition {
    let mut p = OffsetFetchResponsePartition::default();
    p.partition_index = index;
    p.error_code = error.map_or(0, |e| e.code());
    p.committed_offset = found.as_ref().map_or(-1, |f| f.offset);
    if version >= 5 {
        p.committed_leader_epoch = found.as_ref().map_or(-1, |f| f.leader_epoch);
    }
    p.metadata = Some(str_bytes(
        found.as_ref().map_or("", |f| f.metadata.as_str()),
    ));
    p
}

fn group_topic(
    name: String,
    partitions: Vec<(i32, Option<FetchedOffset>)>,
) -> OffsetFetchResponseTopics {
    let mut out = OffsetFetchResponseTopics::default();
    out.name = TopicName(str_bytes(&name));
    out.partitions = partitions
        .into_iter()
        .map(|(index, found)| {
            let mut p = OffsetFetchResponsePartitions::default();
            p.partition_index = index;
            p.committed_offset = found.as_ref().map_or(-1, |f| f.offset);
            p.committed_leader_epoch = found.as_ref().map_or(-1, |f| f.leader_epoch);
            p.metadata = Some(str_bytes(
                found.as_ref().map_or("", |f| f.metadata.as_str()),
            ));
            p
        })
        .collect();
    out
}

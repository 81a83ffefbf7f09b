//! OffsetFetch: one group before v8, several from v8. Partitions without a
//! commit report offset -1; a null topic list means every committed partition.
//! With `require_stable` (v7+, KIP-447), a partition whose offset waits in
//! an open transaction answers UNSTABLE_OFFSET_COMMIT, and the client retries.

use std::collections::BTreeSet;

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
            let member = (group.member_id.as_deref(), group.member_epoch);
            let fetched = ctx
                .groups
                .fetch_offsets(&group.group_id, topics.as_deref(), member);
            let unstable = stable_filter(ctx, &group.group_id, req.require_stable);
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = group.group_id;
            out.error_code = fetched.as_ref().err().map_or(0, |e| e.code());
            out.topics = fetched
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| group_topic(t, ps, &unstable))
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
    let fetched: Fetched = ctx
        .groups
        .fetch_offsets(&req.group_id, topics.as_deref(), (None, -1));
    let unstable = stable_filter(ctx, &req.group_id, version >= 7 && req.require_stable);
    match fetched {
        Ok(found) => {
            response.topics = found
                .into_iter()
                .map(|(t, ps)| single_topic(t, ps, version, &unstable))
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

/// The partitions to answer UNSTABLE_OFFSET_COMMIT for, when `require_stable`.
fn stable_filter(ctx: &Context, group: &str, require_stable: bool) -> BTreeSet<(String, i32)> {
    if require_stable {
        ctx.txns.pending_offsets(group)
    } else {
        BTreeSet::new()
    }
}

fn single_topic(
    name: String,
    partitions: Vec<(i32, Option<FetchedOffset>)>,
    version: i16,
    unstable: &BTreeSet<(String, i32)>,
) -> OffsetFetchResponseTopic {
    let mut out = OffsetFetchResponseTopic::default();
    out.name = TopicName(str_bytes(&name));
    out.partitions = partitions
        .into_iter()
        .map(|(p, o)| {
            if unstable.contains(&(name.clone(), p)) {
                single_partition(p, None, Some(ResponseError::UnstableOffsetCommit), version)
            } else {
                single_partition(p, o, None, version)
            }
        })
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
    unstable: &BTreeSet<(String, i32)>,
) -> OffsetFetchResponseTopics {
    let mut out = OffsetFetchResponseTopics::default();
    out.name = TopicName(str_bytes(&name));
    out.partitions = partitions
        .into_iter()
        .map(|(index, found)| {
            let mut p = OffsetFetchResponsePartitions::default();
            p.partition_index = index;
            let unstable = unstable.contains(&(name.clone(), index));
            let found = if unstable {
                p.error_code = ResponseError::UnstableOffsetCommit.code();
                None
            } else {
                found
            };
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

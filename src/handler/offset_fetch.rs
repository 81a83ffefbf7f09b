//! OffsetFetch: one group before v8, several from v8. Partitions without a
//! commit report offset -1; a null topic list means every committed partition.
//! With `require_stable` (v7+, KIP-447), a partition with an offset waiting
//! for its transaction's marker answers UNSTABLE_OFFSET_COMMIT, and the
//! client retries.
//! The authorizer needs DESCRIBE on the group; a named topic the caller may
//! not describe answers TOPIC_AUTHORIZATION_FAILED, and "every partition"
//! leaves such topics out.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;
use crate::group::{FetchedOffset, TopicResults};

type Fetched = Result<TopicResults<Option<FetchedOffset>>, ResponseError>;

pub(super) async fn handle(
    ctx: &Call<'_>,
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
            // Before the offsets: a transaction that commits in between
            // then answers UNSTABLE_OFFSET_COMMIT, never a stale offset.
            let refusals = Refusals::new(ctx, &group.group_id, req.require_stable);
            let fetched = fetch(ctx, &group.group_id, topics.as_deref(), member);
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = group.group_id;
            out.error_code = fetched.as_ref().err().map_or(0, |e| e.code());
            out.topics = fetched
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| group_topic(t, ps, &refusals))
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
    let refusals = Refusals::new(ctx, &req.group_id, version >= 7 && req.require_stable);
    let fetched = fetch(ctx, &req.group_id, topics.as_deref(), (None, -1));
    match fetched {
        Ok(found) => {
            response.topics = found
                .into_iter()
                .map(|(t, ps)| single_topic(t, ps, version, &refusals))
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

/// The group's offsets of `topics` (`None`: every committed partition of
/// the topics the caller may describe).
fn fetch(
    ctx: &Call<'_>,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
    member: (Option<&str>, i32),
) -> Fetched {
    ctx.check(op::DESCRIBE, resource::GROUP, group)?;
    ctx.coordinates_group(group)?;
    let mut found = ctx.groups.fetch_offsets(group, topics, member)?;
    if topics.is_none() {
        found.retain(|(topic, _)| ctx.may(op::DESCRIBE, resource::TOPIC, topic));
    }
    Ok(found)
}

/// The partitions answered with an error instead of their offset.
struct Refusals<'a> {
    ctx: &'a Call<'a>,
    /// UNSTABLE_OFFSET_COMMIT, when `require_stable`: offsets in an open transaction.
    unstable: BTreeSet<(String, i32)>,
}

impl<'a> Refusals<'a> {
    fn new(ctx: &'a Call<'a>, group: &str, require_stable: bool) -> Refusals<'a> {
        let unstable = if require_stable {
            ctx.groups.pending_offsets(group)
        } else {
            BTreeSet::new()
        };
        Refusals { ctx, unstable }
    }

    fn of(&self, topic: &str, partition: i32) -> Option<ResponseError> {
        if !self.ctx.may(op::DESCRIBE, resource::TOPIC, topic) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if self.unstable.contains(&(topic.to_string(), partition)) {
            Some(ResponseError::UnstableOffsetCommit)
        } else {
            None
        }
    }
}

fn single_topic(
    name: String,
    partitions: Vec<(i32, Option<FetchedOffset>)>,
    version: i16,
    refusals: &Refusals<'_>,
) -> OffsetFetchResponseTopic {
    let mut out = OffsetFetchResponseTopic::default();
    out.name = TopicName(str_bytes(&name));
    out.partitions = partitions
        .into_iter()
        .map(|(p, o)| match refusals.of(&name, p) {
            Some(refused) => single_partition(p, None, Some(refused), version),
            None => single_partition(p, o, None, version),
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
    refusals: &Refusals<'_>,
) -> OffsetFetchResponseTopics {
    let mut out = OffsetFetchResponseTopics::default();
    out.name = TopicName(str_bytes(&name));
    out.partitions = partitions
        .into_iter()
        .map(|(index, found)| {
            let mut p = OffsetFetchResponsePartitions::default();
            p.partition_index = index;
            let found = match refusals.of(&name, index) {
                Some(refused) => {
                    p.error_code = refused.code();
                    None
                }
                None => found,
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

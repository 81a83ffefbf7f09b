//! The broker's state as the status page, `/api/v1/topics`,
//! `/api/v1/groups` and the metrics' gauges see it.

use std::collections::BTreeMap;

use bytes::Buf;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::group::Coordinator;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TopicView {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) size_bytes: u64,
    pub(crate) partitions: Vec<PartitionView>,
    /// The settings set on the topic (the rest are the broker's defaults).
    pub(crate) configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartitionView {
    pub(crate) partition: i32,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    /// What consumers can read up to: the log end offset, except under
    /// `flush = "always"`, where it waits for the fsync.
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) size_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupView {
    pub(crate) group: String,
    pub(crate) state: String,
    pub(crate) protocol_type: String,
    pub(crate) protocol: String,
    pub(crate) members: Vec<MemberView>,
    pub(crate) offsets: Vec<OffsetView>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemberView {
    pub(crate) member_id: String,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    /// Topic → partitions, decoded from a "consumer" protocol assignment.
    pub(crate) assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OffsetView {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) committed_offset: i64,
    pub(crate) log_end_offset: Option<i64>,
    /// Log end offset minus the committed offset (`None`: the partition is gone).
    pub(crate) lag: Option<i64>,
}

/// Every topic, by name.
pub(crate) fn topics(catalog: &Catalog) -> Vec<TopicView> {
    catalog
        .topics()
        .iter()
        .map(|t| {
            let partitions: Vec<PartitionView> = t
                .partitions()
                .iter()
                .map(|p| {
                    // A log that cannot be opened now shows as empty.
                    let offsets = p.offsets().unwrap_or_default();
                    PartitionView {
                        partition: p.index,
                        log_start_offset: offsets.log_start,
                        log_end_offset: p.log_end_offset().unwrap_or(offsets.high_watermark),
                        high_watermark: offsets.high_watermark,
                        last_stable_offset: offsets.last_stable,
                        size_bytes: p.size_bytes(),
                    }
                })
                .collect();
            TopicView {
                name: t.name.clone(),
                id: t.id.to_string(),
                size_bytes: partitions.iter().map(|p| p.size_bytes).sum(),
                partitions,
                configs: t.overrides(),
            }
        })
        .collect()
}

/// Every consumer group, by id, with its members and committed offsets.
pub(crate) fn groups(catalog: &Catalog, coordinator: &Coordinator) -> Vec<GroupView> {
    coordinator
        .list_groups(&[], &[])
        .into_iter()
        .filter_map(|listed| {
            let (id, protocol_type, state) = (listed.id, listed.protocol_type, listed.state);
            let summary = coordinator.describe(&id).ok()?;
            let members = summary
                .members
                .iter()
                .map(|m| MemberView {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment: if protocol_type == "consumer" {
                        consumer_assignment(&m.assignment).unwrap_or_default()
                    } else {
                        BTreeMap::new()
                    },
                })
                .collect();
            let committed = coordinator
                .fetch_offsets(&id, None, (None, -1))
                .unwrap_or_default();
            let offsets = committed
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions
                        .into_iter()
                        .filter_map(move |(partition, found)| {
                            Some((topic.clone(), partition, found?.offset))
                        })
                })
                .map(|(topic, partition, committed_offset)| {
                    let end = catalog
                        .partition(&topic, partition)
                        .ok()
                        .and_then(|p| p.offsets().ok())
                        .map(|o| o.high_watermark);
                    OffsetView {
                        lag: end.map(|e| (e - committed_offset).max(0)),
                        log_end_offset: end,
                        topic,
                        partition,
                        committed_offset,
                    }
                })
                .collect();
            Some(GroupView {
                group: id,
                state: state.to_string(),
                protocol_type,
                protocol: summary.protocol,
                members,
                offsets,
            })
        })
        .collect()
}

/// The topic partitions of a ConsumerProtocolAssignment (any version: the
/// topics come first in each).
fn consumer_assignment(mut b: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    let take_i16 = |b: &mut &[u8]| (b.len() >= 2).then(|| b.get_i16());
    let take_i32 = |b: &mut &[u8]| (b.len() >= 4).then(|| b.get_i32());
    take_i16(&mut b)?; // version
    let mut out = BTreeMap::new();
    for _ in 0..take_i32(&mut b)?.max(0) {
        let len = usize::try_from(take_i16(&mut b)?).ok()?;
        let topic = String::from_utf8_lossy(b.get(..len)?).into_owned();
        b.advance(len);
        let partitions: Option<Vec<i32>> = (0..take_i32(&mut b)?.max(0))
            .map(|_| take_i32(&mut b))
            .collect();
        out.insert(topic, partitions?);
    }
    Some(out)
}

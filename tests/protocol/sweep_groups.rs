//! The group APIs' part of the version sweep: a lone member joins, syncs,
//! heartbeats and leaves; offsets are committed, fetched and deleted; groups
//! are listed, described and deleted — each API at each advertised version.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::common::raw::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

/// Joins `group_id` as its only member (retrying once with the id the broker
/// assigns, KIP-394); returns (member id, generation).
async fn join(raw: &mut Raw, version: i16, group_id: &str) -> (StrBytes, i32) {
    let mut request = JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(if version >= 1 { 30_000 } else { -1 })
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"meta")),
        ]);
    let mut response = raw.call(version, &request).await;
    if response.error_code == 79 {
        request = request.with_member_id(response.member_id.clone());
        response = raw.call(version, &request).await;
    }
    assert_eq!(response.error_code, 0, "JoinGroup v{version}");
    assert_eq!(
        response.leader, response.member_id,
        "JoinGroup v{version}: a lone member leads"
    );
    assert_eq!(
        response.members.len(),
        1,
        "JoinGroup v{version}: the leader gets the member list"
    );
    assert!(
        response.generation_id >= 1,
        "JoinGroup v{version}: generation"
    );
    (response.member_id, response.generation_id)
}

/// Joins and syncs (with an assignment for itself): the member is then stable.
async fn join_and_sync(raw: &mut Raw, group_id: &str) -> (StrBytes, i32) {
    let (member, generation) = join(raw, 5, group_id).await;
    let request = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(generation)
        .with_member_id(member.clone())
        .with_assignments(vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(Bytes::from_static(b"plan")),
        ]);
    assert_eq!(
        raw.call(3, &request).await.error_code,
        0,
        "SyncGroup v3 in {group_id}"
    );
    (member, generation)
}

/// A simple (member-less) commit of `offset` for `topic`/0.
async fn commit(raw: &mut Raw, version: i16, group_id: &str, topic: &str, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(s("sweep"))),
                ]),
        ]);
    raw.call(version, &request).await.topics[0].partitions[0].error_code
}

/// Exercises one group API at one version; false when `key` is no group API.
pub(super) async fn exercise(raw: &mut Raw, key: ApiKey, v: i16, topic: &str) -> bool {
    let what = format!("{key:?} v{v}");
    match key {
        ApiKey::FindCoordinator => {
            let request = if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")])
            } else {
                FindCoordinatorRequest::default().with_key(s("g"))
            };
            let response = raw.call(v, &request).await;
            let (code, node) = if v >= 4 {
                (
                    response.coordinators[0].error_code,
                    response.coordinators[0].node_id,
                )
            } else {
                (response.error_code, response.node_id)
            };
            assert_eq!((code, node), (0, BrokerId(1)), "{what}");
        }
        ApiKey::JoinGroup => {
            join(raw, v, &format!("join-v{v}")).await;
        }
        ApiKey::SyncGroup => {
            let g = format!("sync-v{v}");
            let (member, generation) = join(raw, 5, &g).await;
            let mut request = SyncGroupRequest::default()
                .with_group_id(group(&g))
                .with_generation_id(generation)
                .with_member_id(member.clone())
                .with_assignments(vec![
                    SyncGroupRequestAssignment::default()
                        .with_member_id(member)
                        .with_assignment(Bytes::from_static(b"plan")),
                ]);
            if v >= 5 {
                request = request
                    .with_protocol_type(Some(s("consumer")))
                    .with_protocol_name(Some(s("range")));
            }
            let response = raw.call(v, &request).await;
            assert_eq!(
                (response.error_code, &response.assignment[..]),
                (0, &b"plan"[..]),
                "{what}"
            );
        }
        ApiKey::Heartbeat => {
            let g = format!("heartbeat-v{v}");
            let (member, generation) = join_and_sync(raw, &g).await;
            let request = HeartbeatRequest::default()
                .with_group_id(group(&g))
                .with_generation_id(generation)
                .with_member_id(member);
            assert_eq!(raw.call(v, &request).await.error_code, 0, "{what}");
        }
        ApiKey::LeaveGroup => {
            let g = format!("leave-v{v}");
            let (member, _) = join_and_sync(raw, &g).await;
            let request = if v >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(group(&g))
                    .with_members(vec![MemberIdentity::default().with_member_id(member)])
            } else {
                LeaveGroupRequest::default()
                    .with_group_id(group(&g))
                    .with_member_id(member)
            };
            let response = raw.call(v, &request).await;
            assert_eq!(response.error_code, 0, "{what}");
            assert!(
                response.members.iter().all(|m| m.error_code == 0),
                "{what}: {:?}",
                response.members
            );
        }
        ApiKey::OffsetCommit => {
            assert_eq!(
                commit(raw, v, &format!("commit-v{v}"), topic, 1).await,
                0,
                "{what}"
            );
        }
        ApiKey::OffsetFetch => {
            let g = format!("fetch-offsets-v{v}");
            assert_eq!(commit(raw, 8, &g, topic, 1).await, 0, "{what}: commit");
            let committed = if v >= 8 {
                let request = OffsetFetchRequest::default().with_groups(vec![
                    OffsetFetchRequestGroup::default()
                        .with_group_id(group(&g))
                        .with_topics(Some(vec![
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(s(topic)))
                                .with_partition_indexes(vec![0]),
                        ])),
                ]);
                let response = raw.call(v, &request).await;
                let p = &response.groups[0].topics[0].partitions[0];
                (
                    response.groups[0].error_code,
                    p.error_code,
                    p.committed_offset,
                )
            } else {
                let request = OffsetFetchRequest::default()
                    .with_group_id(group(&g))
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s(topic)))
                            .with_partition_indexes(vec![0]),
                    ]));
                let response = raw.call(v, &request).await;
                let p = &response.topics[0].partitions[0];
                (response.error_code, p.error_code, p.committed_offset)
            };
            assert_eq!(committed, (0, 0, 1), "{what}");
        }
        ApiKey::OffsetDelete => {
            let g = format!("delete-offsets-v{v}");
            assert_eq!(commit(raw, 8, &g, topic, 1).await, 0, "{what}: commit");
            let request = OffsetDeleteRequest::default()
                .with_group_id(group(&g))
                .with_topics(vec![
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(vec![
                            OffsetDeleteRequestPartition::default().with_partition_index(0),
                        ]),
                ]);
            let response = raw.call(v, &request).await;
            assert_eq!(
                (
                    response.error_code,
                    response.topics[0].partitions[0].error_code
                ),
                (0, 0),
                "{what}"
            );
        }
        ApiKey::ListGroups => {
            let response = raw.call(v, &ListGroupsRequest::default()).await;
            assert_eq!(response.error_code, 0, "{what}");
            assert!(
                !response.groups.is_empty(),
                "{what}: earlier steps made groups"
            );
        }
        ApiKey::DescribeGroups => {
            let g = format!("describe-v{v}");
            let (member, _) = join_and_sync(raw, &g).await;
            let response = raw
                .call(
                    v,
                    &DescribeGroupsRequest::default().with_groups(vec![group(&g)]),
                )
                .await;
            let d = &response.groups[0];
            let summary = (
                d.error_code,
                d.group_state.as_str(),
                d.protocol_type.as_str(),
                d.protocol_data.as_str(),
            );
            assert_eq!(summary, (0, "Stable", "consumer", "range"), "{what}");
            let members: Vec<_> = d
                .members
                .iter()
                .map(|m| (&m.member_id, &m.member_assignment[..]))
                .collect();
            assert_eq!(members, vec![(&member, &b"plan"[..])], "{what}");
        }
        ApiKey::DeleteGroups => {
            let g = format!("deleted-group-v{v}");
            assert_eq!(commit(raw, 8, &g, topic, 1).await, 0, "{what}: commit");
            let response = raw
                .call(
                    v,
                    &DeleteGroupsRequest::default().with_groups_names(vec![group(&g)]),
                )
                .await;
            assert_eq!(response.results[0].error_code, 0, "{what}");
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let g = format!("kip848-v{v}");
            let (member, epoch) = consumer_join(raw, v, &g, topic).await;
            let beat = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group(&g))
                .with_member_id(member.clone())
                .with_member_epoch(epoch);
            let response = raw.call(v, &beat).await;
            assert_eq!(
                (response.error_code, response.member_epoch),
                (0, epoch),
                "{what}: {:?}",
                response.error_message
            );
            assert!(response.assignment.is_none(), "{what}: nothing changed");
            let leave = beat.with_member_epoch(-1);
            let response = raw.call(v, &leave).await;
            assert_eq!(
                (response.error_code, response.member_epoch),
                (0, -1),
                "{what}"
            );
        }
        ApiKey::ConsumerGroupDescribe => {
            let g = format!("kip848-describe-v{v}");
            let (member, epoch) = consumer_join(raw, 1, &g, topic).await;
            let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group(&g)]);
            let response = raw.call(v, &request).await;
            let d = &response.groups[0];
            let summary = (
                d.error_code,
                d.group_state.as_str(),
                d.group_epoch,
                d.assignor_name.as_str(),
            );
            assert_eq!(summary, (0, "Stable", epoch, "uniform"), "{what}");
            let m = &d.members[0];
            assert_eq!((&m.member_id, m.member_epoch), (&member, epoch), "{what}");
            assert_eq!(
                m.assignment.topic_partitions[0].topic_name.as_str(),
                topic,
                "{what}"
            );
        }
        _ => return false,
    }
    true
}

/// Joins `group_id` by the consumer group protocol as its only member; it is
/// given every partition of `topic` at once. Returns (member id, epoch).
async fn consumer_join(
    raw: &mut Raw,
    version: i16,
    group_id: &str,
    topic: &str,
) -> (StrBytes, i32) {
    let member_id = if version >= 1 {
        uuid::Uuid::new_v4().to_string()
    } else {
        String::new()
    };
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(s(&member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s(topic))]))
        .with_topic_partitions(Some(Vec::new()));
    let response = raw.call(version, &request).await;
    let what = format!("ConsumerGroupHeartbeat v{version} join");
    assert_eq!(
        response.error_code, 0,
        "{what}: {:?}",
        response.error_message
    );
    assert!(response.member_epoch >= 1, "{what}");
    let member = response.member_id.expect("a member id");
    if version >= 1 {
        assert_eq!(
            member.as_str(),
            member_id,
            "{what}: KIP-1082 keeps the client's id"
        );
    }
    let assigned: usize = response.assignment.map_or(0, |a| {
        a.topic_partitions.iter().map(|t| t.partitions.len()).sum()
    });
    assert!(assigned >= 1, "{what}: the lone member gets the topic");
    (member, response.member_epoch)
}

//! Bad heartbeats get Kafka's error codes; a static member comes back to its
//! partitions, and a classic group stays classic.

use super::*;

/// A ConsumerGroupHeartbeat v1 of `member` at `epoch` (a full one when joining).
fn beat(group: &str, member: &str, epoch: i32, topic: &str) -> ConsumerGroupHeartbeatRequest {
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(member.into()))
        .with_member_epoch(epoch);
    if epoch == 0 {
        req = req
            .with_rebalance_timeout_ms(SESSION_MS)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(topic.into()))]))
            .with_topic_partitions(Some(Vec::new()));
    }
    req
}

/// Error codes a Kafka client sees (Kafka's numbering).
mod code {
    pub(super) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(super) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub(super) const INVALID_REQUEST: i16 = 42;
    pub(super) const NON_EMPTY_GROUP: i16 = 68;
    pub(super) const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub(super) const GROUP_ID_NOT_FOUND: i16 = 69;
    pub(super) const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub(super) const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub(super) const STALE_MEMBER_EPOCH: i16 = 113;
    pub(super) const FENCED_MEMBER_EPOCH: i16 = 110;
    pub(super) const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_heartbeats_get_kafkas_error_codes() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-bad"), unique_topic("g848-bad"));
    create_topic(&b, &topic, 2, &[]).await;
    let mut raw = Raw::connect(&b).await;
    let error = |r: &kafka_protocol::messages::ConsumerGroupHeartbeatResponse| r.error_code;

    let no_id = raw.call(1, &beat(&group, "", 0, &topic)).await;
    assert_eq!(error(&no_id), code::INVALID_REQUEST, "v1 needs a member id");
    let regex = beat(&group, "m1", 0, &topic)
        .with_subscribed_topic_names(None)
        .with_subscribed_topic_regex(Some(StrBytes::from_static_str("(unclosed")));
    let regex = raw.call(1, &regex).await;
    assert_eq!(error(&regex), code::INVALID_REGULAR_EXPRESSION);
    let assignor = beat(&group, "m1", 0, &topic)
        .with_server_assignor(Some(StrBytes::from_static_str("sticky")));
    assert_eq!(
        error(&raw.call(1, &assignor).await),
        code::UNSUPPORTED_ASSIGNOR
    );
    let unknown = raw.call(1, &beat(&group, "nobody", 3, &topic)).await;
    assert_eq!(error(&unknown), code::UNKNOWN_MEMBER_ID);

    let joined = raw.call(1, &beat(&group, "m1", 0, &topic)).await;
    assert_eq!(error(&joined), 0);
    let epoch = joined.member_epoch;
    let ahead = raw.call(1, &beat(&group, "m1", epoch + 1, &topic)).await;
    assert_eq!(error(&ahead), code::FENCED_MEMBER_EPOCH);
    let classic = rdkafka_classic_join(&b, &group).await;
    assert_eq!(
        classic,
        code::INCONSISTENT_GROUP_PROTOCOL,
        "a non-empty consumer group"
    );

    // Offsets: the member's epoch must be the current one.
    let commit = |epoch: i32| {
        use kafka_protocol::messages::offset_commit_request::*;
        kafka_protocol::messages::OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.clone())))
            .with_generation_id_or_member_epoch(epoch)
            .with_member_id(StrBytes::from_static_str("m1"))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default().with_committed_offset(5),
                    ]),
            ])
    };
    let stale = raw.call(9, &commit(epoch - 1)).await;
    assert_eq!(
        stale.topics[0].partitions[0].error_code,
        code::STALE_MEMBER_EPOCH
    );
    let fresh = raw.call(9, &commit(epoch)).await;
    assert_eq!(fresh.topics[0].partitions[0].error_code, 0);

    let fetch = |epoch: i32| {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
        kafka_protocol::messages::OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_member_id(Some(StrBytes::from_static_str("m1")))
                .with_member_epoch(epoch)
                .with_topics(None),
        ])
    };
    let stale = raw.call(9, &fetch(epoch + 5)).await;
    assert_eq!(stale.groups[0].error_code, code::STALE_MEMBER_EPOCH);
    let fetched = raw.call(9, &fetch(epoch)).await;
    assert_eq!(fetched.groups[0].error_code, 0);
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        5
    );

    // ListGroups v5 filters by type.
    let listed = |kind: &'static str| {
        kafka_protocol::messages::ListGroupsRequest::default()
            .with_types_filter(vec![StrBytes::from_static_str(kind)])
    };
    let consumers = raw.call(5, &listed("consumer")).await;
    let ours = consumers
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == group);
    let ours = ours.map(|g| (g.group_type.as_str(), g.group_state.as_str()));
    assert_eq!(ours, Some(("consumer", "Stable")));
    let classics = raw.call(5, &listed("classic")).await;
    assert!(classics.groups.iter().all(|g| g.group_id.as_str() != group));

    let delete = kafka_protocol::messages::DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(StrBytes::from_string(group.clone()))]);
    assert_eq!(
        raw.call(2, &delete).await.results[0].error_code,
        code::NON_EMPTY_GROUP
    );
    let offset_delete = {
        use kafka_protocol::messages::offset_delete_request::*;
        kafka_protocol::messages::OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.clone())))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
            ])
    };
    let refused = raw.call(0, &offset_delete).await;
    let refused = refused.topics[0].partitions[0].error_code;
    assert_eq!(
        refused,
        code::GROUP_SUBSCRIBED_TO_TOPIC,
        "m1 reads the topic"
    );
    let left = raw.call(1, &beat(&group, "m1", -1, &topic)).await;
    assert_eq!((error(&left), left.member_epoch), (0, -1));
    let deleted = raw.call(0, &offset_delete).await;
    assert_eq!(
        deleted.topics[0].partitions[0].error_code, 0,
        "nobody reads it now"
    );
    let fetched = raw
        .call(
            9,
            &fetch(-1).with_groups(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                    .with_topics(None),
            ]),
        )
        .await;
    assert!(fetched.groups[0].topics.is_empty(), "the offset is gone");
    assert_eq!(raw.call(2, &delete).await.results[0].error_code, 0);
    let gone = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![GroupId(StrBytes::from_string(group.clone()))]);
    assert_eq!(
        raw.call(0, &gone).await.groups[0].error_code,
        code::GROUP_ID_NOT_FOUND
    );
}

/// A classic JoinGroup (protocol type "consumer", v5) for `group`; its error code.
async fn rdkafka_classic_join(bootstrap: &str, group: &str) -> i16 {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let mut raw = Raw::connect(bootstrap).await;
    let join = kafka_protocol::messages::JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(bytes::Bytes::from_static(b"\0\0\0\0\0\0\xff\xff\xff\xff")),
        ]);
    raw.call(5, &join).await.error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_comes_back_to_its_partitions_and_a_classic_group_stays_classic() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-static"), unique_topic("g848-static"));
    create_topic(&b, &topic, 4, &[]).await;
    let mut raw = Raw::connect(&b).await;
    let instance = |req: ConsumerGroupHeartbeatRequest, i: &str| {
        req.with_instance_id(Some(StrBytes::from_string(i.into())))
    };
    let a = raw
        .call(1, &instance(beat(&group, "a1", 0, &topic), "A"))
        .await;
    let other = raw.call(1, &beat(&group, "b1", 0, &topic)).await;
    assert_eq!((a.error_code, other.error_code), (0, 0));
    // a1 reconciles to its half; b1 then gets the rest.
    let a = raw
        .call(
            1,
            &beat(&group, "a1", a.member_epoch, &topic).with_topic_partitions(Some(Vec::new())),
        )
        .await;
    let owned = |r: &kafka_protocol::messages::ConsumerGroupHeartbeatResponse| {
        r.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect::<BTreeSet<i32>>()
        })
    };
    let a_owns = owned(&a).expect("a1 is told what it keeps");
    assert_eq!(a_owns.len(), 2, "{a:?}");
    let before = describe(&b, &group).await;

    let left = raw
        .call(1, &instance(beat(&group, "a1", -2, &topic), "A"))
        .await;
    assert_eq!((left.error_code, left.member_epoch), (0, -2));
    let held = raw
        .call(1, &instance(beat(&group, "a3", 0, &topic), "A"))
        .await;
    assert_eq!(held.error_code, 0, "A was released by its -2 leave");
    assert_eq!(owned(&held), Some(a_owns), "the same partitions, at once");
    assert!(
        held.member_epoch >= a.member_epoch,
        "it carries on from a1's epoch"
    );
    let again = raw
        .call(1, &instance(beat(&group, "a4", 0, &topic), "A"))
        .await;
    assert_eq!(again.error_code, code::UNRELEASED_INSTANCE_ID);
    let after = describe(&b, &group).await;
    assert!(after.members.iter().any(|m| m.member_id.as_str() == "a3"));
    assert_eq!(after.members.len(), 2);
    assert_eq!(
        after.group_epoch, before.group_epoch,
        "a static member's return is no rebalance"
    );

    // A classic group with a member refuses the consumer protocol.
    let classic_group = unique_topic("g848-classic-only");
    let joined = rdkafka_classic_join(&b, &classic_group).await;
    assert_eq!(
        joined, 79,
        "MEMBER_ID_REQUIRED: the classic group now exists with a pending member"
    );
    let member: BaseConsumer =
        consumer_config(&b, &classic_group, &[("group.protocol", "classic")])
            .create()
            .expect("classic consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let member = blocking(move || {
        wait_until("the classic member is assigned", WAIT, || {
            let _ = member.poll(Duration::from_millis(50));
            member.assignment().is_ok_and(|a| a.count() == 4)
        });
        member
    })
    .await;
    let refused = raw.call(1, &beat(&classic_group, "x", 0, &topic)).await;
    assert_eq!(refused.error_code, code::GROUP_ID_NOT_FOUND);
    drop(member);
}

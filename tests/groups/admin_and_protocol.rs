//! Groups seen from outside a consumer: the admin client, kcat -G, and
//! bare JoinGroup / SyncGroup / Heartbeat requests that get Kafka's error codes.

use super::commits::{commit_simple, committed};
use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_client_lists_describes_and_deletes_groups() {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let topic = unique_topic("admin");
    let (active, idle) = (unique_topic("g-active"), unique_topic("g-idle"));
    create_topic(&b, &topic, 2, &[]).await;
    let member = Member::start(
        group_config(&b, &active, &[("client.id", "admin-member")]),
        &topic,
    );
    wait_until("the member owns both partitions", WAIT, || {
        member.seen().assignment.len() == 2
    });
    let (b2, t2, i2) = (b.clone(), topic.clone(), idle.clone());
    blocking(move || commit_simple(&b2, &i2, &t2, 2, 3)).await;

    let probe: BaseConsumer = client_config(&b).create().expect("probe");
    let list = probe
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("list groups");
    let summary: Vec<(String, String, String, Vec<String>)> = list
        .groups()
        .iter()
        .filter(|g| g.name() == active || g.name() == idle)
        .map(|g| {
            let clients = g
                .members()
                .iter()
                .map(|m| m.client_id().to_string())
                .collect();
            (
                g.name().to_string(),
                g.state().to_string(),
                g.protocol_type().to_string(),
                clients,
            )
        })
        .collect();
    let mut want = vec![
        (
            active.clone(),
            "Stable".to_string(),
            "consumer".to_string(),
            vec!["admin-member".to_string()],
        ),
        (idle.clone(), "Empty".to_string(), String::new(), vec![]),
    ];
    want.sort();
    let mut summary = summary;
    summary.sort();
    assert_eq!(summary, want);
    let described = probe
        .fetch_group_list(Some(&active), Duration::from_secs(10))
        .expect("describe");
    assert_eq!(described.groups()[0].protocol(), "range");

    let admin = admin(&b);
    let deleted = admin
        .delete_groups(&[&active, &idle], &admin_opts())
        .await
        .expect("DeleteGroups");
    assert_eq!(
        deleted,
        vec![
            Err((active.clone(), RDKafkaErrorCode::NonEmptyGroup)),
            Ok(idle.clone())
        ]
    );
    assert_eq!(
        committed(&b, &idle, &topic, 1)[0].0,
        Offset::Invalid,
        "deleted with its offsets"
    );

    member.close();
    wait_until("the group is empty", WAIT, || {
        group_members(&b, &active) == 0
    });
    let deleted = admin
        .delete_groups(&[&active], &admin_opts())
        .await
        .expect("DeleteGroups");
    assert_eq!(deleted, vec![Ok(active.clone())]);
    let list = probe
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("list groups");
    assert!(
        list.groups()
            .iter()
            .all(|g| g.name() != active && g.name() != idle)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kcat_consumes_in_a_group_and_commits() {
    if !tools::present(&tools::KCAT) {
        return;
    }
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kcat-group"), unique_topic("g-kcat"));
    create_topic(&b, &topic, 1, &[]).await;
    let prod = producer(&b, &[]);
    produce_n(&prod, &topic, 0, 3).await;
    let args = [
        "-b",
        &b,
        "-G",
        &group,
        &topic,
        "-e",
        "-f",
        "%o %s\n",
        "-X",
        "auto.offset.reset=earliest",
    ];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let run = |args: Vec<String>| {
        blocking(move || kcat(&args.iter().map(String::as_str).collect::<Vec<_>>(), b""))
    };
    assert_eq!(run(args.clone()).await, "0 value-0\n1 value-1\n2 value-2\n");
    produce_n(&prod, &topic, 0, 2).await;
    assert_eq!(run(args).await, "3 value-0\n4 value-1\n");
}

fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.into()))
}

fn join_request(group: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(SESSION_MS)
        .with_member_id(StrBytes::from_string(member.into()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.into())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"meta")),
        ])
}

fn heartbeat(
    group: &str,
    member: &StrBytes,
    generation: i32,
    instance: Option<&str>,
) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(member.clone())
        .with_generation_id(generation)
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.into())))
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_protocol_errors_follow_kafka() {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let group = unique_topic("g-raw");
    let mut raw = Raw::connect(&b).await;
    let (host, port) = b.rsplit_once(':').expect("host:port");

    let v0 = raw
        .call(
            0,
            &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.clone())),
        )
        .await;
    assert_eq!(
        (
            v0.error_code,
            v0.node_id.0,
            v0.host.as_str(),
            v0.port.to_string()
        ),
        (0, 1, host, port.to_string())
    );
    let keys = vec![
        StrBytes::from_static_str("a"),
        StrBytes::from_static_str("b"),
    ];
    let v4 = raw
        .call(
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(keys),
        )
        .await;
    let found: Vec<(&str, i32, i16)> = v4
        .coordinators
        .iter()
        .map(|c| (c.key.as_str(), c.node_id.0, c.error_code))
        .collect();
    assert_eq!(found, vec![("a", 1, 0), ("b", 1, 0)]);

    // A dynamic member: MEMBER_ID_REQUIRED, then the join completes at once (alone).
    let first = raw.call(4, &join_request(&group, "", None)).await;
    assert_eq!(first.error_code, 79);
    let joined = raw
        .call(4, &join_request(&group, &first.member_id, None))
        .await;
    assert_eq!(
        (joined.error_code, joined.generation_id, &joined.leader),
        (0, 1, &first.member_id)
    );
    let me = joined.member_id.clone();
    let assignment = SyncGroupRequestAssignment::default()
        .with_member_id(me.clone())
        .with_assignment(Bytes::from_static(b"mine"));
    let sync = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(1)
        .with_member_id(me.clone());
    let synced = raw
        .call(3, &sync.clone().with_assignments(vec![assignment]))
        .await;
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"mine"[..])
    );
    assert_eq!(
        raw.call(3, &heartbeat(&group, &me, 1, None))
            .await
            .error_code,
        0
    );
    assert_eq!(
        raw.call(3, &heartbeat(&group, &me, 7, None))
            .await
            .error_code,
        22,
        "ILLEGAL_GENERATION"
    );
    let stranger = StrBytes::from_static_str("nobody");
    assert_eq!(
        raw.call(3, &heartbeat(&group, &stranger, 1, None))
            .await
            .error_code,
        25,
        "UNKNOWN_MEMBER_ID"
    );

    // A static member joins (no MEMBER_ID_REQUIRED): the first member must rejoin.
    let (b2, g2) = (b.clone(), group.clone());
    let second = tokio::spawn(async move {
        let mut raw = Raw::connect(&b2).await;
        let joined = raw.call(5, &join_request(&g2, "", Some("inst"))).await;
        (raw, joined)
    });
    let mut rebalancing = 0;
    while rebalancing != 27 {
        rebalancing = raw
            .call(3, &heartbeat(&group, &me, 1, None))
            .await
            .error_code;
        assert!(
            rebalancing == 0 || rebalancing == 27,
            "REBALANCE_IN_PROGRESS expected, got {rebalancing}"
        );
    }
    let rejoined = raw.call(4, &join_request(&group, &me, None)).await;
    let (mut raw2, static_join) = second.await.expect("second member");
    assert_eq!(
        (
            rejoined.error_code,
            rejoined.generation_id,
            rejoined.members.len()
        ),
        (0, 2, 2)
    );
    assert_eq!((static_join.error_code, static_join.generation_id), (0, 2));
    let sync2 = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(2);
    let (a, b_) = (me.clone(), static_join.member_id.clone());
    let follower = tokio::spawn(async move {
        let synced = raw2
            .call(
                3,
                &sync2
                    .with_member_id(b_)
                    .with_group_instance_id(Some(StrBytes::from_static_str("inst"))),
            )
            .await;
        (raw2, synced)
    });
    let assignments = vec![
        SyncGroupRequestAssignment::default()
            .with_member_id(a.clone())
            .with_assignment(Bytes::from_static(b"A")),
        SyncGroupRequestAssignment::default()
            .with_member_id(static_join.member_id.clone())
            .with_assignment(Bytes::from_static(b"B")),
    ];
    let leader_sync = raw
        .call(
            3,
            &sync
                .clone()
                .with_generation_id(2)
                .with_assignments(assignments),
        )
        .await;
    let (_raw2, follower_sync) = follower.await.expect("follower");
    assert_eq!(
        (&leader_sync.assignment[..], &follower_sync.assignment[..]),
        (&b"A"[..], &b"B"[..])
    );

    // The static member restarts: same generation, its assignment, and the old id is fenced.
    let mut raw3 = Raw::connect(&b).await;
    let back = raw3.call(5, &join_request(&group, "", Some("inst"))).await;
    assert_eq!((back.error_code, back.generation_id), (0, 2));
    let resync = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(2)
        .with_member_id(back.member_id.clone());
    assert_eq!(&raw3.call(3, &resync).await.assignment[..], b"B");
    let old = heartbeat(&group, &static_join.member_id, 2, Some("inst"));
    assert_eq!(
        raw3.call(3, &old).await.error_code,
        82,
        "FENCED_INSTANCE_ID"
    );
    assert_eq!(
        raw.call(3, &heartbeat(&group, &me, 2, None))
            .await
            .error_code,
        0,
        "no rebalance for the others"
    );

    // Offsets: unknown partitions read -1; OffsetFetch v8 answers several groups.
    let topics = vec![
        OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("nothing")))
            .with_partition_indexes(vec![0]),
    ];
    let fetched = raw
        .call(
            1,
            &OffsetFetchRequest::default()
                .with_group_id(gid(&group))
                .with_topics(Some(topics)),
        )
        .await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1);
    let topics8 = vec![
        OffsetFetchRequestTopics::default()
            .with_name(TopicName(StrBytes::from_static_str("nothing")))
            .with_partition_indexes(vec![0]),
    ];
    let groups = vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(gid(&group))
            .with_topics(Some(topics8.clone())),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("no-such-group"))
            .with_topics(Some(topics8)),
    ];
    let fetched = raw
        .call(8, &OffsetFetchRequest::default().with_groups(groups))
        .await;
    let offsets: Vec<i64> = fetched
        .groups
        .iter()
        .map(|g| g.topics[0].partitions[0].committed_offset)
        .collect();
    assert_eq!(offsets, vec![-1, -1]);
}

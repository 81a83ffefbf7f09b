//! Consumer groups beside other things: a regex subscription and a topic created
//! later, a classic group on the same topic, a broker restart, another client.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_regex_subscription_picks_up_a_topic_created_later() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let prefix = unique_topic("kip848re");
    let (first, later) = (format!("{prefix}-a"), format!("{prefix}-b"));
    create_topic(&b, &first, 1, &[]).await;
    create_topic(&b, &unique_topic("unrelated"), 1, &[]).await;
    let ownership = Ownership::default();
    let pattern = format!("^{prefix}-.*");
    let group = unique_topic("g848-regex");
    let member = Member::start(
        consumer_config(&b, &group, &[("topic.metadata.refresh.interval.ms", "500")]),
        "regex",
        &[&pattern],
        &ownership,
    );
    wait_until("the member owns the first topic", WAIT, || {
        member.assignment() == BTreeSet::from([(first.clone(), 0)])
    });
    create_topic(&b, &later, 2, &[]).await;
    let all = BTreeSet::from([(first.clone(), 0), (later.clone(), 0), (later.clone(), 1)]);
    wait_until("the member owns the later topic too", WAIT, || {
        member.assignment() == all
    });
    let prod = producer(&b, &[]);
    produce_n(&prod, &later, 1, 3).await;
    wait_until("the later topic's records arrive", WAIT, || {
        // Only the later topic has a partition 1.
        member.records().iter().filter(|r| r.partition == 1).count() == 3
    });
    let described = describe(&b, &group).await;
    // librdkafka sends its patterns joined as one alternation: "(^p-.*)".
    let regex = described.members[0]
        .subscribed_topic_regex
        .clone()
        .unwrap_or_default();
    assert!(regex.contains(pattern.as_str()), "{regex}");
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_and_consumer_groups_read_the_same_topic_side_by_side() {
    let broker = broker().await;
    let b = broker.bootstrap();
    let topic = unique_topic("kip848-both");
    create_topic(&b, &topic, 3, &[]).await;
    let prod = producer(&b, &[]);
    for p in 0..3 {
        produce_n(&prod, &topic, p, 4).await;
    }
    let ownership = Ownership::default();
    let modern = Member::start(
        consumer_config(&b, &unique_topic("g848-modern"), &[]),
        "modern",
        &[&topic],
        &ownership,
    );
    let mut classic_config = consumer_config(&b, &unique_topic("g848-classic"), &[]);
    classic_config.set("group.protocol", "classic");
    let classic = Member::start(classic_config, "classic", &[&topic], &ownership);
    wait_until("both groups read all 12 records", WAIT, || {
        consumed_once(&[&modern]).len() == 12 && consumed_once(&[&classic]).len() == 12
    });
    assert_eq!(consumed_once(&[&modern]), all_offsets(3, 4));
    assert_eq!(consumed_once(&[&classic]), all_offsets(3, 4));

    let listed: BTreeMap<String, String> = {
        let probe: BaseConsumer = client_config(&b).create().expect("probe");
        let groups = probe
            .fetch_group_list(None, Duration::from_secs(5))
            .expect("list groups");
        groups
            .groups()
            .iter()
            .map(|g| (g.name().to_string(), g.protocol_type().to_string()))
            .collect()
    };
    assert!(listed.values().any(|t| t == "consumer"), "{listed:?}");
    modern.close();
    classic.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_group_survives_a_broker_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut broker = broker_on(format!("127.0.0.1:{port}")).await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-restart"), unique_topic("g848-restart"));
    create_topic(&b, &topic, 2, &[]).await;
    let ownership = Ownership::default();
    let member = Member::start(consumer_config(&b, &group, &[]), "m", &[&topic], &ownership);
    wait_until("the member owns both partitions", WAIT, || {
        split(&[&member], &topic, 2)
    });
    let before = describe(&b, &group).await;

    broker.restart().await;
    assert_eq!(
        broker.bootstrap(),
        b,
        "the same port, so the member reconnects"
    );
    let after = describe(&b, &group).await;
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.members.len(), 1);
    assert_eq!(after.members[0].member_id, before.members[0].member_id);
    let assigned =
        |g: &kafka_protocol::messages::consumer_group_describe_response::DescribedGroup| {
            g.members[0]
                .assignment
                .topic_partitions
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>()
        };
    assert_eq!(assigned(&after), 2);

    let prod = producer(&broker.bootstrap(), &[]);
    for p in 0..2 {
        produce_n(&prod, &topic, p, 3).await;
    }
    wait_until("records produced after the restart arrive", WAIT, || {
        consumed_once(&[&member]).len() == 6
    });
    assert_eq!(consumed_once(&[&member]), all_offsets(2, 3));
    let last = describe(&broker.bootstrap(), &group).await;
    assert_eq!(
        last.members[0].member_id, before.members[0].member_id,
        "not fenced"
    );
    member.close();
}

/// The second client: @platformatic/kafka (Node.js) with `groupProtocol:
/// 'consumer'` reads, commits and resumes (tests/node/kip848.mjs). Skipped
/// (one line) without Node.js or npm.
#[tokio::test(flavor = "multi_thread")]
async fn platformatic_kafka_consumes_and_resumes_with_the_consumer_protocol() {
    let Some(modules) = tools::platformatic_kafka(file!()) else {
        return;
    };
    let broker = broker().await;
    let b = broker.bootstrap();
    let (topic, group) = (unique_topic("kip848-node"), unique_topic("g848-node"));
    create_topic(&b, &topic, 3, &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/kip848.mjs");
    let child = std::process::Command::new("node")
        .args([script, &b, &topic, &group])
        .env("NODE_PATH", &modules)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node must be installed");
    let output =
        blocking(move || wait_with_timeout(child, WAIT * 3, "tests/node/kip848.mjs")).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("kip848: all checks passed"),
        "the Node.js client failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let committed = describe(&b, &group).await;
    assert_eq!(
        committed.group_state.as_str(),
        "Empty",
        "both consumers left"
    );
}

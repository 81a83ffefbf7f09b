//! Topic management with rdkafka's AdminClient: metadata, create/delete,
//! configs, partitions, auto-creation, name validation and DeleteRecords.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{
    AlterConfig, ConfigSource, NewPartitions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

fn metadata(bootstrap: &str, topic: Option<&str>) -> Metadata {
    admin(bootstrap)
        .inner()
        .fetch_metadata(topic, Duration::from_secs(10))
        .expect("Metadata request")
}

/// `(partition count, error)` of `name` in a metadata answer, if listed.
fn topic_in(md: &Metadata, name: &str) -> Option<(usize, Option<RDKafkaErrorCode>)> {
    md.topics()
        .iter()
        .find(|t| t.name() == name)
        .map(|t| (t.partitions().len(), t.error().map(RDKafkaErrorCode::from)))
}

/// `name -> (value, source)` of a topic's described configs.
async fn topic_configs(
    bootstrap: &str,
    topic: &str,
) -> Vec<(String, Option<String>, ConfigSource)> {
    let results = admin(bootstrap)
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    assert_eq!(results.len(), 1);
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .expect("describe topic");
    assert_eq!(
        resource.specifier,
        OwnedResourceSpecifier::Topic(topic.to_string())
    );
    let mut entries: Vec<_> = resource
        .entries
        .into_iter()
        .map(|e| (e.name, e.value, e.source))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn entry<'a>(
    entries: &'a [(String, Option<String>, ConfigSource)],
    name: &str,
) -> (&'a str, &'a ConfigSource) {
    let (_, value, source) = entries
        .iter()
        .find(|(n, ..)| n == name)
        .unwrap_or_else(|| panic!("{name} is not described: {entries:?}"));
    (value.as_deref().unwrap_or("<null>"), source)
}

#[tokio::test]
async fn metadata_lists_the_broker_and_every_topic() {
    let broker = start_broker_with(|c| c.node_id = 7).await;
    let (a, b) = (unique_topic("md-a"), unique_topic("md-b"));
    create_topic(&broker.bootstrap(), &a, 1, &[]).await;
    create_topic(&broker.bootstrap(), &b, 3, &[]).await;

    let md = metadata(&broker.bootstrap(), None);
    let port = broker
        .bootstrap()
        .rsplit_once(':')
        .expect("port")
        .1
        .parse::<i32>()
        .expect("port");
    let brokers: Vec<(i32, &str, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host(), b.port()))
        .collect();
    assert_eq!(brokers, vec![(7, "127.0.0.1", port)]);
    let mut topics: Vec<(&str, usize)> = md
        .topics()
        .iter()
        .map(|t| (t.name(), t.partitions().len()))
        .collect();
    topics.sort_unstable();
    let mut want = vec![(a.as_str(), 1), (b.as_str(), 3)];
    want.sort_unstable();
    assert_eq!(topics, want);
    let t = md.topics().iter().find(|t| t.name() == b).expect("topic b");
    for (i, p) in t.partitions().iter().enumerate() {
        assert_eq!(
            (p.id(), p.leader(), p.replicas(), p.isr(), p.error()),
            (i as i32, 7, &[7][..], &[7][..], None)
        );
    }
    let cluster = admin(&broker.bootstrap())
        .inner()
        .fetch_cluster_id(Duration::from_secs(10));
    assert_eq!(cluster.as_deref(), Some("sluice-cluster"));
}

#[tokio::test]
async fn create_topic_with_configs_then_describe_configs_shows_them() {
    let broker = start_broker().await;
    let topic = unique_topic("configs");
    create_topic(
        &broker.bootstrap(),
        &topic,
        2,
        &[
            ("retention.ms", "3600000"),
            ("segment.bytes", "1048576"),
            ("message.timestamp.type", "LogAppendTime"),
        ],
    )
    .await;
    let entries = topic_configs(&broker.bootstrap(), &topic).await;
    assert_eq!(
        entry(&entries, "retention.ms"),
        ("3600000", &ConfigSource::DynamicTopic)
    );
    assert_eq!(
        entry(&entries, "segment.bytes"),
        ("1048576", &ConfigSource::DynamicTopic)
    );
    assert_eq!(
        entry(&entries, "message.timestamp.type"),
        ("LogAppendTime", &ConfigSource::DynamicTopic)
    );
    assert_eq!(
        entry(&entries, "cleanup.policy"),
        ("delete", &ConfigSource::Default)
    );
    assert_eq!(
        entry(&entries, "max.message.bytes"),
        ("1048588", &ConfigSource::Default)
    );
    assert_eq!(
        entry(&entries, "retention.bytes"),
        ("-1", &ConfigSource::Default)
    );
}

#[tokio::test]
async fn describe_configs_reports_the_values_set_on_a_compacted_topic() {
    let broker = start_broker().await;
    let topic = unique_topic("compacted");
    let configs = [
        ("cleanup.policy", "compact"),
        ("retention.ms", "3600000"),
        ("retention.bytes", "1000000"),
    ];
    create_topic(&broker.bootstrap(), &topic, 1, &configs).await;
    let entries = topic_configs(&broker.bootstrap(), &topic).await;
    // Kafka describes what was set; compaction does not rewrite retention.* settings.
    for (key, value) in configs {
        assert_eq!(
            entry(&entries, key),
            (value, &ConfigSource::DynamicTopic),
            "{key}"
        );
    }
}

#[tokio::test]
async fn describe_configs_of_the_broker_shows_its_settings() {
    let broker = start_broker_with(|c| c.num_partitions = 3).await;
    let results = admin(&broker.bootstrap())
        .describe_configs([&ResourceSpecifier::Broker(1)], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .expect("describe broker");
    assert_eq!(resource.specifier, OwnedResourceSpecifier::Broker(1));
    let num = resource
        .get("num.partitions")
        .expect("num.partitions described");
    assert_eq!(
        (num.value.as_deref(), &num.source, num.is_read_only),
        (Some("3"), &ConfigSource::StaticBroker, true)
    );
    let max = resource
        .get("message.max.bytes")
        .expect("message.max.bytes described");
    assert_eq!(max.value.as_deref(), Some("1048588"));
}

#[tokio::test]
async fn alter_configs_replaces_the_topic_overrides() {
    let broker = start_broker().await;
    let topic = unique_topic("alter");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("segment.bytes", "1048576"), ("retention.ms", "1000")],
    )
    .await;
    let change = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("retention.ms", "7200000");
    let results = admin(&broker.bootstrap())
        .alter_configs([&change], &admin_opts())
        .await
        .expect("AlterConfigs request");
    assert_eq!(
        results,
        vec![Ok(OwnedResourceSpecifier::Topic(topic.clone()))]
    );
    let entries = topic_configs(&broker.bootstrap(), &topic).await;
    assert_eq!(
        entry(&entries, "retention.ms"),
        ("7200000", &ConfigSource::DynamicTopic)
    );
    // AlterConfigs (unlike IncrementalAlterConfigs) resets what it does not name.
    assert_eq!(
        entry(&entries, "segment.bytes"),
        ("1073741824", &ConfigSource::Default)
    );
}

#[tokio::test]
async fn bad_config_changes_change_nothing() {
    // rdkafka 0.39 reports every AlterConfigs resource as Ok (it ignores the
    // per-resource error code); tests/protocol.rs checks the codes themselves.
    let broker = start_broker().await;
    let topic = unique_topic("alter-bad");
    create_topic(&broker.bootstrap(), &topic, 1, &[("retention.ms", "5000")]).await;
    let admin = admin(&broker.bootstrap());
    for (key, value) in [
        ("retention.ms", "soon"),
        ("no.such.config", "1"),
        ("segment.bytes", "-5"),
    ] {
        let change = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set(key, value);
        admin
            .alter_configs([&change], &admin_opts())
            .await
            .expect("AlterConfigs request");
    }
    let entries = topic_configs(&broker.bootstrap(), &topic).await;
    assert_eq!(
        entry(&entries, "retention.ms"),
        ("5000", &ConfigSource::DynamicTopic)
    );
}

#[tokio::test]
async fn creating_an_existing_topic_fails_with_topic_already_exists() {
    let broker = start_broker().await;
    let topic = unique_topic("dup");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let again = NewTopic::new(&topic, 5, TopicReplication::Fixed(1));
    let results = admin(&broker.bootstrap())
        .create_topics([&again], &admin_opts())
        .await
        .expect("request");
    assert_eq!(
        results,
        vec![Err((topic.clone(), RDKafkaErrorCode::TopicAlreadyExists))]
    );
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((2, None)),
        "the topic is unchanged"
    );
}

#[tokio::test]
async fn create_topics_with_validate_only_creates_nothing() {
    let broker = start_broker().await;
    let topic = unique_topic("validate-only");
    let new = NewTopic::new(&topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "1000");
    let results = admin(&broker.bootstrap())
        .create_topics([&new], &admin_opts().validate_only(true))
        .await
        .expect("request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
    let bad = NewTopic::new(&topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "never");
    let results = admin(&broker.bootstrap())
        .create_topics([&bad], &admin_opts().validate_only(true))
        .await
        .expect("request");
    assert_eq!(results, vec![Err((topic, RDKafkaErrorCode::InvalidConfig))]);
}

#[tokio::test]
async fn invalid_topic_requests_are_rejected_with_kafka_error_codes() {
    let broker = start_broker().await;
    let long = "x".repeat(250);
    let base = unique_topic("dotted.name");
    create_topic(&broker.bootstrap(), &base, 1, &[]).await;
    let collides = base.replace('.', "_");
    let admin = admin(&broker.bootstrap());
    let cases: Vec<(NewTopic<'_>, RDKafkaErrorCode)> = vec![
        (
            NewTopic::new("bad/name", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("has space", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("..", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new(&long, 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new(&collides, 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("three-replicas", 1, TopicReplication::Fixed(3)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
        (
            NewTopic::new("unknown-config", 1, TopicReplication::Fixed(1))
                .set("min.insync.replicas.typo", "2"),
            RDKafkaErrorCode::InvalidConfig,
        ),
    ];
    for (topic, code) in &cases {
        let results = admin
            .create_topics([topic], &admin_opts())
            .await
            .expect("CreateTopics request");
        assert_eq!(
            results,
            vec![Err((topic.name.to_string(), *code))],
            "creating {:?}",
            topic.name
        );
    }
    let md = metadata(&broker.bootstrap(), None);
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, vec![base.as_str()], "no invalid topic was created");
}

#[tokio::test]
async fn delete_topics_removes_topic_and_data_and_the_name_can_be_reused() {
    let broker = start_broker().await;
    let topic = unique_topic("delete");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_n(&producer, &topic, 1, 3).await, vec![0, 1, 2]);
    let dir = broker.data_dir().join(format!("{topic}-1"));
    assert!(
        dir.is_dir(),
        "{} should exist before the delete",
        dir.display()
    );

    let admin = admin(&broker.bootstrap());
    let results = admin
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
    assert!(
        !dir.exists(),
        "{} should be gone after the delete",
        dir.display()
    );
    let again = admin
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(
        again,
        vec![Err((
            topic.clone(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let fresh = producer_config(&broker.bootstrap())
        .create()
        .expect("producer");
    assert_eq!(
        produce_n(&fresh, &topic, 0, 2).await,
        vec![0, 1],
        "a re-created topic starts empty"
    );
}

#[tokio::test]
async fn create_partitions_grows_a_topic_and_refuses_to_shrink_it() {
    let broker = start_broker().await;
    let topic = unique_topic("grow");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("retention.ms", "86400000")],
    )
    .await;
    let admin = admin(&broker.bootstrap());
    let results = admin
        .create_partitions([&NewPartitions::new(&topic, 3)], &admin_opts())
        .await
        .expect("CreatePartitions request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((3, None))
    );
    let producer = producer(
        &broker.bootstrap(),
        &[("topic.metadata.refresh.interval.ms", "100")],
    );
    assert_eq!(
        produce_n(&producer, &topic, 2, 2).await,
        vec![0, 1],
        "the new partition takes records"
    );

    for count in [2, 3] {
        let results = admin
            .create_partitions([&NewPartitions::new(&topic, count)], &admin_opts())
            .await
            .expect("CreatePartitions request");
        assert_eq!(
            results,
            vec![Err((topic.clone(), RDKafkaErrorCode::InvalidPartitions))],
            "count {count}"
        );
    }
    let entries = topic_configs(&broker.bootstrap(), &topic).await;
    assert_eq!(
        entry(&entries, "retention.ms"),
        ("86400000", &ConfigSource::DynamicTopic)
    );
}

#[tokio::test]
async fn producing_to_an_unknown_topic_auto_creates_it_with_one_partition() {
    let broker = start_broker().await;
    let topic = unique_topic("auto");
    let producer = producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<str, str>::to(&topic)
        .key("k")
        .payload("first");
    assert_eq!(
        await_delivery(send_or_wait(&producer, record)).await,
        Ok((0, 0))
    );
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((1, None))
    );
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 1, WAIT);
    assert_eq!((got[0].offset, got[0].value_str()), (0, "first"));
}

#[tokio::test]
async fn auto_creation_can_be_disabled() {
    let broker = start_broker_with(|c| c.auto_create_topics_enable = false).await;
    let topic = unique_topic("no-auto");
    let md = metadata(&broker.bootstrap(), Some(&topic));
    assert_eq!(
        topic_in(&md, &topic),
        Some((0, Some(RDKafkaErrorCode::UnknownTopicOrPartition)))
    );
    let producer = producer(&broker.bootstrap(), &[("message.timeout.ms", "3000")]);
    let record = FutureRecord::<str, str>::to(&topic).payload("nowhere");
    let result = await_delivery(send_or_wait(&producer, record)).await;
    assert!(
        result.is_err(),
        "a record for a missing topic must not be acknowledged: {result:?}"
    );
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
}

#[tokio::test]
async fn delete_records_moves_the_low_watermark() {
    let broker = start_broker().await;
    let topic = unique_topic("delete-records");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    // Partition 0: one batch per record. Partition 1: few large batches, so
    // the new start offset falls inside a batch.
    let one_by_one = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    for i in 0..10 {
        assert_eq!(produce_n(&one_by_one, &topic, 0, 1).await, vec![i]);
    }
    let batched = producer(&broker.bootstrap(), &[("linger.ms", "100")]);
    assert_eq!(
        produce_n(&batched, &topic, 1, 10).await,
        (0..10).collect::<Vec<_>>()
    );

    let admin = admin(&broker.bootstrap());
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(4))
        .expect("tpl");
    tpl.add_partition_offset(&topic, 1, Offset::Offset(6))
        .expect("tpl");
    let result = admin
        .delete_records(&tpl, &admin_opts())
        .await
        .expect("DeleteRecords request");
    for (p, low) in [(0, 4), (1, 6)] {
        let elem = result
            .find_partition(&topic, p)
            .expect("partition in the answer");
        assert_eq!(
            (elem.error(), elem.offset()),
            (Ok(()), Offset::Offset(low)),
            "partition {p}"
        );
    }

    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(watermarks(&consumer, &topic, 0), (4, 10));
    assert_eq!(watermarks(&consumer, &topic, 1), (6, 10));
    assign(&consumer, &topic, &[0, 1], Offset::Beginning);
    let got = by_partition(&consume_exactly(&consumer, 10, WAIT));
    let offsets = |p: i32| got[&p].iter().map(|r| r.offset).collect::<Vec<_>>();
    assert_eq!(offsets(0), (4..10).collect::<Vec<_>>());
    assert_eq!(offsets(1), (6..10).collect::<Vec<_>>());

    let mut all = TopicPartitionList::new();
    all.add_partition_offset(&topic, 0, Offset::End)
        .expect("tpl");
    let result = admin
        .delete_records(&all, &admin_opts())
        .await
        .expect("DeleteRecords request");
    let elem = result
        .find_partition(&topic, 0)
        .expect("partition in the answer");
    assert_eq!((elem.error(), elem.offset()), (Ok(()), Offset::Offset(10)));
    assert_eq!(watermarks(&consumer, &topic, 0), (10, 10));

    let mut past = TopicPartitionList::new();
    past.add_partition_offset(&topic, 1, Offset::Offset(11))
        .expect("tpl");
    let result = admin
        .delete_records(&past, &admin_opts())
        .await
        .expect("DeleteRecords request");
    let elem = result
        .find_partition(&topic, 1)
        .expect("partition in the answer");
    assert!(
        elem.error().is_err(),
        "deleting past the log end must fail, got {:?}",
        elem.offset()
    );
    assert_eq!(watermarks(&consumer, &topic, 1), (6, 10));
}

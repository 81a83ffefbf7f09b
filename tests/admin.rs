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

#[path = "admin/topics.rs"]
mod topics;

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

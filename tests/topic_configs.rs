//! Every topic config of Kafka 4.0 through rdkafka's admin client: created,
//! described with its source, kept across a restart; bad values refused with
//! INVALID_CONFIG; and the ones Sluice acts on (min.insync.replicas,
//! message.timestamp.after.max.ms) answer produce as Kafka does.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::raw::{Raw, batch, produce, record};
use common::*;
use rdkafka::admin::{ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;

/// A valid, non-default value for every topic config of Kafka 4.0.
const EVERY_CONFIG: &[(&str, &str)] = &[
    ("cleanup.policy", "compact,delete"),
    ("compression.gzip.level", "5"),
    ("compression.lz4.level", "12"),
    ("compression.type", "zstd"),
    ("compression.zstd.level", "7"),
    ("delete.retention.ms", "1000"),
    ("file.delete.delay.ms", "1"),
    ("flush.messages", "100"),
    ("flush.ms", "1000"),
    ("follower.replication.throttled.replicas", "0:1"),
    ("index.interval.bytes", "1024"),
    ("leader.replication.throttled.replicas", "*"),
    ("local.retention.bytes", "-1"),
    ("local.retention.ms", "-1"),
    ("max.compaction.lag.ms", "600000"),
    ("max.message.bytes", "2000000"),
    ("message.downconversion.enable", "false"),
    ("message.timestamp.after.max.ms", "86400000"),
    ("message.timestamp.before.max.ms", "86400000"),
    ("message.timestamp.type", "LogAppendTime"),
    ("min.cleanable.dirty.ratio", "0.1"),
    ("min.compaction.lag.ms", "10"),
    ("min.insync.replicas", "1"),
    ("preallocate", "true"),
    ("remote.log.copy.disable", "true"),
    ("remote.log.delete.on.disable", "true"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "1000000"),
    ("retention.ms", "3600000"),
    ("segment.bytes", "1048576"),
    ("segment.index.bytes", "65536"),
    ("segment.jitter.ms", "5"),
    ("segment.ms", "600000"),
    ("unclean.leader.election.enable", "true"),
];

/// `(name, value, source)` of every described config of `topic`, by name.
async fn described(bootstrap: &str, topic: &str) -> Vec<(String, String, ConfigSource)> {
    let results = admin(bootstrap)
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let resource = results.into_iter().next().expect("one").expect("described");
    let mut entries: Vec<_> = resource
        .entries
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default(), e.source))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[tokio::test]
async fn every_kafka_topic_config_is_created_described_and_kept_across_a_restart() {
    let mut broker = start_broker().await;
    let topic = unique_topic("every-config");
    create_topic(&broker.bootstrap(), &topic, 1, EVERY_CONFIG).await;
    let want: Vec<(String, String, ConfigSource)> = EVERY_CONFIG
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string(), ConfigSource::DynamicTopic))
        .collect();
    assert_eq!(described(&broker.bootstrap(), &topic).await, want);

    broker.restart().await;
    assert_eq!(described(&broker.bootstrap(), &topic).await, want);

    // A topic without overrides reports Kafka's defaults.
    let plain = unique_topic("defaults");
    create_topic(&broker.bootstrap(), &plain, 1, &[]).await;
    let defaults = described(&broker.bootstrap(), &plain).await;
    assert_eq!(defaults.len(), EVERY_CONFIG.len());
    for (name, value) in [
        ("compression.type", "producer"),
        ("message.timestamp.after.max.ms", "3600000"),
        ("min.cleanable.dirty.ratio", "0.5"),
        ("retention.ms", "604800000"),
    ] {
        assert!(
            defaults.contains(&(name.into(), value.into(), ConfigSource::Default)),
            "{name}: {defaults:?}"
        );
    }
}

#[tokio::test]
async fn bad_values_are_refused_with_invalid_config() {
    let broker = start_broker().await;
    for (name, bad) in [
        ("compression.type", "brotli"),
        ("min.cleanable.dirty.ratio", "2"),
        ("preallocate", "maybe"),
        ("min.insync.replicas", "0"),
        ("remote.storage.enable", "true"),
    ] {
        let topic = unique_topic("bad-config");
        let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set(name, bad);
        let result = admin(&broker.bootstrap())
            .create_topics([&new], &admin_opts())
            .await
            .expect("CreateTopics request");
        assert_eq!(
            result,
            vec![Err((topic.clone(), RDKafkaErrorCode::InvalidConfig))],
            "{name} = {bad}"
        );
    }
}

#[tokio::test]
async fn min_insync_replicas_above_one_refuses_acks_all_only() {
    let broker = start_broker().await;
    let topic = unique_topic("min-isr");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("min.insync.replicas", "2")],
    )
    .await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let one = || batch(&[record(0, 1_700_000_000_000, Some("k"), Some("v"))]);
    // NOT_ENOUGH_REPLICAS, and nothing stored.
    assert_eq!(produce(&mut raw, 9, &topic, 0, one()).await, (19, -1));
    let acks_one = producer(
        &broker.bootstrap(),
        &[("acks", "1"), ("enable.idempotence", "false")],
    );
    assert_eq!(produce_n(&acks_one, &topic, 0, 3).await, vec![0, 1, 2]);
}

#[tokio::test]
async fn a_timestamp_too_far_ahead_is_refused_with_invalid_timestamp() {
    let broker = start_broker().await;
    let topic = unique_topic("ts-after");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("message.timestamp.after.max.ms", "60000")],
    )
    .await;
    let producer = producer(&broker.bootstrap(), &[("message.timeout.ms", "10000")]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ahead = now + Duration::from_secs(3600).as_millis() as i64;
    let late = FutureRecord::<str, str>::to(&topic)
        .partition(0)
        .payload("from the future")
        .timestamp(ahead);
    let result = producer.send(late, Duration::from_secs(10)).await;
    assert!(
        matches!(
            result,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp),
                _
            ))
        ),
        "{result:?}"
    );
    let on_time = FutureRecord::<str, str>::to(&topic)
        .partition(0)
        .payload("now")
        .timestamp(now);
    assert_eq!(
        await_delivery(send_or_wait(&producer, on_time)).await,
        Ok((0, 0))
    );
}

/// The codec (attributes & 7) of every batch stored in `topic`-0.
fn stored_codecs(data_dir: &std::path::Path, topic: &str) -> Vec<u8> {
    let log = data_dir.join(format!("{topic}-0/00000000000000000000.log"));
    let bytes = std::fs::read(log).expect("segment");
    let mut codecs = Vec::new();
    let mut at = 0;
    while at + 61 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        codecs.push(bytes[at + 22] & 7);
        at += 12 + len;
    }
    codecs
}

#[tokio::test]
async fn compression_type_recompresses_what_producers_send() {
    let broker = start_broker().await;
    for (codec, id) in [
        ("zstd", 4u8),
        ("uncompressed", 0),
        ("gzip", 1),
        ("lz4", 3),
        ("snappy", 2),
    ] {
        let topic = unique_topic(&format!("compress-{codec}"));
        create_topic(
            &broker.bootstrap(),
            &topic,
            1,
            &[("compression.type", codec)],
        )
        .await;
        // The producer compresses with another codec (or none).
        let sent_with = if codec == "gzip" { "lz4" } else { "gzip" };
        let producer = producer(&broker.bootstrap(), &[("compression.codec", sent_with)]);
        let offsets = produce_n(&producer, &topic, 0, 200).await;
        assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
        let codecs = stored_codecs(broker.data_dir(), &topic);
        assert!(
            !codecs.is_empty() && codecs.iter().all(|c| *c == id),
            "{codec}: stored codecs {codecs:?}"
        );
        let (bootstrap, t) = (broker.bootstrap(), topic.clone());
        let got: Vec<(i64, String)> = blocking(move || {
            let consumer = consumer(&bootstrap, &[]);
            assign(&consumer, &t, &[0], rdkafka::Offset::Beginning);
            consume_exactly(&consumer, 200, WAIT)
                .iter()
                .map(|r| (r.offset, r.value_str().to_string()))
                .collect()
        })
        .await;
        let want: Vec<(i64, String)> = (0..200).map(|i| (i, format!("value-{i}"))).collect();
        assert_eq!(got, want, "{codec}");
    }
}

/// `(value, source)` of broker setting `name` as DescribeConfigs of broker 1 gives it.
async fn broker_setting(bootstrap: &str, name: &str) -> (String, ConfigSource) {
    let results = admin(bootstrap)
        .describe_configs([&ResourceSpecifier::Broker(1)], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let resource = results.into_iter().next().expect("one").expect("described");
    resource
        .entries
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| (e.value.unwrap_or_default(), e.source))
        .unwrap_or_else(|| panic!("{name} is not described"))
}

#[tokio::test]
async fn a_dynamic_broker_default_reaches_every_topic_without_an_override_and_stays() {
    let mut broker = start_broker().await;
    let b = broker.bootstrap();
    let (plain, overridden) = (unique_topic("dyn-plain"), unique_topic("dyn-over"));
    create_topic(&b, &plain, 1, &[]).await;
    create_topic(&b, &overridden, 1, &[("retention.ms", "1000")]).await;
    let before = broker_setting(&b, "log.retention.ms").await;
    assert_eq!(before.1, ConfigSource::StaticBroker);

    let change = rdkafka::admin::AlterConfig::new(ResourceSpecifier::Broker(1))
        .set("log.retention.ms", "7200000");
    let results = admin(&b)
        .alter_configs([&change], &admin_opts())
        .await
        .expect("AlterConfigs request");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // rdkafka's AlterConfigs result drops per-resource errors: ask directly.
    let unknown = set_on_broker_1("no.such.setting", "1");
    let refused = Raw::connect(&b).await.call(1, &unknown).await;
    assert_eq!(refused.responses[0].error_code, 40, "INVALID_CONFIG");

    let check = |entries: Vec<(String, String, ConfigSource)>, want: &str| {
        let (_, value, _) = entries
            .into_iter()
            .find(|(n, ..)| n == "retention.ms")
            .expect("retention.ms");
        assert_eq!(value, want);
    };
    check(described(&b, &plain).await, "7200000");
    check(described(&b, &overridden).await, "1000");
    assert_eq!(
        broker_setting(&b, "log.retention.ms").await,
        ("7200000".to_string(), ConfigSource::DynamicBroker)
    );

    broker.restart().await;
    let b = broker.bootstrap();
    check(described(&b, &plain).await, "7200000");
    assert_eq!(
        broker_setting(&b, "log.retention.ms").await,
        ("7200000".to_string(), ConfigSource::DynamicBroker)
    );
}

/// A dynamic broker setting whose file cannot be written is refused with
/// KAFKA_STORAGE_ERROR (not INVALID_CONFIG: the value was fine), and
/// nothing changes.
#[tokio::test]
async fn a_dynamic_setting_that_cannot_be_written_answers_kafka_storage_error() {
    let broker = start_broker().await;
    let b = broker.bootstrap();
    let before = broker_setting(&b, "log.retention.ms").await;
    // A directory where the file's temporary copy goes: the write fails.
    std::fs::create_dir_all(broker.data_dir().join("dynamic-configs.tmp/in-the-way"))
        .expect("blocker");
    let change = set_on_broker_1("log.retention.ms", "7200000");
    let answer = Raw::connect(&b).await.call(1, &change).await;
    assert_eq!(answer.responses[0].error_code, 56, "KAFKA_STORAGE_ERROR");
    assert_eq!(broker_setting(&b, "log.retention.ms").await, before);
}

/// An IncrementalAlterConfigs request setting `name` to `value` on broker 1.
fn set_on_broker_1(
    name: &'static str,
    value: &'static str,
) -> kafka_protocol::messages::IncrementalAlterConfigsRequest {
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::messages::incremental_alter_configs_request::*;
    use kafka_protocol::protocol::StrBytes;
    IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("1"))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str(value))),
            ]),
    ])
}

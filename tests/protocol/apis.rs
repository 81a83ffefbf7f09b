//! Raw requests for what rdkafka cannot reach or does not report: DescribeCluster,
//! DescribeLogDirs, OffsetForLeaderEpoch, InitProducerId, IncrementalAlterConfigs,
//! per-resource error codes, and exact Produce / Fetch / ListOffsets answers.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

use crate::common::raw::*;
use crate::common::*;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn create(raw: &mut Raw, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(s(k))
                .with_value(Some(s(v)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1)
                .with_configs(configs),
        ]);
    let response = raw.call(7, &request).await;
    assert_eq!(
        response.topics[0].error_code, 0,
        "create {topic}: {:?}",
        response.topics[0].error_message
    );
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

async fn list_offset(raw: &mut Raw, version: i16, topic: &str, timestamp: i64) -> (i16, i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response = raw.call(version, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

#[tokio::test]
async fn describe_cluster_names_the_one_broker() {
    let broker = start_broker_with(|c| c.node_id = 3).await;
    let port: i32 = broker
        .bootstrap()
        .rsplit_once(':')
        .expect("port")
        .1
        .parse()
        .expect("port");
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for version in 0..=1 {
        let response = raw.call(version, &DescribeClusterRequest::default()).await;
        assert_eq!(response.error_code, 0);
        assert_eq!(
            (response.cluster_id.as_str(), response.controller_id),
            ("sluice-cluster", BrokerId(3))
        );
        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id, b.host.as_str(), b.port))
            .collect();
        assert_eq!(
            brokers,
            vec![(BrokerId(3), "127.0.0.1", port)],
            "v{version}"
        );
    }
}

#[tokio::test]
async fn describe_log_dirs_reports_the_data_dir_and_partition_sizes() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "sized", 2, &[]).await;
    create(&mut raw, "other", 1, &[]).await;
    let records = batch(&[record(0, 1, Some("k"), Some("some bytes on disk"))]);
    let size = records.len() as i64;
    assert_eq!(produce(&mut raw, 9, "sized", 0, records).await, (0, 0));

    let all = raw
        .call(1, &DescribeLogDirsRequest::default().with_topics(None))
        .await;
    let dir = &all.results[0];
    assert_eq!(dir.error_code, 0);
    assert_eq!(
        dir.log_dir.as_str(),
        broker.data_dir().display().to_string()
    );
    let mut seen: Vec<(String, i32, i64)> = dir
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index, p.partition_size))
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("other".into(), 0, 0),
            ("sized".into(), 0, size),
            ("sized".into(), 1, 0)
        ]
    );

    let one = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(name("sized"))
            .with_partitions(vec![0]),
    ]));
    let response = raw.call(4, &one).await;
    let dir = &response.results[0];
    let seen: Vec<_> = dir
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.partitions.len()))
        .collect();
    assert_eq!(seen, vec![("sized".to_string(), 1)]);
    assert_eq!(dir.topics[0].partitions[0].partition_size, size);
}

fn epoch_request(
    topic: &str,
    partition: i32,
    leader_epoch: i32,
    current: i32,
) -> OffsetForLeaderEpochRequest {
    OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(partition)
                        .with_leader_epoch(leader_epoch)
                        .with_current_leader_epoch(current),
                ]),
        ])
}

#[tokio::test]
async fn offset_for_leader_epoch_ends_epoch_zero_at_the_log_end() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "epochs", 1, &[]).await;
    let records = batch(
        &(0..5)
            .map(|i| record(i, 1, None, Some("x")))
            .collect::<Vec<_>>(),
    );
    assert_eq!(produce(&mut raw, 9, "epochs", 0, records).await, (0, 0));
    for version in 2..=4 {
        let response = raw.call(version, &epoch_request("epochs", 0, 0, -1)).await;
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.partition, p.leader_epoch, p.end_offset),
            (0, 0, 0, 5),
            "v{version}"
        );
        let response = raw.call(version, &epoch_request("epochs", 0, 0, 0)).await;
        assert_eq!(
            response.topics[0].partitions[0].end_offset, 5,
            "v{version} with current epoch 0"
        );
    }
    let unknown = raw.call(4, &epoch_request("epochs", 7, 0, -1)).await;
    assert_eq!(
        unknown.topics[0].partitions[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let unknown = raw.call(4, &epoch_request("no-such-topic", 0, 0, -1)).await;
    assert_eq!(
        unknown.topics[0].partitions[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let future = raw.call(4, &epoch_request("epochs", 0, 0, 1)).await;
    assert_eq!(
        future.topics[0].partitions[0].error_code, 75,
        "UNKNOWN_LEADER_EPOCH for a newer current epoch"
    );
}

#[tokio::test]
async fn offset_for_leader_epoch_of_an_epoch_never_seen_is_undefined() {
    // Kafka (LeaderEpochFileCache.endOffsetFor): a requested epoch larger than any
    // known epoch answers epoch -1 and end offset -1.
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "epochs", 1, &[]).await;
    assert_eq!(
        produce(
            &mut raw,
            9,
            "epochs",
            0,
            batch(&[record(0, 1, None, Some("x"))])
        )
        .await,
        (0, 0)
    );
    let response = raw.call(4, &epoch_request("epochs", 0, 5, -1)).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, -1, -1));
}

#[tokio::test]
async fn init_producer_id_hands_out_fresh_ids_and_bumps_epochs() {
    let mut broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let fresh = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let mut ids = Vec::new();
    for version in 0..=5 {
        let response = raw.call(version, &fresh).await;
        assert_eq!(
            (response.error_code, response.producer_epoch),
            (0, 0),
            "v{version}"
        );
        ids.push(response.producer_id.0);
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "producer ids must not repeat: {ids:?}"
    );

    // KIP-360 (v3+): a producer that knows its id asks for the next epoch.
    let bump = fresh
        .clone()
        .with_producer_id(ProducerId(ids[0]))
        .with_producer_epoch(0);
    let response = raw.call(4, &bump).await;
    assert_eq!(
        (
            response.error_code,
            response.producer_id.0,
            response.producer_epoch
        ),
        (0, ids[0], 1)
    );

    // A transactional id: a fresh id, then the same id at the next epoch.
    let transactional = fresh
        .clone()
        .with_transactional_id(Some(TransactionalId(s("tx-1"))))
        .with_transaction_timeout_ms(60_000);
    let first = raw.call(4, &transactional).await;
    assert_eq!((first.error_code, first.producer_epoch), (0, 0));
    let again = raw.call(4, &transactional).await;
    assert_eq!(
        (again.error_code, again.producer_id, again.producer_epoch),
        (0, first.producer_id, 1)
    );
    // Longer than transaction.max.timeout.ms (15 min): INVALID_TRANSACTION_TIMEOUT.
    let too_long = transactional.clone().with_transaction_timeout_ms(900_001);
    assert_eq!(raw.call(4, &too_long).await.error_code, 50);

    broker.restart().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let after = raw.call(4, &fresh).await;
    assert!(
        ids.iter().all(|&id| id < after.producer_id.0),
        "{} reuses an id from {ids:?}",
        after.producer_id.0
    );
}

fn incremental_op(key: &str, op: i8, value: Option<&str>) -> incremental::AlterableConfig {
    incremental::AlterableConfig::default()
        .with_name(s(key))
        .with_config_operation(op)
        .with_value(value.map(s))
}

async fn incremental_alter(
    raw: &mut Raw,
    topic: &str,
    ops: Vec<incremental::AlterableConfig>,
    validate: bool,
) -> i16 {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate)
        .with_resources(vec![
            incremental::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic))
                .with_configs(ops),
        ]);
    raw.call(1, &request).await.responses[0].error_code
}

/// `(value, source)` of each named config of a topic, via DescribeConfigs v4.
async fn describe(raw: &mut Raw, topic: &str, keys: &[&str]) -> (i16, Vec<(String, String, i8)>) {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configuration_keys(Some(keys.iter().map(|k| s(k)).collect())),
    ]);
    let response = raw.call(4, &request).await;
    let r = &response.results[0];
    let mut configs: Vec<_> = r
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
            )
        })
        .collect();
    configs.sort();
    (r.error_code, configs)
}

fn cfg(k: &str, v: &str, source: i8) -> (String, String, i8) {
    (k.to_string(), v.to_string(), source)
}

#[tokio::test]
async fn incremental_alter_configs_sets_deletes_appends_and_subtracts() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "inc", 1, &[("retention.ms", "1000")]).await;
    let keys = ["cleanup.policy", "retention.ms", "segment.bytes"];
    let ops = vec![
        incremental_op("segment.bytes", 0, Some("65536")),
        incremental_op("retention.ms", 1, None),
        incremental_op("cleanup.policy", 2, Some("compact")),
    ];
    assert_eq!(incremental_alter(&mut raw, "inc", ops, false).await, 0);
    let (code, configs) = describe(&mut raw, "inc", &keys).await;
    assert_eq!(code, 0);
    assert_eq!(
        configs,
        vec![
            cfg("cleanup.policy", "delete,compact", 1),
            cfg("retention.ms", "604800000", 5),
            cfg("segment.bytes", "65536", 1)
        ]
    );
    let subtract = vec![incremental_op("cleanup.policy", 3, Some("delete"))];
    assert_eq!(incremental_alter(&mut raw, "inc", subtract, false).await, 0);
    let (_, configs) = describe(&mut raw, "inc", &["cleanup.policy"]).await;
    assert_eq!(configs, vec![cfg("cleanup.policy", "compact", 1)]);

    // Refused changes: nothing is applied.
    let before = describe(&mut raw, "inc", &keys).await;
    let bad = vec![
        incremental_op("segment.bytes", 0, Some("1")),
        incremental_op("retention.ms", 0, Some("soon")),
    ];
    assert_eq!(
        incremental_alter(&mut raw, "inc", bad, false).await,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        incremental_alter(
            &mut raw,
            "inc",
            vec![incremental_op("no.such", 0, Some("1"))],
            false
        )
        .await,
        40
    );
    assert_eq!(
        incremental_alter(
            &mut raw,
            "inc",
            vec![incremental_op("retention.ms", 9, Some("1"))],
            false
        )
        .await,
        40
    );
    assert_eq!(
        incremental_alter(
            &mut raw,
            "missing",
            vec![incremental_op("retention.ms", 0, Some("1"))],
            false
        )
        .await,
        3
    );
    let valid_only = vec![incremental_op("retention.ms", 0, Some("5000"))];
    assert_eq!(
        incremental_alter(&mut raw, "inc", valid_only, true).await,
        0
    );
    assert_eq!(
        describe(&mut raw, "inc", &keys).await,
        before,
        "refused or validate-only changes must change nothing"
    );
}

async fn alter(raw: &mut Raw, resource_type: i8, name: &str, pairs: &[(&str, &str)]) -> i16 {
    let configs = pairs
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(s(k))
                .with_value(Some(s(v)))
        })
        .collect();
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs),
    ]);
    raw.call(2, &request).await.responses[0].error_code
}

#[tokio::test]
async fn config_apis_report_errors_per_resource() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "cfg", 1, &[("retention.ms", "5000")]).await;
    assert_eq!(
        alter(&mut raw, 2, "cfg", &[("retention.ms", "soon")]).await,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        alter(&mut raw, 2, "cfg", &[("no.such.config", "1")]).await,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        alter(&mut raw, 2, "missing", &[("retention.ms", "1")]).await,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_ne!(
        alter(&mut raw, 4, "1", &[("num.partitions", "3")]).await,
        0,
        "broker settings are static"
    );
    assert_eq!(
        describe(&mut raw, "cfg", &["retention.ms"]).await,
        (0, vec![cfg("retention.ms", "5000", 1)])
    );
    assert_eq!(
        describe(&mut raw, "missing", &["retention.ms"]).await.0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
}

#[tokio::test]
async fn create_topics_reports_errors_per_topic() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "exists", 1, &[]).await;
    let topic = |n: &str, partitions: i32, replication: i16| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
    };
    let assignment = CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(vec![BrokerId(1)]);
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            topic("good", 3, -1).with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1234"))),
            ]),
            topic("exists", 1, 1),
            topic("zero", 0, 1),
            topic("bad name!", 1, 1),
            topic("replicated", 1, 2),
            topic("both", 2, 1).with_assignments(vec![assignment]),
            topic("bad-config", 1, 1).with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(s("segment.bytes"))
                    .with_value(Some(s("x"))),
            ]),
        ]);
    let response = raw.call(7, &request).await;
    let codes: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.error_code))
        .collect();
    let want: Vec<(String, i16)> = [
        ("good", 0),
        ("exists", 36),
        ("zero", 37),
        ("bad name!", 17),
        ("replicated", 38),
        ("both", 42),
        ("bad-config", 40),
    ]
    .iter()
    .map(|(n, c)| (n.to_string(), *c))
    .collect();
    assert_eq!(codes, want);
    let good = &response.topics[0];
    assert_eq!((good.num_partitions, good.replication_factor), (3, 1));
    let retention = good
        .configs
        .as_ref()
        .expect("v5+ configs")
        .iter()
        .find(|c| c.name.as_str() == "retention.ms");
    assert_eq!(
        retention.and_then(|c| c.value.as_ref()).map(|v| v.as_str()),
        Some("1234")
    );
    assert!(
        response.topics[1..]
            .iter()
            .all(|t| t.error_message.is_some()),
        "errors carry a message"
    );
}

#[tokio::test]
async fn produce_assigns_offsets_to_whole_batches_and_refuses_corrupt_ones() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "raw", 1, &[]).await;
    assert_eq!(
        produce(
            &mut raw,
            9,
            "raw",
            0,
            batch(&[record(0, 10, Some("a"), Some("first"))])
        )
        .await,
        (0, 0)
    );
    // A client numbers records from 0 in every batch; the broker rebases them.
    let three = batch(&[
        record(0, 11, Some("b"), Some("x")),
        record(1, 12, None, None),
        record(2, 13, Some("c"), Some("")),
    ]);
    assert_eq!(produce(&mut raw, 11, "raw", 0, three).await, (0, 1));

    let mut corrupt = batch(&[record(0, 14, Some("d"), Some("flipped"))]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut raw, 9, "raw", 0, Bytes::from(corrupt)).await,
        (2, -1),
        "CORRUPT_MESSAGE"
    );
    assert_ne!(
        produce(&mut raw, 9, "raw", 0, Bytes::from_static(&[1, 2, 3]))
            .await
            .0,
        0,
        "garbage records"
    );
    assert_eq!(
        produce(&mut raw, 9, "raw", 5, batch(&[record(0, 1, None, None)]))
            .await
            .0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce(&mut raw, 9, "nope", 0, batch(&[record(0, 1, None, None)]))
            .await
            .0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    let response = raw.call(12, &fetch_request("raw", 0, 0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 4));
    let got: Vec<_> = decode_records(p.records.as_ref().expect("records"))
        .into_iter()
        .map(|r| (r.offset, r.timestamp, r.key, r.value))
        .collect();
    let b = |v: &'static str| Some(Bytes::from_static(v.as_bytes()));
    assert_eq!(
        got,
        vec![
            (0, 10, b("a"), b("first")),
            (1, 11, b("b"), b("x")),
            (2, 12, None, None),
            (3, 13, b("c"), b(""))
        ]
    );
}

#[tokio::test]
async fn produce_with_acks_zero_sends_no_response() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "fire-and-forget", 1, &[]).await;
    let request = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("fire-and-forget"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&[record(0, 1, None, Some("x"))]))),
                ]),
        ]);
    let (_, payload) = raw.encode(9, &request);
    raw.send_frame(&payload).await;
    // The next frame on the connection answers the next request, not the produce.
    let (id, payload) = raw.encode(3, &ApiVersionsRequest::default());
    raw.send_frame(&payload).await;
    assert_eq!(raw.receive::<ApiVersionsRequest>(3, id).await.error_code, 0);
    assert_eq!(
        list_offset(&mut raw, 8, "fire-and-forget", -1).await,
        (0, 1, -1)
    );
}

#[tokio::test]
async fn produce_with_invalid_acks_is_refused_with_invalid_required_acks() {
    // Kafka answers every partition with INVALID_REQUIRED_ACKS (21) rather than
    // dropping the connection.
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "acks", 1, &[]).await;
    let request = ProduceRequest::default()
        .with_acks(2)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("acks"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&[record(0, 1, None, Some("x"))]))),
                ]),
        ]);
    let response = raw.call(9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 21);
}

#[tokio::test]
async fn fetch_outside_the_log_is_offset_out_of_range() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "range", 1, &[]).await;
    let five = batch(
        &(0..5)
            .map(|i| record(i, 1, None, Some("x")))
            .collect::<Vec<_>>(),
    );
    assert_eq!(produce(&mut raw, 9, "range", 0, five).await, (0, 0));
    for offset in [6, 100, -5] {
        let response = raw.call(12, &fetch_request("range", offset, 0)).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(
            (p.error_code, p.high_watermark),
            (1, 5),
            "fetch at {offset}: OFFSET_OUT_OF_RANGE"
        );
    }
    // At the end exactly: no error, no records.
    let response = raw.call(12, &fetch_request("range", 5, 0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn list_offsets_by_time_finds_the_record_inside_a_batch() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "times", 1, &[]).await;
    let t = 1_700_000_000_000;
    // One batch of five records, 10 ms apart, then a second batch.
    let first = batch(
        &(0..5)
            .map(|i| record(i, t + i * 10, None, Some("x")))
            .collect::<Vec<_>>(),
    );
    assert_eq!(produce(&mut raw, 9, "times", 0, first).await, (0, 0));
    assert_eq!(
        produce(
            &mut raw,
            9,
            "times",
            0,
            batch(&[record(0, t + 100, None, Some("y"))])
        )
        .await,
        (0, 5)
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", -2).await,
        (0, 0, -1),
        "earliest"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", -1).await,
        (0, 6, -1),
        "latest"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", t + 50).await,
        (0, 5, t + 100),
        "between batches"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", t + 101).await,
        (0, -1, -1),
        "after every record"
    );
    // Kafka answers with the first *record* at or after the time, inside the batch.
    assert_eq!(
        list_offset(&mut raw, 8, "times", t + 15).await,
        (0, 2, t + 20),
        "inside the first batch"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", t).await,
        (0, 0, t),
        "the very first record"
    );
}

#[tokio::test]
async fn list_offsets_max_timestamp_finds_the_newest_record() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "max-ts", 1, &[]).await;
    let t = 1_700_000_000_000;
    let first = batch(&[
        record(0, t, None, Some("a")),
        record(1, t + 500, None, Some("b")),
        record(2, t + 5, None, None),
    ]);
    assert_eq!(produce(&mut raw, 9, "max-ts", 0, first).await, (0, 0));
    assert_eq!(
        produce(
            &mut raw,
            9,
            "max-ts",
            0,
            batch(&[record(0, t + 7, None, None)])
        )
        .await,
        (0, 3)
    );
    assert_eq!(
        list_offset(&mut raw, 8, "max-ts", -3).await,
        (0, 1, t + 500),
        "MAX_TIMESTAMP (v7+)"
    );
}

#[tokio::test]
async fn a_parked_fetch_is_answered_when_a_record_arrives() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "parked", 1, &[]).await;
    let (id, payload) = raw.encode(12, &fetch_request("parked", 0, 60_000));
    raw.send_frame(&payload).await;
    // The fetch waits (up to 60 s) for data: nothing may come back yet.
    assert!(
        raw.is_silent_for(Duration::from_millis(500)).await,
        "an empty fetch with min_bytes=1 answered at once"
    );
    let producer = producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<str, str>::to("parked")
        .partition(0)
        .key("k")
        .payload("wake up");
    assert_eq!(
        await_delivery(send_or_wait(&producer, record)).await,
        Ok((0, 0))
    );
    // Well before the 60 s wait ends (receive gives up after READ_WAIT = 10 s),
    // the fetch is answered with the record.
    let response = raw.receive::<FetchRequest>(12, id).await;
    let p = &response.responses[0].partitions[0];
    let records = decode_records(p.records.as_ref().expect("records"));
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].offset, records[0].value.as_deref()),
        (0, Some(&b"wake up"[..]))
    );
}

#[tokio::test]
async fn an_empty_fetch_waits_at_most_max_wait_and_answers_without_error() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "idle", 1, &[]).await;
    let response = raw.call(12, &fetch_request("idle", 0, 200)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(
        (response.error_code, p.error_code, p.high_watermark),
        (0, 0, 0)
    );
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

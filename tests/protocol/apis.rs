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
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

use crate::common::raw::*;
use crate::common::*;

#[path = "apis/configs.rs"]
mod configs;

#[path = "apis/records.rs"]
mod records;

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

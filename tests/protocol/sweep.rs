//! Every API in the SUPPORTED table, at every version it advertises, gets a
//! small valid request and must answer with a decodable, error-free response.
//! Catches version-dependent encoding mistakes ("a field is set that is not
//! available on the selected protocol version") before a client does.

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::handler::SUPPORTED;

use crate::common::raw::*;
use crate::common::*;

const TOPIC: &str = "sweep";

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// What the sweep needs to know about the broker.
struct Ctx {
    topic_id: uuid::Uuid,
    produced: i64,
    partitions: i32,
}

#[tokio::test]
async fn every_advertised_api_answers_at_every_advertised_version() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, TOPIC, 1).await;
    create(&mut raw, "sweep-grow", 1).await;
    let md = raw
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    let topic_id = md
        .topics
        .iter()
        .find(|t| t.name == Some(name(TOPIC)))
        .expect("sweep topic")
        .topic_id;
    assert!(!topic_id.is_nil(), "Metadata v12 must give topic ids");
    let mut ctx = Ctx {
        topic_id,
        produced: 0,
        partitions: 1,
    };
    let mut exercised = Vec::new();
    for &(key, min, max) in SUPPORTED {
        for version in min..=max {
            exercise(&mut raw, &mut ctx, key, version).await;
            exercised.push((key, version));
        }
    }
    assert!(
        exercised.len() > 50,
        "the table is suspiciously small: {exercised:?}"
    );
}

async fn create(raw: &mut Raw, topic: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ]);
    let response = raw.call(7, &request).await;
    assert_eq!(
        response.topics[0].error_code, 0,
        "create {topic}: {:?}",
        response.topics[0].error_message
    );
}

async fn exercise(raw: &mut Raw, ctx: &mut Ctx, key: ApiKey, v: i16) {
    let what = format!("{key:?} v{v}");
    match key {
        ApiKey::Produce => {
            let records = batch(&[record(0, 1_000, Some("k"), Some(&what))]);
            let request = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(name(TOPIC))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(records)),
                        ]),
                ]);
            let response = raw.call(v, &request).await;
            let p = &response.responses[0].partition_responses[0];
            assert_eq!(
                (p.error_code, p.base_offset),
                (0, ctx.produced),
                "{what}: {:?}",
                p.error_message
            );
            ctx.produced += 1;
        }
        ApiKey::Fetch => {
            let mut topic = FetchTopic::default().with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20),
            ]);
            topic = if v >= 13 {
                topic.with_topic_id(ctx.topic_id)
            } else {
                topic.with_topic(name(TOPIC))
            };
            let request = FetchRequest::default()
                .with_max_bytes(1 << 20)
                .with_topics(vec![topic]);
            let response = raw.call(v, &request).await;
            assert_eq!(response.error_code, 0, "{what}");
            let t = &response.responses[0];
            if v >= 13 {
                assert_eq!(t.topic_id, ctx.topic_id, "{what}");
            } else {
                assert_eq!(t.topic, name(TOPIC), "{what}");
            }
            let p = &t.partitions[0];
            assert_eq!(
                (p.error_code, p.high_watermark),
                (0, ctx.produced),
                "{what}"
            );
            let records = decode_records(p.records.as_ref().expect("records"));
            let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, (0..ctx.produced).collect::<Vec<_>>(), "{what}");
        }
        ApiKey::ListOffsets => {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name(TOPIC))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(-1),
                        ]),
                ]);
            let response = raw.call(v, &request).await;
            let p = &response.topics[0].partitions[0];
            assert_eq!((p.error_code, p.offset), (0, ctx.produced), "{what}");
        }
        ApiKey::Metadata => {
            let topics = if v == 0 { Some(vec![]) } else { None };
            let response = raw
                .call(v, &MetadataRequest::default().with_topics(topics))
                .await;
            assert_eq!(response.brokers.len(), 1, "{what}");
            let t = response
                .topics
                .iter()
                .find(|t| t.name == Some(name(TOPIC)))
                .expect("topic listed");
            assert_eq!((t.error_code, t.partitions.len()), (0, 1), "{what}");
            if v >= 10 {
                assert_eq!(t.topic_id, ctx.topic_id, "{what}");
            }
        }
        ApiKey::ApiVersions => {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(s("sweep"))
                .with_client_software_version(s("1"));
            let response = raw.call(v, &request).await;
            assert_eq!(
                (response.error_code, response.api_keys.len()),
                (0, SUPPORTED.len()),
                "{what}"
            );
            if v >= 3 {
                // KIP-848: the feature that tells clients the consumer group protocol is on.
                let finalized: Vec<_> = response
                    .finalized_features
                    .iter()
                    .map(|f| (f.name.as_str(), f.max_version_level))
                    .collect();
                assert_eq!(finalized, vec![("group.version", 1)], "{what}");
            }
        }
        ApiKey::CreateTopics => {
            let topic = format!("created-v{v}");
            let request = CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(name(&topic))
                        .with_num_partitions(2)
                        .with_replication_factor(1),
                ]);
            let response = raw.call(v, &request).await;
            let t = &response.topics[0];
            assert_eq!(
                (t.error_code, &t.name),
                (0, &name(&topic)),
                "{what}: {:?}",
                t.error_message
            );
            if v >= 5 {
                assert_eq!((t.num_partitions, t.replication_factor), (2, 1), "{what}");
            }
            if v >= 7 {
                assert!(!t.topic_id.is_nil(), "{what}: topic id");
            }
        }
        ApiKey::DeleteTopics => {
            let topic = format!("deleted-v{v}");
            create(raw, &topic, 1).await;
            let request = if v >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    DeleteTopicState::default().with_name(Some(name(&topic))),
                ])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
            };
            let response = raw.call(v, &request.with_timeout_ms(5000)).await;
            let r = &response.responses[0];
            assert_eq!(
                (r.error_code, r.name.as_ref()),
                (0, Some(&name(&topic))),
                "{what}"
            );
        }
        ApiKey::DeleteRecords => {
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    DeleteRecordsTopic::default()
                        .with_name(name(TOPIC))
                        .with_partitions(vec![
                            DeleteRecordsPartition::default()
                                .with_partition_index(0)
                                .with_offset(0),
                        ]),
                ]);
            let response = raw.call(v, &request).await;
            let p = &response.topics[0].partitions[0];
            assert_eq!((p.error_code, p.low_watermark), (0, 0), "{what}");
        }
        ApiKey::InitProducerId => {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000);
            let response = raw.call(v, &request).await;
            assert_eq!(
                (response.error_code, response.producer_epoch),
                (0, 0),
                "{what}"
            );
            assert!(
                response.producer_id.0 >= 0,
                "{what}: producer id {:?}",
                response.producer_id
            );
        }
        ApiKey::OffsetForLeaderEpoch => {
            let request = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(if v >= 3 { -1 } else { -2 }))
                .with_topics(vec![
                    OffsetForLeaderTopic::default()
                        .with_topic(name(TOPIC))
                        .with_partitions(vec![
                            OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_leader_epoch(0),
                        ]),
                ]);
            let response = raw.call(v, &request).await;
            let p = &response.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.leader_epoch, p.end_offset),
                (0, 0, ctx.produced),
                "{what}"
            );
        }
        ApiKey::DescribeConfigs => {
            let request = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configuration_keys(None),
            ]);
            let response = raw.call(v, &request).await;
            let r = &response.results[0];
            assert_eq!(r.error_code, 0, "{what}: {:?}", r.error_message);
            assert!(
                r.configs.iter().any(|c| c.name.as_str() == "retention.ms"),
                "{what}: {:?}",
                r.configs
            );
        }
        ApiKey::AlterConfigs => {
            let request = AlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("86400000"))),
                    ]),
            ]);
            let response = raw.call(v, &request).await;
            let r = &response.responses[0];
            assert_eq!(r.error_code, 0, "{what}: {:?}", r.error_message);
        }
        ApiKey::DescribeLogDirs => {
            let response = raw
                .call(v, &DescribeLogDirsRequest::default().with_topics(None))
                .await;
            let dir = &response.results[0];
            assert_eq!((response.error_code, dir.error_code), (0, 0), "{what}");
            assert!(
                dir.topics.iter().any(|t| t.name == name(TOPIC)),
                "{what}: {:?}",
                dir.topics
            );
        }
        ApiKey::CreatePartitions => {
            ctx.partitions += 1;
            let request = CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    CreatePartitionsTopic::default()
                        .with_name(name("sweep-grow"))
                        .with_count(ctx.partitions)
                        .with_assignments(None),
                ]);
            let response = raw.call(v, &request).await;
            let r = &response.results[0];
            assert_eq!(r.error_code, 0, "{what}: {:?}", r.error_message);
        }
        ApiKey::IncrementalAlterConfigs => {
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configs(vec![
                        incremental::AlterableConfig::default()
                            .with_name(s("segment.bytes"))
                            .with_config_operation(0)
                            .with_value(Some(s("1048576"))),
                    ]),
            ]);
            let response = raw.call(v, &request).await;
            let r = &response.responses[0];
            assert_eq!(r.error_code, 0, "{what}: {:?}", r.error_message);
        }
        ApiKey::DescribeCluster => {
            let response = raw.call(v, &DescribeClusterRequest::default()).await;
            assert_eq!(
                (response.error_code, response.cluster_id.as_str()),
                (0, "sluice-cluster"),
                "{what}"
            );
            assert_eq!(response.brokers.len(), 1, "{what}");
        }
        other => {
            let handled = crate::sweep_groups::exercise(raw, other, v, TOPIC).await
                || crate::sweep_txn::exercise(raw, other, v, TOPIC).await
                || crate::sweep_admin::exercise(raw, other, v, TOPIC).await;
            assert!(
                handled,
                "{other:?} is advertised but this sweep has no request for it: add one"
            );
        }
    }
}

//! The cluster admin APIs' part of the version sweep: partition views
//! (DescribeTopicPartitions, DescribeProducers), leadership and reassignment
//! (ElectLeaders, ListPartitionReassignments) and client quotas.

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_producers_request::TopicRequest as ProducersTopic;
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::common::raw::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Exercises one admin API at one version; false when `key` is none of them.
pub(super) async fn exercise(raw: &mut Raw, key: ApiKey, v: i16, topic: &str) -> bool {
    let what = format!("{key:?} v{v}");
    match key {
        ApiKey::DescribeTopicPartitions => {
            let topic = &format!("paged-v{v}");
            let create = CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_num_partitions(3)
                        .with_replication_factor(1),
                ]);
            assert_eq!(raw.call(5, &create).await.topics[0].error_code, 0, "{what}");
            let request = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    TopicRequest::default().with_name(TopicName(s(topic))),
                    TopicRequest::default().with_name(TopicName(s("no-such-topic"))),
                ])
                .with_response_partition_limit(1);
            let response = raw.call(v, &request).await;
            let codes: Vec<(&str, i16)> = response
                .topics
                .iter()
                .map(|t| (t.name.as_ref().map_or("", |n| n.as_str()), t.error_code))
                .collect();
            // By name; the unknown topic answers UNKNOWN_TOPIC_OR_PARTITION.
            assert_eq!(
                codes,
                vec![("no-such-topic", 3), (topic.as_str(), 0)],
                "{what}"
            );
            let t = &response.topics[1];
            assert_eq!(t.partitions.len(), 1, "{what}: the limit is one partition");
            let next = response.next_cursor.as_ref().map(|c| c.partition_index);
            assert_eq!(next, Some(1), "{what}: the cursor points at partition 1");
        }
        ApiKey::DescribeProducers => {
            let request = DescribeProducersRequest::default().with_topics(vec![
                ProducersTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(vec![0, 99]),
            ]);
            let response = raw.call(v, &request).await;
            let codes: Vec<i16> = response.topics[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect();
            assert_eq!(codes, vec![0, 3], "{what}: partition 99 is unknown");
        }
        ApiKey::ElectLeaders => {
            let request = ElectLeadersRequest::default()
                .with_topic_partitions(Some(vec![
                    TopicPartitions::default()
                        .with_topic(TopicName(s(topic)))
                        .with_partitions(vec![0]),
                ]))
                .with_timeout_ms(5000);
            let response = raw.call(v, &request).await;
            let r = &response.replica_election_results[0].partition_result[0];
            assert_eq!(r.error_code, 84, "{what}: ELECTION_NOT_NEEDED");
        }
        ApiKey::ListPartitionReassignments => {
            let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(5000);
            let response = raw.call(v, &request).await;
            assert_eq!(
                (response.error_code, response.topics.len()),
                (0, 0),
                "{what}"
            );
        }
        ApiKey::AlterClientQuotas => {
            let response = raw.call(v, &set_quota(&format!("sweep-{v}"))).await;
            assert_eq!(response.entries[0].error_code, 0, "{what}");
        }
        ApiKey::DescribeClientQuotas => {
            let set = raw.call(1, &set_quota(&format!("described-{v}"))).await;
            assert_eq!(
                set.entries[0].error_code, 0,
                "{what}: AlterClientQuotas first"
            );
            let request = DescribeClientQuotasRequest::default().with_components(vec![
                ComponentData::default()
                    .with_entity_type(s("client-id"))
                    .with_match_type(2),
            ]);
            let response = raw.call(v, &request).await;
            assert_eq!(response.error_code, 0, "{what}");
            assert!(response.entries.is_some_and(|e| !e.is_empty()), "{what}");
        }
        ApiKey::CreateAcls => {
            let request = CreateAclsRequest::default().with_creations(vec![
                create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s(&format!("acl-v{v}")))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:alice"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3),
                // No "Type:name" principal: refused alone.
                create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s("x"))
                    .with_resource_pattern_type(3)
                    .with_principal(s("alice"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3),
            ]);
            let response = raw.call(v, &request).await;
            let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
            assert_eq!(codes, vec![0, 42], "{what}: INVALID_REQUEST for the second");
        }
        ApiKey::DescribeAcls => {
            let create = CreateAclsRequest::default().with_creations(vec![
                create_acls_request::AclCreation::default()
                    .with_resource_type(3)
                    .with_resource_name(s("described-group"))
                    .with_resource_pattern_type(4)
                    .with_principal(s("User:carol"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3),
            ]);
            assert_eq!(
                raw.call(1, &create).await.results[0].error_code,
                0,
                "{what}"
            );
            let request = DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1);
            let response = raw.call(v, &request).await;
            assert_eq!(response.error_code, 0, "{what}");
            assert!(
                !response.resources.is_empty(),
                "{what}: CreateAcls made some"
            );
        }
        ApiKey::DeleteAcls => {
            let request = DeleteAclsRequest::default().with_filters(vec![
                delete_acls_request::DeleteAclsFilter::default()
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(s(&format!("acl-v{v}"))))
                    .with_pattern_type_filter(3)
                    .with_operation(1)
                    .with_permission_type(1),
            ]);
            let response = raw.call(v, &request).await;
            let r = &response.filter_results[0];
            assert_eq!((r.error_code, r.matching_acls.len()), (0, 1), "{what}");
        }
        ApiKey::SaslHandshake => {
            // The sweep's listener is PLAINTEXT: there is nothing to authenticate.
            let request = SaslHandshakeRequest::default().with_mechanism(s("PLAIN"));
            let response = raw.call(v, &request).await;
            assert_eq!(response.error_code, 34, "{what}: ILLEGAL_SASL_STATE");
            assert_eq!(
                response.mechanisms.len(),
                3,
                "{what}: the enabled mechanisms"
            );
        }
        ApiKey::SaslAuthenticate => {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(b"x".to_vec().into());
            let response = raw.call(v, &request).await;
            assert_eq!(
                response.error_code, 34,
                "{what}: no SaslHandshake came first"
            );
        }
        ApiKey::DescribeUserScramCredentials => {
            let request = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default().with_name(s("nobody")),
            ]));
            let response = raw.call(v, &request).await;
            assert_eq!(
                response.results[0].error_code, 91,
                "{what}: RESOURCE_NOT_FOUND"
            );
        }
        ApiKey::AlterUserScramCredentials => {
            let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(s("nobody"))
                    .with_mechanism(1),
            ]);
            let response = raw.call(v, &request).await;
            assert_eq!(
                response.results[0].error_code, 91,
                "{what}: RESOURCE_NOT_FOUND"
            );
        }
        _ => return false,
    }
    true
}

/// AlterClientQuotas: a producer byte rate for client id `client`.
fn set_quota(client: &str) -> AlterClientQuotasRequest {
    AlterClientQuotasRequest::default().with_entries(vec![
        EntryData::default()
            .with_entity(vec![
                EntityData::default()
                    .with_entity_type(s("client-id"))
                    .with_entity_name(Some(s(client))),
            ])
            .with_ops(vec![
                OpData::default()
                    .with_key(s("producer_byte_rate"))
                    .with_value(1024.0),
            ]),
    ])
}

//! The authorizer (`authorizer = true`): rdkafka clients logged in on a
//! SASL_PLAINTEXT listener can do only what ACLs allow them. A principal
//! with no binding is refused (TOPIC/GROUP/TRANSACTIONAL_ID/CLUSTER
//! _AUTHORIZATION_FAILED) and sees no topic in Metadata; bindings granting
//! WRITE, READ and DESCRIBE let it produce and consume in a group; a DENY
//! wins over an ALLOW; a super user may do everything. The bindings are
//! made with CreateAcls over the PLAINTEXT listener, whose anonymous
//! principal is a super user here. A `User:*` binding applies to everyone.

mod common;

use std::time::Duration;

use common::raw::Raw;
use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer,
};
use sluice::security::SecurityProtocol;

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

/// A broker with the authorizer on: `admin` and the PLAINTEXT listener's
/// anonymous principal are super users, `alice` and `bob` are not.
async fn broker() -> TestBroker {
    start_broker_with(|c| {
        sasl_listener(c, &["admin", "alice", "bob"]);
        c.authorizer = true;
        c.super_users = vec!["User:admin".into(), "User:ANONYMOUS".into()];
    })
    .await
}

/// rdkafka settings for `user` on the SASL listener.
fn login(broker: &TestBroker, user: &str) -> ClientConfig {
    let mut c = client_config(&broker.listener(SecurityProtocol::SaslPlaintext));
    c.set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-256")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-secret"));
    c
}

/// One binding, in CreateAcls' form.
fn acl(resource: (i8, &str, i8), principal: &str, operation: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource.0)
        .with_resource_name(StrBytes::from_string(resource.1.into()))
        .with_resource_pattern_type(resource.2)
        .with_principal(StrBytes::from_string(principal.into()))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

/// Creates `bindings` as the super user (PLAINTEXT listener).
async fn grant(broker: &TestBroker, bindings: Vec<AclCreation>) {
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let created = raw
        .call(3, &CreateAclsRequest::default().with_creations(bindings))
        .await;
    for r in &created.results {
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    }
}

/// Produces `value` to partition 0 of `topic` as `config`'s principal:
/// its offset, or the error code that refused it.
async fn produce_as(
    config: &ClientConfig,
    topic: &str,
    value: &str,
) -> Result<i64, RDKafkaErrorCode> {
    let producer: FutureProducer = config
        .clone()
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::<(), _>::to(topic).partition(0).payload(value),
            Duration::from_secs(10),
        )
        .await
        .map(|delivered| delivered.offset)
        .map_err(|(e, _)| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))
}

/// The topics Metadata shows `config`'s principal.
async fn visible_topics(config: &ClientConfig) -> Vec<String> {
    let consumer: BaseConsumer = config.create().expect("client");
    blocking(move || {
        let metadata = consumer
            .fetch_metadata(None, WAIT)
            .expect("metadata for all topics");
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        names
    })
    .await
}

/// Reads `topic` in group `group` as `config`'s principal until `n` records
/// arrive (then commits), or returns the first error the consumer reports.
async fn consume_as(
    config: &ClientConfig,
    group: &str,
    topic: &str,
    n: usize,
) -> Result<Vec<String>, RDKafkaErrorCode> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let topic = topic.to_string();
    blocking(move || {
        consumer.subscribe(&[&topic]).expect("subscribe");
        let deadline = std::time::Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "neither {n} records nor an error (got {got:?})"
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => got.push(Rec::from_message(&m).value_str().to_string()),
                Some(Err(e)) => {
                    return Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail));
                }
                None => {}
            }
        }
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .map_err(|e| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))?;
        Ok(got)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_needs_acls_and_a_deny_wins() {
    let broker = broker().await;
    let orders = unique_topic("orders");
    let secret = unique_topic("secret");
    create_topic(&broker.bootstrap(), &orders, 1, &[]).await;
    create_topic(&broker.bootstrap(), &secret, 1, &[]).await;
    let alice = login(&broker, "alice");

    // No binding: refused, and no topic is visible.
    assert_eq!(
        produce_as(&alice, &orders, "nope").await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    assert!(visible_topics(&alice).await.is_empty());

    // WRITE and READ on the "orders" prefix, READ on groups "alice-*".
    let prefix = orders.split('-').next().expect("prefix");
    grant(
        &broker,
        vec![
            acl((TOPIC, prefix, PREFIXED), "User:alice", WRITE, ALLOW),
            acl((TOPIC, prefix, PREFIXED), "User:alice", READ, ALLOW),
            acl((GROUP, "alice-", PREFIXED), "User:alice", READ, ALLOW),
        ],
    )
    .await;
    assert_eq!(produce_as(&alice, &orders, "o-0").await, Ok(0));
    assert_eq!(produce_as(&alice, &orders, "o-1").await, Ok(1));
    assert_eq!(
        produce_as(&alice, &secret, "nope").await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    // READ and WRITE imply DESCRIBE: the granted topic is the only one shown.
    let visible = visible_topics(&alice).await;
    assert!(visible.contains(&orders), "{visible:?}");
    assert!(!visible.contains(&secret), "{visible:?}");

    assert_eq!(
        consume_as(&alice, "alice-readers", &orders, 2).await,
        Ok(vec!["o-0".to_string(), "o-1".to_string()])
    );
    assert_eq!(
        consume_as(&alice, "someone-elses", &orders, 1).await,
        Err(RDKafkaErrorCode::GroupAuthorizationFailed)
    );

    // A DENY wins over the prefixed ALLOW.
    grant(
        &broker,
        vec![acl((TOPIC, &orders, LITERAL), "User:alice", WRITE, DENY)],
    )
    .await;
    assert_eq!(
        produce_as(&alice, &orders, "nope").await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );

    // bob has nothing; the super user admin has everything.
    let bob = login(&broker, "bob");
    assert!(visible_topics(&bob).await.is_empty());
    grant(
        &broker,
        vec![acl((TOPIC, &orders, LITERAL), "User:*", DESCRIBE, ALLOW)],
    )
    .await;
    assert_eq!(visible_topics(&bob).await, vec![orders.clone()]);
    let admin = login(&broker, "admin");
    assert_eq!(produce_as(&admin, &secret, "s-0").await, Ok(0));
    let visible = visible_topics(&admin).await;
    assert!(visible.contains(&orders) && visible.contains(&secret));
    assert_eq!(
        read_values(&broker.bootstrap(), &orders, "read_uncommitted", 2),
        [(0, "o-0".to_string()), (1, "o-1".to_string())],
        "nothing refused was written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_admin_requests_and_acl_changes_are_checked() {
    let broker = broker().await;
    let topic = unique_topic("ledger");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let alice = login(&broker, "alice");
    grant(
        &broker,
        vec![acl((TOPIC, &topic, LITERAL), "User:alice", ALL, ALLOW)],
    )
    .await;

    // A transactional id needs WRITE on it.
    let txn_producer = |config: &ClientConfig| -> ThreadedProducer<DefaultProducerContext> {
        config
            .clone()
            .set("transactional.id", "alice-tx")
            .set("transaction.timeout.ms", "10000")
            .create()
            .expect("transactional producer")
    };
    let producer = txn_producer(&alice);
    let refused = blocking(move || producer.init_transactions(WAIT)).await;
    assert_eq!(
        refused.err().and_then(|e| e.rdkafka_error_code()),
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed)
    );
    grant(
        &broker,
        vec![acl(
            (TRANSACTIONAL_ID, "alice-tx", LITERAL),
            "User:alice",
            WRITE,
            ALLOW,
        )],
    )
    .await;
    let producer = txn_producer(&alice);
    let t = topic.clone();
    blocking(move || {
        producer.init_transactions(WAIT).expect("init");
        producer.begin_transaction().expect("begin");
        let record = BaseRecord::<(), _>::to(&t).partition(0).payload("in-tx");
        producer.send(record).expect("send");
        producer.flush(WAIT).expect("flush");
        producer.commit_transaction(WAIT).expect("commit");
    })
    .await;
    assert_eq!(
        read_values(&broker.bootstrap(), &topic, "read_committed", 1),
        [(0, "in-tx".to_string())]
    );

    // Creating a topic needs CREATE on the cluster or on the topic.
    let admin: rdkafka::admin::AdminClient<DefaultClientContext> =
        alice.create().expect("admin client");
    let new = unique_topic("alice-new");
    let created = admin
        .create_topics(
            &[NewTopic::new(&new, 1, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics answered");
    assert_eq!(
        created[0].as_ref().err().map(|(_, code)| *code),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    grant(
        &broker,
        vec![acl(
            (CLUSTER, "kafka-cluster", LITERAL),
            "User:alice",
            CREATE,
            ALLOW,
        )],
    )
    .await;
    let created = admin
        .create_topics(
            &[NewTopic::new(&new, 1, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics answered");
    assert!(created[0].is_ok(), "{created:?}");

    // The super user lists and deletes alice's bindings; she is refused again.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let listed = raw
        .call(
            3,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    let count: usize = listed.resources.iter().map(|r| r.acls.len()).sum();
    assert_eq!(count, 3, "alice's three bindings are all still there");
    let deleted = raw
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_name_filter(None)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        )
        .await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 3);
    assert_eq!(
        produce_as(&alice, &topic, "nope").await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed),
        "with its bindings deleted, alice is refused again"
    );
}

//! SASL listeners: rdkafka logs in with PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512 (kcat with PLAIN) on a SASL_PLAINTEXT listener beside a PLAINTEXT one; a
//! wrong password or a request before authentication closes the connection
//! and writes nothing; SCRAM users added at run time log in, survive a
//! restart and are gone once deleted; a consumer re-authenticating every
//! 3 s (KIP-368) keeps consuming.

mod common;

use std::time::{Duration, Instant};

use common::raw::Raw;
use common::*;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice::security::{SaslUser, SecurityProtocol};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";

/// A broker with a PLAINTEXT and a SASL_PLAINTEXT listener and one user.
async fn broker_with(reauth_ms: i64, listen: [&str; 2]) -> TestBroker {
    start_broker_with(|c| {
        c.listeners = vec![
            format!("PLAINTEXT://{}", listen[0]),
            format!("SASL_PLAINTEXT://{}", listen[1]),
        ];
        c.sasl.users = vec![SaslUser {
            name: USER.into(),
            password: PASSWORD.into(),
        }];
        c.sasl.connections_max_reauth_ms = reauth_ms;
    })
    .await
}

async fn broker() -> TestBroker {
    broker_with(0, ["127.0.0.1:0", "127.0.0.1:0"]).await
}

/// rdkafka settings for the SASL listener with `mechanism` and these credentials.
fn sasl_config(bootstrap: &str, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    c
}

/// Produces `values` to partition 0 of `topic` through `config`.
async fn produce_with(config: &ClientConfig, topic: &str, values: &[&str]) -> Result<(), String> {
    let producer: FutureProducer = config
        .clone()
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer");
    for v in values {
        producer
            .send(
                FutureRecord::<(), _>::to(topic).partition(0).payload(*v),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e.to_string())?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mechanism_logs_in_and_reads_back_what_it_wrote() {
    let broker = broker().await;
    let sasl = broker.listener(SecurityProtocol::SaslPlaintext);
    let topic = unique_topic("sasl-mechanisms");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let config = sasl_config(&sasl, mechanism, USER, PASSWORD);
        produce_with(&config, &topic, &[mechanism])
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
    }
    let config = sasl_config(&sasl, "SCRAM-SHA-512", USER, PASSWORD);
    let t = topic.clone();
    let read = blocking(move || {
        let consumer: BaseConsumer = config
            .clone()
            .set("group.id", "sasl-reader")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&t]).expect("subscribe");
        consume_exactly(&consumer, 3, WAIT)
    })
    .await;
    let got: Vec<(i64, &str)> = read.iter().map(|r| (r.offset, r.value_str())).collect();
    assert_eq!(
        got,
        vec![(0, "PLAIN"), (1, "SCRAM-SHA-256"), (2, "SCRAM-SHA-512")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_or_a_request_before_login_writes_nothing_and_closes() {
    let broker = broker().await;
    let sasl = broker.listener(SecurityProtocol::SaslPlaintext);
    let topic = unique_topic("sasl-refused");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let config = sasl_config(&sasl, mechanism, USER, "not-the-password");
        let sent = produce_with(&config, &topic, &["nope"]).await;
        assert!(
            sent.is_err(),
            "{mechanism}: a wrong password must not produce"
        );
    }
    let unknown = sasl_config(&sasl, "SCRAM-SHA-512", "mallory", PASSWORD);
    assert!(produce_with(&unknown, &topic, &["nope"]).await.is_err());
    let plain = consumer(&broker.bootstrap(), &[]);
    let (low, high) = watermarks(&plain, &topic, 0);
    assert_eq!((low, high), (0, 0), "nothing was written");

    // A SASL token that claims 2 GiB closes the connection before anything is read.
    let mut raw = Raw::connect(&sasl).await;
    raw.send_bytes(&0x7fff_fff0u32.to_be_bytes()).await;
    assert!(raw.is_closed().await, "a 2 GiB frame closes the connection");

    // Before login a frame may be at most sasl.max_receive_size (512 KiB).
    let mut raw = Raw::connect(&sasl).await;
    raw.send_bytes(&(600 * 1024u32).to_be_bytes()).await;
    assert!(
        raw.is_closed().await,
        "600 KiB before login closes the connection"
    );

    // A request other than ApiVersions or the SASL ones closes the connection.
    let mut raw = Raw::connect(&sasl).await;
    let (_, payload) = raw.encode(12, &MetadataRequest::default());
    raw.send_frame(&payload).await;
    assert!(
        raw.is_closed().await,
        "Metadata before authentication closes"
    );
}

/// AlterUserScramCredentials v0 upserting `user` with SCRAM-SHA-256 (the
/// client salts the password, as Kafka's admin client does).
fn upsert(user: &str, password: &str) -> AlterUserScramCredentialsRequest {
    let salt = b"a-salt-of-sixteen".to_vec();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, 4096, &mut salted);
    AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.into()))
            .with_mechanism(1)
            .with_iterations(4096)
            .with_salt(salt.into())
            .with_salted_password(salted.to_vec().into()),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scram_user_added_at_run_time_survives_a_restart_until_deleted() {
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        })
        .collect();
    let listen = [
        format!("127.0.0.1:{}", ports[0]),
        format!("127.0.0.1:{}", ports[1]),
    ];
    let mut broker = broker_with(0, [&listen[0], &listen[1]]).await;
    let sasl = broker.listener(SecurityProtocol::SaslPlaintext);
    let topic = unique_topic("sasl-runtime");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let added = raw.call(0, &upsert("bob", "bob-secret")).await;
    assert_eq!(
        added.results[0].error_code, 0,
        "{:?}",
        added.results[0].error_message
    );
    let bad = raw
        .call(
            0,
            &upsert("bob", "x").with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(StrBytes::from_static_str("carol"))
                    .with_mechanism(1)
                    .with_iterations(10)
                    .with_salt(b"s".to_vec().into())
                    .with_salted_password(b"p".to_vec().into()),
            ]),
        )
        .await;
    assert_eq!(
        bad.results[0].error_code, 93,
        "UNACCEPTABLE_CREDENTIAL: too few iterations"
    );

    let bob = sasl_config(&sasl, "SCRAM-SHA-256", "bob", "bob-secret");
    produce_with(&bob, &topic, &["by-bob"])
        .await
        .expect("bob logs in");
    broker.restart().await;
    produce_with(&bob, &topic, &["again"])
        .await
        .expect("bob survives a restart");
    let described = Raw::connect(&broker.bootstrap())
        .await
        .call(
            0,
            &DescribeUserScramCredentialsRequest::default().with_users(None),
        )
        .await;
    let users: Vec<&str> = described.results.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users, vec![USER, "bob"]);
    let stored = std::fs::read_to_string(broker.data_dir().join("scram-credentials.toml"))
        .expect("stored credentials");
    assert!(!stored.contains("bob-secret"), "no password is stored");

    let delete = AlterUserScramCredentialsRequest::default().with_deletions(vec![
        ScramCredentialDeletion::default()
            .with_name(StrBytes::from_static_str("bob"))
            .with_mechanism(1),
    ]);
    let deleted = Raw::connect(&broker.bootstrap())
        .await
        .call(0, &delete)
        .await;
    assert_eq!(deleted.results[0].error_code, 0);
    assert!(
        produce_with(&bob, &topic, &["after"]).await.is_err(),
        "bob is gone"
    );
    let plain = consumer(&broker.bootstrap(), &[]);
    assert_eq!(watermarks(&plain, &topic, 0), (0, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_reauthenticating_every_three_seconds_keeps_consuming() {
    let broker = broker_with(3000, ["127.0.0.1:0", "127.0.0.1:0"]).await;
    let sasl = broker.listener(SecurityProtocol::SaslPlaintext);
    let topic = unique_topic("sasl-reauth");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let config = sasl_config(&sasl, "SCRAM-SHA-256", USER, PASSWORD);
    let (c, t) = (config.clone(), topic.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = c
            .clone()
            .set("group.id", "reauth")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&t]).expect("subscribe");
        consume_exactly(&consumer, 8, Duration::from_secs(60))
    });
    // Eight records over about 8 s: the session is renewed at least twice meanwhile.
    let started = Instant::now();
    for i in 0..8 {
        produce_with(&config, &topic, &[&format!("r{i}")])
            .await
            .expect("produce while re-authenticating");
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let read = reader.await.expect("reader");
    assert!(started.elapsed() > Duration::from_secs(6));
    let values: Vec<&str> = read.iter().map(|r| r.value_str()).collect();
    assert_eq!(values, (0..8).map(|i| format!("r{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn kcat_produces_and_consumes_with_plain() {
    if !tools::present(&tools::KCAT) {
        return;
    }
    let broker = broker().await;
    let sasl = broker.listener(SecurityProtocol::SaslPlaintext);
    let topic = unique_topic("sasl-kcat");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let auth = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-512",
        "-X",
        "sasl.username=alice",
        "-X",
        "sasl.password=alice-secret",
    ];
    let b = sasl.clone();
    let t = topic.clone();
    blocking(move || {
        let mut args = vec!["-b", &b, "-P", "-t", &t, "-p", "0"];
        args.extend_from_slice(&auth);
        kcat(&args, b"one\ntwo\n");
        let mut args = vec![
            "-b",
            &b,
            "-C",
            "-t",
            &t,
            "-p",
            "0",
            "-o",
            "beginning",
            "-c",
            "2",
            "-e",
            "-f",
            "%o %s\n",
        ];
        args.extend_from_slice(&auth);
        let out = kcat(&args, b"");
        assert_eq!(out, "0 one\n1 two\n");
    })
    .await;
}

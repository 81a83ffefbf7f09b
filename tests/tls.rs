//! TLS listeners with certificates the test makes (rcgen): rdkafka over SSL
//! and SASL_SSL (SCRAM), mTLS with a required client certificate whose
//! subject becomes the principal; an untrusted CA, a missing client
//! certificate and garbage instead of a handshake fail, write nothing and
//! leave the broker serving.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice::security::{SaslUser, SecurityProtocol, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// PEM files of a CA, a broker certificate for 127.0.0.1 and localhost, and
/// a client certificate (CN=client-app), all in `dir`, prefixed `name`.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let write = |file: &str, pem: String| {
        let path = dir.join(format!("{name}-{file}"));
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params
        .distinguished_name
        .push(DnType::CommonName, "client-app");
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "Sluice Tests");
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        server_cert: write("server.pem", server_cert.pem()),
        server_key: write("server.key", server_key.serialize_pem()),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
    }
}

async fn tls_broker(pki: &Pki, client_auth: &str) -> TestBroker {
    let tls = TlsConfig {
        cert_file: pki.server_cert.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: Some(pki.ca.clone()),
        client_auth: client_auth.into(),
        handshake_timeout_ms: 1000,
    };
    start_broker_with(|c| {
        c.listeners = vec![
            "PLAINTEXT://127.0.0.1:0".into(),
            "SSL://127.0.0.1:0".into(),
            "SASL_SSL://127.0.0.1:0".into(),
        ];
        c.tls = Some(tls);
        c.http_listen = Some("127.0.0.1:0".into());
        c.sasl.users = vec![SaslUser {
            name: "alice".into(),
            password: "alice-secret".into(),
        }];
    })
    .await
}

fn tls_client(bootstrap: &str, protocol: &str, ca: &Path) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("security.protocol", protocol)
        .set("ssl.ca.location", ca.to_string_lossy().to_string());
    c
}

async fn produce_one(config: &ClientConfig, topic: &str, value: &str) -> Result<i64, String> {
    let producer: FutureProducer = config
        .clone()
        .set("message.timeout.ms", "5000")
        .create()
        .map_err(|e| e.to_string())?;
    producer
        .send(
            FutureRecord::<(), _>::to(topic).partition(0).payload(value),
            Duration::from_secs(10),
        )
        .await
        .map(|d| d.offset)
        .map_err(|(e, _)| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_and_sasl_ssl_carry_records_and_an_untrusted_ca_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "good");
    let other = make_pki(dir.path(), "other");
    let broker = tls_broker(&pki, "none").await;
    let topic = unique_topic("tls");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;

    let ssl = broker.listener(SecurityProtocol::Ssl);
    let over_ssl = tls_client(&ssl, "SSL", &pki.ca);
    // Large enough that the fetch hands the connection a file range, which
    // TLS reads and encrypts in pieces.
    let large = format!("over-ssl-{}", "x".repeat(200_000));
    assert_eq!(produce_one(&over_ssl, &topic, &large).await, Ok(0));
    let sasl_ssl = broker.listener(SecurityProtocol::SaslSsl);
    let mut scram = tls_client(&sasl_ssl, "SASL_SSL", &pki.ca);
    scram
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "alice")
        .set("sasl.password", "alice-secret");
    assert_eq!(produce_one(&scram, &topic, "over-sasl-ssl").await, Ok(1));

    let untrusted = tls_client(&ssl, "SSL", &other.ca);
    assert!(produce_one(&untrusted, &topic, "nope").await.is_err());
    let plain = consumer(&broker.bootstrap(), &[]);
    assert_eq!(
        watermarks(&plain, &topic, 0),
        (0, 2),
        "only the two trusted writes"
    );

    let t = topic.clone();
    let read = blocking(move || {
        let c: rdkafka::consumer::BaseConsumer = over_ssl
            .clone()
            .set("group.id", "tls-reader")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        rdkafka::consumer::Consumer::subscribe(&c, &[&t]).expect("subscribe");
        consume_exactly(&c, 2, WAIT)
    })
    .await;
    let values: Vec<&str> = read.iter().map(|r| r.value_str()).collect();
    assert_eq!(values, vec![large.as_str(), "over-sasl-ssl"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_requires_a_client_certificate_and_names_the_principal_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "mtls");
    let broker = tls_broker(&pki, "required").await;
    let topic = unique_topic("mtls");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let ssl = broker.listener(SecurityProtocol::Ssl);

    let anonymous = tls_client(&ssl, "SSL", &pki.ca);
    assert!(produce_one(&anonymous, &topic, "no-cert").await.is_err());
    let mut with_cert = tls_client(&ssl, "SSL", &pki.ca);
    with_cert
        .set(
            "ssl.certificate.location",
            pki.client_cert.to_string_lossy().to_string(),
        )
        .set(
            "ssl.key.location",
            pki.client_key.to_string_lossy().to_string(),
        );
    let producer: FutureProducer = with_cert.create().expect("producer");
    let sent = producer
        .send(
            FutureRecord::<(), _>::to(&topic)
                .partition(0)
                .payload("with-cert"),
            Duration::from_secs(10),
        )
        .await
        .map(|d| d.offset)
        .map_err(|(e, _)| e.to_string());
    assert_eq!(sent, Ok(0));

    // The status page's client list shows who the certificate says it is.
    let http = broker.http_addr().expect("http");
    let clients = http_get(http, "/api/v1/clients").await;
    assert!(
        clients.contains("User:O=Sluice Tests,CN=client-app"),
        "{clients}"
    );
    drop(producer);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_instead_of_a_handshake_closes_only_that_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "garbage");
    let broker = tls_broker(&pki, "none").await;
    let ssl = broker.listener(SecurityProtocol::Ssl);
    let mut s = tokio::net::TcpStream::connect(&ssl).await.expect("connect");
    s.write_all(&[0u8, 0, 0, 20, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0])
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("closed in time");
    // A TLS alert or nothing, then the close; never a Kafka answer.
    assert!(read.is_ok_and(|n| n < 8), "{buf:?}");
    let topic = unique_topic("tls-after-garbage");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let over_ssl = tls_client(&ssl, "SSL", &pki.ca);
    assert_eq!(produce_one(&over_ssl, &topic, "still-serving").await, Ok(0));

    // A client that connects and then says nothing is dropped after the
    // handshake limit (1 s here).
    let mut silent = tokio::net::TcpStream::connect(&ssl).await.expect("connect");
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

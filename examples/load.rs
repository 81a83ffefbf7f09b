//! Load generator: produce and consume with rdkafka, report messages/s, MB/s
//! and end-to-end latency.
//!
//! ```text
//! cargo run --release --example load                      # starts a broker in-process
//! cargo run --release --example load -- 127.0.0.1:9092    # against a running broker
//! LOAD_MESSAGES=200000 LOAD_SIZE=1024 LOAD_RATE=10000 LOAD_SECONDS=5 cargo run --release --example load
//! LOAD_PRODUCERS=16 LOAD_FLUSH=always cargo run --release --example load   # durable mode, group commit
//! LOAD_MODE=idempotent cargo run --release --example load                 # enable.idempotence=true
//! LOAD_MODE=transactional LOAD_TXN_EVERY=100 cargo run --release --example load   # commit every 100
//! LOAD_DEBUG=eos,protocol cargo run --release --example load   # librdkafka's debug log
//! LOAD_HTTP=1 cargo run --release --example load   # with the HTTP server, scraped every second
//! LOAD_SECURITY=SASL_SSL cargo run --release --example load   # TLS + SCRAM-SHA-256 (or SSL, SASL_PLAINTEXT)
//! ```

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What Prometheus would do: GET /metrics once a second.
async fn scrape_every_second(http: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Ok(mut s) = tokio::net::TcpStream::connect(http).await {
            let _ = s
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        }
    }
}

/// Extra client settings for LOAD_SECURITY (security protocol, CA, SASL login).
static SECURITY: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    for (key, value) in SECURITY.get().into_iter().flatten() {
        c.set(*key, value);
    }
    // librdkafka's own debug contexts, e.g. LOAD_DEBUG=eos,protocol.
    if let Ok(contexts) = std::env::var("LOAD_DEBUG") {
        c.set("debug", contexts);
    }
    c
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// How the throughput producers write (`LOAD_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Idempotent,
    /// Transactions of this many messages (`LOAD_TXN_EVERY`).
    Transactional(u64),
}

fn mode() -> Mode {
    match std::env::var("LOAD_MODE").as_deref() {
        Ok("idempotent") => Mode::Idempotent,
        Ok("transactional") => Mode::Transactional(env("LOAD_TXN_EVERY", 100).max(1)),
        _ => Mode::Plain,
    }
}

/// A BaseProducer: delivery reports are served by the sending thread, so
/// commit_transaction does not wait for another thread's poll interval.
fn producer_with(bootstrap: &str, mode: Mode, id: usize) -> BaseProducer {
    let mut config = client(bootstrap);
    config
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("batch.size", "1000000");
    match mode {
        Mode::Plain => {}
        Mode::Idempotent => {
            config.set("enable.idempotence", "true");
        }
        Mode::Transactional(_) => {
            config.set("transactional.id", format!("load-{}-{id}", now_micros()));
        }
    }
    let producer: BaseProducer = config.create().expect("producer");
    if let Mode::Transactional(_) = mode {
        producer
            .init_transactions(Duration::from_secs(30))
            .expect("init_transactions");
    }
    producer
}

fn consumer(bootstrap: &str, topic: &str, offset: Offset) -> BaseConsumer {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "load")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, offset).expect("offset");
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Waits for every delivery report before a commit: the rdkafka crate's
/// `BaseProducer::flush` (which `commit_transaction` calls) polls in steps
/// of up to 100 ms, so a commit right after the last send would wait most
/// of that step although the broker answered long before.
fn settle(producer: &BaseProducer) {
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(1));
    }
}

fn produce_all(bootstrap: &str, topic: &str, count: u64, payload: &[u8], id: usize) {
    let mode = mode();
    let producer = producer_with(bootstrap, mode, id);
    let every = match mode {
        Mode::Transactional(n) => n,
        _ => u64::MAX,
    };
    let timeout = Duration::from_secs(60);
    for i in 0..count {
        if every != u64::MAX && i % every == 0 {
            if i > 0 {
                settle(&producer);
                producer.commit_transaction(timeout).expect("commit");
            }
            producer.begin_transaction().expect("begin");
        }
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    if every != u64::MAX {
        settle(&producer);
        producer.commit_transaction(timeout).expect("commit");
    }
    producer.flush(timeout).expect("flush");
}

fn throughput(bootstrap: &str, topic: &str, count: u64, size: usize, producers: u64) {
    let payload = vec![b'x'; size];
    let start = Instant::now();
    std::thread::scope(|scope| {
        for id in 0..producers as usize {
            let payload = &payload;
            scope.spawn(move || produce_all(bootstrap, topic, count / producers, payload, id));
        }
    });
    let count = count / producers * producers;
    report(
        &format!("produce ({producers} producers, {:?})", mode()),
        count,
        size,
        start.elapsed(),
    );

    let consumer = consumer(bootstrap, topic, Offset::Beginning);
    let start = Instant::now();
    let mut seen = 0u64;
    while seen < count {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => seen += 1,
            Some(Err(e)) => panic!("consume: {e}"),
            None => panic!("consume stalled at {seen} of {count}"),
        }
    }
    report("consume", count, size, start.elapsed());
}

fn report(what: &str, count: u64, size: usize, took: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "{what:24} {count} x {size} B in {secs:.2} s: {:.0} msg/s, {:.1} MB/s",
        count as f64 / secs,
        (count as f64 * size as f64) / secs / 1e6
    );
}

fn latency(bootstrap: &str, topic: &str, rate: u64, seconds: u64) {
    let producer = client(bootstrap)
        .set("linger.ms", "0")
        .create::<ThreadedProducer<_>>()
        .expect("producer");
    // Warm up: the topic exists and the consumer has fetched from it before timing starts.
    let warm_up = 0u64.to_be_bytes();
    let _ = producer.send(BaseRecord::<(), [u8]>::to(topic).payload(&warm_up[..]));
    producer.flush(Duration::from_secs(10)).expect("warm-up");
    let consumer = consumer(bootstrap, topic, Offset::Beginning);
    match consumer.poll(Duration::from_secs(10)) {
        Some(Ok(_)) => {}
        other => panic!("warm-up message not consumed: {other:?}"),
    }
    let total = rate * seconds;
    let sender = std::thread::spawn({
        let topic = topic.to_string();
        move || {
            let start = Instant::now();
            for i in 0..total {
                let due = start + Duration::from_micros(i * 1_000_000 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let stamp = now_micros().to_be_bytes();
                let _ = producer.send(BaseRecord::<(), [u8]>::to(&topic).payload(&stamp[..]));
            }
            producer.flush(Duration::from_secs(30)).expect("flush");
        }
    });
    let mut samples = Vec::with_capacity(total as usize);
    while (samples.len() as u64) < total {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                let sent = m
                    .payload()
                    .and_then(|p| p.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                samples.push(now_micros().saturating_sub(sent));
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => break,
        }
    }
    sender.join().expect("sender");
    samples.sort_unstable();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "latency  {} messages at {rate}/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        pct(0.50) as f64 / 1e3,
        pct(0.99) as f64 / 1e3,
        samples.last().copied().unwrap_or(0) as f64 / 1e3
    );
}

#[tokio::main]
async fn main() {
    let count = env("LOAD_MESSAGES", 200_000);
    let size = env("LOAD_SIZE", 1024) as usize;
    let rate = env("LOAD_RATE", 10_000);
    let seconds = env("LOAD_SECONDS", 5);
    let producers = env("LOAD_PRODUCERS", 1).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (bootstrap, broker) = match std::env::args().nth(1) {
        Some(addr) => (addr, None),
        None => {
            let flush = match std::env::var("LOAD_FLUSH").as_deref() {
                Ok("always") => sluice::config::FlushMode::Always,
                _ => sluice::config::FlushMode::Os,
            };
            let mut config = sluice::Config {
                listen: "127.0.0.1:0".into(),
                data_dir: dir.path().to_path_buf(),
                flush,
                // LOAD_HTTP=1: with the HTTP server (and a scraper) running.
                http_listen: std::env::var("LOAD_HTTP")
                    .ok()
                    .filter(|v| !v.is_empty() && v != "0")
                    .map(|_| "127.0.0.1:0".into()),
                ..Default::default()
            };
            let security = std::env::var("LOAD_SECURITY").unwrap_or_default();
            if !security.is_empty() && security != "PLAINTEXT" {
                secure(&mut config, &security, dir.path());
            }
            let broker = sluice::Broker::start(config).await.expect("broker");
            let bootstrap = broker
                .listeners()
                .last()
                .map_or_else(|| broker.bootstrap(), |(_, addr)| addr.to_string());
            if let Some(http) = broker.http_addr() {
                tokio::spawn(scrape_every_second(http));
            }
            (bootstrap, Some(broker))
        }
    };
    let run = format!("load-{}", now_micros());
    let (b, t) = (bootstrap.clone(), format!("{run}-throughput"));
    tokio::task::spawn_blocking(move || throughput(&b, &t, count, size, producers))
        .await
        .expect("throughput");
    let (b, t) = (bootstrap.clone(), format!("{run}-latency"));
    tokio::task::spawn_blocking(move || latency(&b, &t, rate, seconds))
        .await
        .expect("latency");
    if let Some(broker) = broker {
        broker.shutdown().await.expect("shutdown");
    }
}

/// LOAD_SECURITY: a listener of that protocol (after a PLAINTEXT one), a
/// throwaway CA and broker certificate, and a SCRAM-SHA-256 user; the clients
/// connect to it.
fn secure(config: &mut sluice::Config, protocol: &str, dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // The CA and the broker need distinct names, or the broker's certificate
    // looks self-signed to OpenSSL.
    ca.distinguished_name.push(DnType::CommonName, "load CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params
        .signed_by(&key, &Issuer::new(ca, ca_key))
        .expect("cert");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let ca_file = write("ca.pem", ca_cert.pem());
    config.tls = Some(sluice::security::TlsConfig {
        cert_file: write("server.pem", cert.pem()),
        key_file: write("server.key", key.serialize_pem()),
        client_ca_file: None,
        client_auth: "none".into(),
        handshake_timeout_ms: sluice::security::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS,
    });
    config.listeners = vec![
        "PLAINTEXT://127.0.0.1:0".into(),
        format!("{protocol}://127.0.0.1:0"),
    ];
    config.sasl.users = vec![sluice::security::SaslUser {
        name: "load".into(),
        password: "load-secret".into(),
    }];
    let mut settings = vec![("security.protocol", protocol.to_string())];
    if protocol.contains("SSL") {
        settings.push(("ssl.ca.location", ca_file.to_string_lossy().to_string()));
    }
    if protocol.starts_with("SASL") {
        settings.push(("sasl.mechanism", "SCRAM-SHA-256".into()));
        settings.push(("sasl.username", "load".into()));
        settings.push(("sasl.password", "load-secret".into()));
    }
    let _ = SECURITY.set(settings);
}

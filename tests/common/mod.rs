//! Shared helpers for the integration tests: an in-process broker on its own
//! runtime, rdkafka clients with short timeouts, produce/consume helpers that
//! fail with a clear message instead of hanging, and kcat / binary runners.
//! External tools (kcat, kafka-python, root) are found or provisioned in [`tools`].
//!
//! The broker runs on a runtime of its own, so tests may call blocking client
//! APIs (consumer polls, watermarks) directly from their async body.
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod raw;
pub(crate) mod rng;
pub(crate) mod tools;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sluice::storage::{Disk, RealDisk};
use sluice::{Broker, Config};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// How long any single helper may wait before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Sends test-run tracing output to the test harness (captured unless a test fails).
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sluice=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// A topic name no other test uses: `<prefix>-<pid>-<n>`.
pub(crate) fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An in-process broker in a temporary directory, running on a runtime of its
/// own so that blocking client calls in the test never starve it.
#[derive(Debug)]
pub(crate) struct TestBroker {
    broker: Option<Broker>,
    runtime: Option<Runtime>,
    config: Config,
    dir: TempDir,
    disk: Arc<dyn Disk>,
}

/// A broker with the default configuration (listening on 127.0.0.1:0).
pub(crate) async fn start_broker() -> TestBroker {
    start_broker_with(|_| {}).await
}

/// A broker whose configuration `adjust` may change (data_dir and listen are preset).
pub(crate) async fn start_broker_with(adjust: impl FnOnce(&mut Config)) -> TestBroker {
    start_broker_on(Arc::new(RealDisk), adjust).await
}

/// [`start_broker_with`] with the partition logs on `disk` (a `FaultyDisk`).
pub(crate) async fn start_broker_on(
    disk: Arc<dyn Disk>,
    adjust: impl FnOnce(&mut Config),
) -> TestBroker {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    let runtime = new_runtime();
    let broker = start_on(&runtime, config.clone(), disk.clone()).await;
    TestBroker {
        broker: Some(broker),
        runtime: Some(runtime),
        config,
        dir,
        disk,
    }
}

async fn start_on(runtime: &Runtime, config: Config, disk: Arc<dyn Disk>) -> Broker {
    runtime
        .spawn(Broker::start_on(config, disk))
        .await
        .expect("Broker::start panicked")
        .expect("Broker::start failed")
}

impl TestBroker {
    fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("broker is running")
    }

    /// `host:port` of the first listener of `protocol`.
    pub(crate) fn listener(&self, protocol: sluice::security::SecurityProtocol) -> String {
        self.broker()
            .listeners()
            .iter()
            .find(|(p, _)| *p == protocol)
            .map(|(_, addr)| addr.to_string())
            .expect("a listener of that protocol")
    }

    /// `host:port` for `bootstrap.servers`.
    pub(crate) fn bootstrap(&self) -> String {
        self.broker().bootstrap()
    }

    /// The HTTP server's address, when the config asked for one.
    pub(crate) fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.broker().http_addr()
    }

    /// The broker's data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker cleanly (Broker::shutdown must succeed) and keeps the directory.
    pub(crate) async fn stop(&mut self) {
        let broker = self.broker.take().expect("broker is running");
        let runtime = self.runtime.as_ref().expect("runtime");
        runtime
            .spawn(broker.shutdown())
            .await
            .expect("Broker::shutdown panicked")
            .expect("Broker::shutdown failed");
    }

    /// Drops the broker without [`Broker::shutdown`]: its runtime is torn down
    /// (every task dropped), so the next start finds logs not marked clean.
    pub(crate) async fn kill(&mut self) {
        self.broker.take();
        if let Some(runtime) = self.runtime.take() {
            blocking(move || runtime.shutdown_timeout(Duration::from_secs(10))).await;
        }
        self.runtime = Some(new_runtime());
    }

    /// Starts the broker again on the same directory (a new port: make new clients).
    pub(crate) async fn start_again(&mut self) {
        assert!(self.broker.is_none(), "stop() or kill() the broker first");
        let runtime = self.runtime.as_ref().expect("runtime");
        self.broker = Some(start_on(runtime, self.config.clone(), self.disk.clone()).await);
    }

    /// A clean stop followed by a start on the same directory.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }
}

fn new_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sluice-test-broker")
        .enable_all()
        .build()
        .expect("broker runtime")
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.broker.take();
        if let Some(runtime) = self.runtime.take() {
            // Allowed inside an async test, unlike dropping a runtime.
            runtime.shutdown_background();
        }
    }
}

/// Settings every client shares: IPv4, short timeouts.
pub(crate) fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    c
}

/// Producer settings: acks=all, short delivery timeout, small linger.
pub(crate) fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("message.timeout.ms", "15000")
        .set("request.timeout.ms", "10000")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000");
    c
}

/// A FutureProducer with [`producer_config`] plus `extra` settings.
pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = producer_config(bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// Consumer settings for manual assignment (no group protocol is used: the
/// group.id is only there because librdkafka requires one).
pub(crate) fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("group.id", "sluice-tests-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    c
}

/// A BaseConsumer with [`consumer_config`] plus `extra` settings.
pub(crate) fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = consumer_config(bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

/// An AdminClient with [`client_config`].
pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("admin client")
}

/// Admin options with a bounded operation time.
pub(crate) fn admin_opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(10)))
}

/// Creates `name` with `partitions` partitions and `configs`; panics on any error.
pub(crate) async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin(bootstrap)
        .create_topics([&topic], &admin_opts())
        .await
        .expect("CreateTopics request");
    assert_eq!(results, vec![Ok(name.to_string())], "creating topic {name}");
}

/// Assigns `consumer` to `partitions` of `topic`, each starting at `offset`.
pub(crate) fn assign(consumer: &BaseConsumer, topic: &str, partitions: &[i32], offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, offset)
            .expect("partition offset");
    }
    consumer.assign(&tpl).expect("assign");
}

/// One record as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: Timestamp,
}

impl Rec {
    pub(crate) fn from_message(m: &BorrowedMessage<'_>) -> Rec {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Rec {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp(),
        }
    }

    /// The value as UTF-8 (for readable assertions).
    pub(crate) fn value_str(&self) -> &str {
        std::str::from_utf8(self.value.as_deref().unwrap_or_default()).expect("utf-8 value")
    }
}

/// Polls until exactly `n` records have arrived (or `within` passes, which
/// fails the test), then checks that nothing more arrives in a short grace.
pub(crate) fn consume_exactly(consumer: &BaseConsumer, n: usize, within: Duration) -> Vec<Rec> {
    let records = consume_at_least(consumer, n, within);
    if let Some(extra) = consumer.poll(Duration::from_millis(300)) {
        let extra = extra.map(|m| Rec::from_message(&m));
        panic!("expected exactly {n} records, got one more: {extra:?}");
    }
    records
}

/// Polls until `n` records have arrived; fails after `within` with what was seen.
pub(crate) fn consume_at_least(consumer: &BaseConsumer, n: usize, within: Duration) -> Vec<Rec> {
    let deadline = Instant::now() + within;
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {within:?}: got {} of {n} records; last: {:?}",
            records.len(),
            records.last()
        );
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) => records.push(Rec::from_message(&m)),
            Some(Err(e)) => panic!("consumer error after {} records: {e}", records.len()),
        }
    }
    records
}

/// Runs a blocking closure on a blocking thread, for work that must overlap with the test body.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

/// Sends `count` records `(key-i, value-i)` to one partition and waits for every
/// acknowledgement; returns the offsets in send order.
pub(crate) async fn produce_n(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    count: usize,
) -> Vec<i64> {
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(&value);
        pending.push(send_or_wait(producer, record));
    }
    let mut offsets = Vec::with_capacity(count);
    for (i, delivery) in pending.into_iter().enumerate() {
        let delivery = await_delivery(delivery).await;
        let (p, offset) = delivery.unwrap_or_else(|e| panic!("record {i} was not delivered: {e}"));
        assert_eq!(p, partition, "record {i} landed in the wrong partition");
        offsets.push(offset);
    }
    offsets
}

/// A pending acknowledgement.
pub(crate) type Pending = rdkafka::producer::DeliveryFuture;

/// Enqueues `record`, flushing the producer's queue if it is full.
pub(crate) fn send_or_wait<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> Pending
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match producer.send_result(record) {
            Ok(pending) => return pending,
            Err((e, r)) => {
                assert!(Instant::now() < deadline, "producer queue stayed full: {e}");
                producer.poll(Duration::from_millis(10));
                record = r;
            }
        }
    }
}

/// Waits (bounded) for one acknowledgement: `(partition, offset)` or the error text.
pub(crate) async fn await_delivery(pending: Pending) -> Result<(i32, i64), String> {
    match tokio::time::timeout(WAIT, pending).await {
        Err(_) => Err(format!("no acknowledgement within {WAIT:?}")),
        Ok(Err(_)) => Err("the producer dropped the delivery".into()),
        Ok(Ok(Ok(d))) => Ok((d.partition, d.offset)),
        Ok(Ok(Err((e, _)))) => Err(e.to_string()),
    }
}

/// `(low, high)` watermarks of one partition.
pub(crate) fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("ListOffsets for {topic}/{partition}: {e}"))
}

/// Headers from `(name, value)` pairs.
pub(crate) fn headers(pairs: &[(&str, Option<&[u8]>)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header { key, value: *value })
    })
}

/// Runs kcat with `args` (plus IPv4), feeding `stdin`; returns stdout, panicking
/// with stderr on a non-zero exit or after [`WAIT`]. Callers first check
/// `tools::present(&tools::KCAT)` and skip when it is missing.
pub(crate) fn kcat(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .args(["-X", "broker.address.family=v4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat must be installed (apt-get install kcat)");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = wait_with_timeout(child, WAIT, &format!("kcat {args:?}"));
    let _ = writer.join();
    let stdout = String::from_utf8(output.stdout).expect("kcat output is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kcat {args:?} failed: {}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Waits for a child's output, killing it after `limit`.
pub(crate) fn wait_with_timeout(child: Child, limit: Duration, what: &str) -> std::process::Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("waiting for a child process"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// The `sluice` binary running as a child process.
#[derive(Debug)]
pub(crate) struct BrokerProcess {
    child: Child,
    pub(crate) bootstrap: String,
    /// Every stdout/stderr line so far, for failure messages.
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl BrokerProcess {
    /// Starts `sluice --listen 127.0.0.1:0 --data-dir <dir> <extra>` and waits
    /// (bounded) for its "sluice is ready addr=..." line.
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> BrokerProcess {
        BrokerProcess::try_start_on("127.0.0.1:0", data_dir, extra)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `sluice --listen <listen> --data-dir <dir> <extra>` and waits
    /// (bounded) for its "sluice is ready addr=..." line. An exit before that
    /// (e.g. the address is still in use) or no ready line within [`WAIT`] is
    /// an error carrying the broker's output; the process is gone by then.
    pub(crate) fn try_start_on(
        listen: &str,
        data_dir: &Path,
        extra: &[&str],
    ) -> Result<BrokerProcess, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sluice binary");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        // Keep draining both pipes for the child's whole life so it never blocks on a write.
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let mut drains = Vec::new();
        for (pipe, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let lines = lines.clone();
            drains.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let line = strip_ansi(&line);
                    // Recorded before it is announced: whoever waits for a
                    // line finds it in `output()` too.
                    lines
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(line.clone());
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            }));
        }
        let deadline = Instant::now() + WAIT;
        let bootstrap = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("sluice is ready") => {
                    break ready_addr(&line).unwrap_or_else(|| panic!("no addr= in {line:?}"));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait();
                    // The pipes are closed now: collect the rest of the output.
                    for d in drains {
                        let _ = d.join();
                    }
                    let seen = lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                    return Err(match e {
                        mpsc::RecvTimeoutError::Timeout => {
                            format!("sluice did not become ready within {WAIT:?}; output:\n{seen}")
                        }
                        mpsc::RecvTimeoutError::Disconnected => {
                            format!(
                                "sluice exited ({status:?}) before it was ready; output:\n{seen}"
                            )
                        }
                    });
                }
            }
        };
        Ok(BrokerProcess {
            child,
            bootstrap,
            lines,
        })
    }

    /// SIGTERM, then waits (bounded) for a successful exit.
    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit within {WAIT:?} of SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "sluice exited with {status} after SIGTERM:\n{}",
            self.output()
        );
    }

    /// SIGKILL: the process dies without any cleanup.
    pub(crate) fn crash(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// The process id, e.g. to read `/proc/<pid>/status`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the broker printed so far.
    pub(crate) fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Removes ANSI colour sequences (ESC [ ... letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `127.0.0.1:PORT` from a line holding `addr=127.0.0.1:PORT`.
fn ready_addr(line: &str) -> Option<String> {
    let rest = &line[line.find("addr=")? + "addr=".len()..];
    let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    addr.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.to_string())
}

/// Runs a future to completion on a fresh current-thread runtime (for sync code).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Groups records by partition, keeping their order.
pub(crate) fn by_partition(records: &[Rec]) -> BTreeMap<i32, Vec<Rec>> {
    let mut map: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    for r in records {
        map.entry(r.partition).or_default().push(r.clone());
    }
    map
}

/// A scratch directory that outlives a broker process.
pub(crate) fn scratch_dir() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Produces three records with rdkafka and reads them back at their offsets.
/// Transient connection errors are tolerated: these brokers close connections on purpose.
pub(crate) async fn a_real_client_still_works(bootstrap: &str) {
    let topic = unique_topic("still-works");
    create_topic(bootstrap, &topic, 1, &[]).await;
    let offsets = produce_n(&producer(bootstrap, &[]), &topic, 0, 3).await;
    assert_eq!(offsets, vec![0, 1, 2]);
    let (bootstrap, topic) = (bootstrap.to_string(), topic.clone());
    let offsets = blocking(move || {
        let consumer = consumer(&bootstrap, &[]);
        assign(&consumer, &topic, &[0], Offset::Beginning);
        let deadline = Instant::now() + WAIT;
        let mut offsets = Vec::new();
        while offsets.len() < 3 && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                offsets.push(Message::offset(&m));
            }
        }
        offsets
    })
    .await;
    assert_eq!(offsets, vec![0, 1, 2]);
}

/// Every record of partition 0 of `topic`, read from the beginning until the
/// consumer reports the partition's end (at most [`WAIT`]).
pub(crate) fn read_partition_to_end(bootstrap: &str, topic: &str) -> Vec<Rec> {
    let consumer = consumer(bootstrap, &[("enable.partition.eof", "true")]);
    assign(&consumer, topic, &[0], Offset::Beginning);
    let deadline = Instant::now() + WAIT;
    let mut records = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {topic} did not reach its end"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => records.push(Rec::from_message(&m)),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return records,
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
}

/// Produces `values` to partition 0 of `topic`, then has a member of
/// `group` consume them all and commit offset `commit_at`; returns the
/// member, still in the group.
pub(crate) async fn produce_and_commit(
    bootstrap: &str,
    (topic, group): (&str, &str),
    values: usize,
    commit_at: i64,
) -> BaseConsumer {
    let producer = producer(bootstrap, &[]);
    for i in 0..values {
        let value = format!("v{i}");
        let record = FutureRecord::<str, str>::to(topic)
            .partition(0)
            .payload(&value);
        await_delivery(send_or_wait(&producer, record))
            .await
            .expect("produce");
    }
    let (b, t, g) = (bootstrap.to_string(), topic.to_string(), group.to_string());
    blocking(move || {
        let consumer: BaseConsumer = consumer_config(&b)
            .set("group.id", &g)
            .create()
            .expect("consumer");
        consumer.subscribe(&[&t]).expect("subscribe");
        assert_eq!(consume_at_least(&consumer, values, WAIT).len(), values);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&t, 0, Offset::Offset(commit_at))
            .expect("offset");
        consumer
            .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        consumer
    })
    .await
}

/// (offset, value) of exactly `n` records of partition 0 of `topic`, read
/// from the beginning with `isolation` (`read_committed` or `read_uncommitted`).
pub(crate) fn read_values(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    n: usize,
) -> Vec<(i64, String)> {
    let consumer = consumer(bootstrap, &[("isolation.level", isolation)]);
    assign(&consumer, topic, &[0], Offset::Beginning);
    consume_exactly(&consumer, n, WAIT)
        .iter()
        .map(|r| (r.offset, r.value_str().to_string()))
        .collect()
}

/// Fails the test with `what` unless `check` turns true within `within`.
pub(crate) fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every (partition, offset) of `partitions` partitions holding `per_partition` records each.
pub(crate) fn all_offsets(
    partitions: i32,
    per_partition: i64,
) -> std::collections::BTreeSet<(i32, i64)> {
    (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

/// A PLAINTEXT and a SASL_PLAINTEXT listener (both on free ports), with
/// `users` who log in with the password `<name>-secret`.
pub(crate) fn sasl_listener(config: &mut Config, users: &[&str]) {
    config.listeners = vec![
        "PLAINTEXT://127.0.0.1:0".into(),
        "SASL_PLAINTEXT://127.0.0.1:0".into(),
    ];
    config.sasl.users = users
        .iter()
        .map(|name| sluice::security::SaslUser {
            name: name.to_string(),
            password: format!("{name}-secret"),
        })
        .collect();
}

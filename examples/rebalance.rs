//! Rebalance time: N rdkafka consumers subscribe to one topic at once, and
//! the time from the last subscribe until the group is stable (the members'
//! assignments cover every partition exactly once) is reported, for the
//! classic protocol and for the consumer protocol of KIP-848, each with its
//! default timings (classic: librdkafka's eager range assignor and 3 s
//! heartbeats; consumer: the broker's uniform assignor and 5 s heartbeats).
//!
//! ```text
//! cargo run --release --example rebalance                  # 2 and 20 members, 60 partitions
//! REBALANCE_MEMBERS=2,5,20 REBALANCE_PARTITIONS=120 cargo run --release --example rebalance
//! REBALANCE_HEARTBEAT_MS=500 cargo run --release --example rebalance   # both protocols heartbeat every 500 ms
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// One consumer's current assignment, updated by its polling thread.
type Owned = Arc<Mutex<BTreeSet<i32>>>;

/// How one member is started: where, which group and topic, which protocol,
/// and the classic protocol's heartbeat interval (the consumer protocol's is the broker's).
#[derive(Clone, Copy)]
struct Start<'a> {
    bootstrap: &'a str,
    group: &'a str,
    topic: &'a str,
    protocol: &'a str,
    heartbeat_ms: Option<i32>,
}

fn start_member(s: Start<'_>, stop: &Arc<AtomicBool>) -> (Owned, std::thread::JoinHandle<()>) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", s.bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", s.group)
        .set("group.protocol", s.protocol)
        .set("enable.auto.commit", "false");
    if let (Some(ms), "classic") = (s.heartbeat_ms, s.protocol) {
        config.set("heartbeat.interval.ms", ms.to_string());
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[s.topic]).expect("subscribe");
    let owned = Owned::default();
    let (owned2, stop2) = (owned.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let _ = consumer.poll(Duration::from_millis(10));
            let now: BTreeSet<i32> = consumer
                .assignment()
                .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                .unwrap_or_default();
            *owned2.lock().expect("owned") = now;
        }
    });
    (owned, thread)
}

/// Every member owns something, and together they own each partition once.
fn stable(members: &[Owned], partitions: i32) -> bool {
    let sets: Vec<BTreeSet<i32>> = members
        .iter()
        .map(|m| m.lock().expect("owned").clone())
        .collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == partitions as usize && union.len() == total
}

fn measure(start: Start<'_>, members: usize, partitions: i32) -> Duration {
    let group = format!("{}-{}-{members}", start.topic, start.protocol);
    let start = Start {
        group: &group,
        ..start
    };
    let protocol = start.protocol;
    let stop = Arc::new(AtomicBool::new(false));
    let mut owned = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..members {
        let (o, t) = start_member(start, &stop);
        owned.push(o);
        threads.push(t);
    }
    let started = Instant::now();
    while !stable(&owned, partitions) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{protocol}/{members}: no stable group in 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    took
}

#[tokio::main]
async fn main() {
    let members: Vec<usize> = std::env::var("REBALANCE_MEMBERS")
        .unwrap_or_else(|_| "2,20".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let partitions: i32 = std::env::var("REBALANCE_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let heartbeat_ms: Option<i32> = std::env::var("REBALANCE_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = sluice::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    if let Some(ms) = heartbeat_ms {
        config.group.consumer_heartbeat_interval_ms = ms;
    }
    let broker = sluice::Broker::start(config).await.expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = format!("rebalance-{}", std::process::id());
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    println!("members  protocol  time to a stable group ({partitions} partitions)");
    for &n in &members {
        for protocol in ["classic", "consumer"] {
            let (b, t) = (bootstrap.clone(), topic.clone());
            let took = tokio::task::spawn_blocking(move || {
                let start = Start {
                    bootstrap: &b,
                    group: "",
                    topic: &t,
                    protocol,
                    heartbeat_ms,
                };
                measure(start, n, partitions)
            })
            .await
            .expect("measure");
            println!(
                "{n:>7}  {protocol:<8}  {:>8.0} ms",
                took.as_secs_f64() * 1e3
            );
        }
    }
    broker.shutdown().await.expect("shutdown");
}

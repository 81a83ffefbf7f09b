//! Scale: many partitions, many idle long-polling consumers, a large log.
//! Starts the `sluice` binary (built with `cargo build --release`) on a
//! fresh data directory, then reports, one figure per line:
//!
//! - creating `SCALE_TOPICS` topics of `SCALE_PARTITIONS` partitions with
//!   librdkafka's AdminClient, 100 topics per request, under the broker's
//!   open-file limit;
//! - Metadata for every topic (librdkafka, the fastest of 5);
//! - the broker's CPU while `SCALE_IDLE` connections long-poll empty
//!   partitions (Fetch v16 by topic id, max_wait 500 ms, as librdkafka's
//!   consumers at the end of a topic do), and its resident memory then;
//! - after a clean stop, with a partition holding `SCALE_BIG_GB` GiB of
//!   sparse segments added: the time until the restarted broker accepts a
//!   connection and until it answers Metadata for every topic.
//!
//! ```text
//! cargo build --release && cargo run --release --example scale
//! SCALE_TOPICS=100 SCALE_IDLE=100 cargo run --release --example scale
//! SCALE_DIR=/tmp/scale cargo run --release --example scale   # keeps the data
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[path = "support/broker.rs"]
mod broker;
#[path = "scale/idle.rs"]
mod idle;

use broker::{Broker, cpu};

use idle::{ANSWERS, idle_consumer};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The broker's resident memory in KiB: all of it, and its anonymous part.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn topic_name(i: u64) -> String {
    format!("scale-{i:05}")
}

async fn create_topics(bootstrap: &str, topics: u64, partitions: i32) -> (u64, Option<String>) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let mut created = 0;
    for first in (0..topics).step_by(100) {
        let names: Vec<String> = (first..(first + 100).min(topics)).map(topic_name).collect();
        let batch: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
            .collect();
        let results = admin
            .create_topics(&batch, &options)
            .await
            .expect("CreateTopics");
        for result in results {
            match result {
                Ok(_) => created += 1,
                Err((name, code)) => return (created, Some(format!("{name}: {code}"))),
            }
        }
    }
    (created, None)
}

/// The first and the fastest of five Metadata requests for every topic, and
/// the topic count.
fn metadata_all(bootstrap: &str) -> (Duration, Duration, usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(30))
            .expect("Metadata");
        times.push(started.elapsed());
        count = metadata.topics().len();
    }
    (times[0], *times.iter().min().expect("five"), count)
}

/// One record batch whose single value is `value_len` zero bytes, as Kafka
/// stores it (magic 2, CRC-32C over everything after the CRC field).
fn batch(base_offset: i64, value_len: usize) -> (Vec<u8>, usize) {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    let mut value_len_bytes = Vec::new();
    varint(&mut value_len_bytes, value_len as i64);
    // attributes, timestamp delta, offset delta, key length -1, value length, value, no headers
    let body_len = 1 + 1 + 1 + 1 + value_len_bytes.len() + value_len + 1;
    let mut record = Vec::new();
    varint(&mut record, body_len as i64);
    record.extend_from_slice(&[0, 0, 0]);
    varint(&mut record, -1);
    record.extend_from_slice(&value_len_bytes);
    let total = 61 + record.len() + value_len + 1;
    let mut head = Vec::with_capacity(61 + record.len());
    head.extend_from_slice(&base_offset.to_be_bytes());
    head.extend_from_slice(&((total - 12) as i32).to_be_bytes());
    head.extend_from_slice(&0i32.to_be_bytes());
    head.push(2);
    head.extend_from_slice(&[0; 4]);
    head.extend_from_slice(&0i16.to_be_bytes());
    head.extend_from_slice(&0i32.to_be_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    head.extend_from_slice(&now.to_be_bytes());
    head.extend_from_slice(&now.to_be_bytes());
    head.extend_from_slice(&(-1i64).to_be_bytes());
    head.extend_from_slice(&(-1i16).to_be_bytes());
    head.extend_from_slice(&(-1i32).to_be_bytes());
    head.extend_from_slice(&1i32.to_be_bytes());
    head.extend_from_slice(&record);
    let mut crc = sluice::storage::Crc32c::default();
    crc.update(&head[21..]);
    let zeros = vec![0u8; 1 << 20];
    let mut left = value_len;
    while left > 0 {
        let n = left.min(zeros.len());
        crc.update(&zeros[..n]);
        left -= n;
    }
    crc.update(&[0]);
    head[17..21].copy_from_slice(&crc.finish().to_be_bytes());
    (head, total)
}

/// Replaces the one segment of `dir` with `gib` sparse segments of one
/// 1 GiB record each, then a small active one, each with the index files
/// Kafka would leave after a clean stop (no offset entry for a single
/// batch; one time entry).
fn fill_sparse(dir: &Path, gib: u64) {
    for entry in std::fs::read_dir(dir)
        .expect("partition directory")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".log") || name.contains("index") || name.ends_with(".snapshot") {
            std::fs::remove_file(entry.path()).expect("remove");
        }
    }
    let indexes = |base: i64, head: &[u8]| {
        let mut time_entry = head[35..43].to_vec();
        time_entry.extend_from_slice(&0u32.to_be_bytes());
        std::fs::write(dir.join(format!("{base:020}.index")), b"").expect("index");
        std::fs::write(dir.join(format!("{base:020}.timeindex")), time_entry).expect("time index");
    };
    let (head, total) = batch(0, (1 << 30) - 100);
    for base in 0..gib as i64 {
        let mut head = head.clone();
        head[..8].copy_from_slice(&base.to_be_bytes());
        let file = std::fs::File::create(dir.join(format!("{base:020}.log"))).expect("create");
        std::os::unix::fs::FileExt::write_all_at(&file, &head, 0).expect("write");
        file.set_len(total as u64).expect("sparse length");
        indexes(base, &head);
    }
    let (last, _) = batch(gib as i64, 10);
    indexes(gib as i64, &last);
    let last = [last.as_slice(), &[0u8; 11]].concat();
    std::fs::File::create(dir.join(format!("{gib:020}.log")))
        .and_then(|mut f| f.write_all(&last))
        .expect("active segment");
}

fn main() {
    let topics = env("SCALE_TOPICS", 1000);
    let partitions = env("SCALE_PARTITIONS", 10) as i32;
    let idle = env("SCALE_IDLE", 1000);
    let big_gib = env("SCALE_BIG_GB", 100);
    let scratch = tempfile::tempdir().expect("tempdir");
    // SCALE_DIR keeps the broker's directory for a look afterwards.
    let dir = std::env::var("SCALE_DIR").map_or(scratch.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("SCALE_DIR");
    let mut broker = Broker::prepare(
        &dir,
        "SCALE_BINARY",
        &format!(
            "max_connections = {}\nmax_connections_per_ip = {}\n",
            idle + 100,
            idle + 100
        ),
    );
    let address = broker.address.clone();
    let (_, pid) = broker.start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let started = Instant::now();
    let (created, error) = runtime.block_on(create_topics(&address, topics, partitions));
    println!(
        "create_topics {created} of {topics} topics x {partitions} partitions in {} ms{}",
        started.elapsed().as_millis(),
        error.map_or(String::new(), |e| format!(", then failed: {e}"))
    );
    let (_, best, count) = metadata_all(&address);
    println!(
        "metadata_all_topics {} ms ({count} topics)",
        best.as_millis()
    );

    runtime.block_on(async {
        for i in 0..idle {
            tokio::spawn(idle_consumer(
                address.clone(),
                topic_name(i % topics.max(1)),
            ));
        }
        // Every connection is open and parked before the measurement starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = (cpu(pid), ANSWERS.load(std::sync::atomic::Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let used = cpu(pid) - before.0;
        let answers = ANSWERS.load(std::sync::atomic::Ordering::Relaxed) - before.1;
        let (rss, anon) = memory(pid);
        println!(
            "idle_consumers {idle} long-polling: broker CPU {:.1}% of one core ({} fetches answered per second); VmRSS {:.1} MiB, anonymous {:.1} MiB",
            used.as_secs_f64() * 100.0 / 10.0,
            answers / 10,
            rss as f64 / 1024.0,
            anon as f64 / 1024.0
        );
    });
    drop(runtime);

    let big = NewTopic::new("scale-big", 1, TopicReplication::Fixed(1));
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                .set("bootstrap.servers", &address)
                .create()
                .expect("admin client");
            admin
                .create_topics([&big], &AdminOptions::new())
                .await
                .expect("CreateTopics")
        });
    broker.stop();
    if big_gib > 0 {
        fill_sparse(&dir.join("data/scale-big-0"), big_gib);
    }
    let (listening, _) = broker.start();
    let (first, _, count) = metadata_all(&address);
    println!(
        "restart {} partitions and {big_gib} GiB: listening after {} ms, first Metadata for {count} topics {} ms",
        created * partitions as u64 + 1,
        listening.as_millis(),
        first.as_millis()
    );
    broker.stop();
}

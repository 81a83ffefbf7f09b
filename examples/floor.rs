//! The machine's own floor under the broker's produce figures: the CPU, per
//! GB, of only the kernel work that storing produced bytes cannot avoid,
//! with nothing of a broker around it. It receives bytes over loopback TCP
//! into one reused 1 MiB buffer and `write`s each piece to a file: the two
//! copies of a produce (socket to process, process to page cache). A second
//! run adds the CRC-32C check Kafka makes of every produced byte (with
//! Sluice's own `crc32c`), done between the two copies, as a broker does.
//! Neither keeps an index or parses a request.
//!
//! The figure is the CPU of the receiving thread only, from
//! `/proc/thread-self/schedstat` (nanoseconds), as a broker's figure leaves
//! out its client's. Run it beside the broker's runs: on a virtual machine
//! the same copies cost from 0.4 to several seconds per GB from one hour to
//! the next, most when page-cache pages are new to the host, so only
//! figures from one sitting compare.
//!
//! The file goes in `FLOOR_DIR`, which should be on the broker's data disk
//! (the default, a temporary directory, may be a tmpfs: memory, not a disk).
//!
//! ```text
//! cargo run --release --example floor                       # 2 GiB, in a temp dir
//! FLOOR_BYTES=216000000 FLOOR_DIR=/var/lib/sluice cargo run --release --example floor
//! cargo build --release && FLOOR_ROUNDS=5 cargo run --release --example floor
//! ```
//!
//! With `FLOOR_ROUNDS=N` it measures the broker against its floor instead,
//! in N alternating rounds: the `sluice` binary (`FLOOR_BINARY`, else
//! `target/release/sluice`, its data in a directory of its own inside
//! `FLOOR_DIR`) takes
//! `FLOOR_MESSAGES` (2,000,000) messages of `FLOOR_SIZE` (100) bytes from an
//! rdkafka producer with librdkafka's defaults and `linger.ms=5` (as
//! `rdkafka_performance -P` sends them), its CPU read from the process's
//! CPU clock; the topic is deleted, and the floor with the CRC check
//! receives and writes as many bytes as the broker stored. It prints both
//! per million messages and their ratio, each round and the medians.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[path = "support/broker.rs"]
mod broker;

const PIECE: usize = 1 << 20;

/// `name` as a positive whole number, `default` when unset.
fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive whole number, not {v:?}"))
    })
}

/// CPU time of the calling thread so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

fn report(name: &str, bytes: u64, cpu_ns: u64, wall: std::time::Duration) {
    let gb = bytes as f64 / 1e9;
    let cpu = cpu_ns as f64 / 1e9;
    println!(
        "{name}: {gb:.2} GB in {:.0} ms, {:.2} GB/s; CPU {:.0} ms, {:.3} s per GB",
        wall.as_secs_f64() * 1e3,
        gb / wall.as_secs_f64(),
        cpu * 1e3,
        cpu / gb
    );
}

/// Receive `bytes` and write them to a file in `dir`, checking a CRC-32C of
/// each piece first if `check`; prints and returns the CPU of the receiving
/// thread, in nanoseconds.
fn produce(dir: &Path, bytes: u64, check: bool) -> u64 {
    let (mut client, mut server) = pair();
    let sender = std::thread::spawn(move || {
        let piece = vec![7u8; PIECE];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            client.write_all(&piece[..n]).expect("send");
            left -= n as u64;
        }
    });
    let path = dir.join("floor-produce");
    let mut file = File::create(&path).expect("create");
    let _remove = RemoveOnDrop(&path);
    let mut buf = vec![0u8; PIECE];
    let (start, cpu) = (Instant::now(), thread_cpu_ns());
    let mut got = 0u64;
    while got < bytes {
        let n = server.read(&mut buf).expect("receive");
        assert!(n > 0, "sender closed early");
        if check {
            std::hint::black_box(sluice::storage::crc32c(&buf[..n]));
        }
        file.write_all(&buf[..n]).expect("write");
        got += n as u64;
    }
    let name = if check {
        "produce floor (receive + CRC-32C + write)"
    } else {
        "produce floor (receive + write)"
    };
    let cpu = thread_cpu_ns() - cpu;
    report(name, got, cpu, start.elapsed());
    sender.join().expect("sender");
    cpu
}

/// Sends `messages` values of `size` bytes to partition 0 of `topic`, as
/// `rdkafka_performance -P -s size -c messages -X linger.ms=5` does, and
/// checks that the partition ends where it should.
fn produce_with_rdkafka(bootstrap: &str, topic: &str, messages: u64, size: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let payload = vec![b'x'; size];
    for sent in 0..messages {
        loop {
            let record = BaseRecord::<(), [u8]>::to(topic)
                .partition(0)
                .payload(&payload);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
        if sent % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!(high as u64, messages, "every message stored once");
}

/// Bytes of the `.log` files in `dir`.
fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("the partition directory")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn delete_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let results = runtime
        .block_on(admin.delete_topics(&[topic], &AdminOptions::new()))
        .expect("DeleteTopics");
    for result in results {
        result.expect("topic deleted");
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// `rounds` rounds of the broker's produce, then the floor on as many bytes.
fn against_the_broker(dir: &Path, rounds: u64) {
    let messages = env("FLOOR_MESSAGES", 2_000_000);
    let size = env("FLOOR_SIZE", 100) as usize;
    // Its own directory inside `dir`, removed afterwards.
    let home = tempfile::tempdir_in(dir).expect("a directory for the broker");
    let mut sluice = broker::Broker::prepare(home.path(), "FLOOR_BINARY", "");
    let (_, pid) = sluice.start();
    let per_million = |ns: u64| ns as f64 / 1e6 / (messages as f64 / 1e6);
    let (mut brokers, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let topic = format!("floor-{round}");
        let cpu = broker::cpu_ns(pid);
        produce_with_rdkafka(&sluice.address, &topic, messages, size);
        let cpu = broker::cpu_ns(pid) - cpu;
        // The bytes it stored: what it received but the framing of each
        // request (a hundred bytes or so per request of up to 1 MB).
        let stored = log_bytes(&home.path().join(format!("data/{topic}-0")));
        // Its pages go back to the page cache's free pool before the floor
        // writes as many, so that both write into pages alike: on a virtual
        // machine a page new to the host costs several times a reused one.
        delete_topic(&sluice.address, &topic);
        let floor = produce(dir, stored, true);
        let (b, f) = (per_million(cpu), per_million(floor));
        println!(
            "round {round}: broker {b:.1} ms per million messages of {size} B ({stored} bytes stored); floor {f:.1}; ratio {:.2}",
            b / f
        );
        brokers.push(b);
        floors.push(f);
        ratios.push(b / f);
    }
    sluice.stop();
    println!(
        "median of {rounds}: broker {:.1} ms per million, floor {:.1}, ratio {:.2}",
        median(brokers),
        median(floors),
        median(ratios)
    );
}

/// Removes the file at its path when dropped, on a panic too.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

fn main() {
    let bytes = env("FLOOR_BYTES", 2 << 30);
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = std::env::var("FLOOR_DIR").map_or(scratch.path().to_path_buf(), Into::into);
    if std::env::var("FLOOR_ROUNDS").is_ok() {
        against_the_broker(&dir, env("FLOOR_ROUNDS", 1));
        return;
    }
    produce(&dir, bytes, false);
    produce(&dir, bytes, true);
}

//! kcat (librdkafka 2.0.2 from Debian) against an in-process broker: metadata
//! listing, and every compression codec written by one client and read by the
//! other. The segment files are inspected to see which codec really arrived.
//! Without kcat on the PATH each test says it is skipped and passes.

mod common;

use common::*;
use rdkafka::Offset;
use rdkafka::message::Timestamp;
use rdkafka::producer::FutureRecord;

const COUNT: usize = 200;

/// The compression codec (attributes & 7) of every batch stored in partition 0,
/// read from the segment files: proves the codec really went over the wire.
fn stored_codecs(broker: &TestBroker, topic: &str) -> Vec<u8> {
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .expect("partition directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut codecs = Vec::new();
    for log in logs {
        let bytes = std::fs::read(&log).expect("segment file");
        let mut pos = 0;
        while pos + 23 <= bytes.len() {
            let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
            if len <= 0 {
                break; // preallocated or zeroed tail
            }
            codecs.push(bytes[pos + 22] & 7);
            pos += 12 + len as usize;
        }
    }
    codecs
}

fn codec_id(codec: &str) -> u8 {
    ["none", "gzip", "snappy", "lz4", "zstd"]
        .iter()
        .position(|c| *c == codec)
        .expect("known codec") as u8
}

/// Every stored batch uses `codec` or none (librdkafka sends a batch uncompressed
/// when compressing would not shrink it); with `required`, at least one uses `codec`.
fn assert_stored_with(broker: &TestBroker, topic: &str, codec: &str, required: bool) {
    let codecs = stored_codecs(broker, topic);
    let want = codec_id(codec);
    assert!(!codecs.is_empty(), "{codec}: no batch stored");
    assert!(
        codecs.iter().all(|&c| c == want || c == 0),
        "{codec}: stored batch codecs {codecs:?}"
    );
    if required {
        assert!(
            codecs.contains(&want),
            "{codec}: no batch stored with it, codecs {codecs:?}"
        );
    }
}

/// Whether kcat's librdkafka 2.0.2 compresses with `codec` against Sluice. For
/// gzip, snappy and lz4 it first asks whether the broker's Produce range reaches
/// down to v0 (`rd_kafka_broker_ApiVersion_supported(Produce, 0, 0)`); Sluice,
/// like Kafka 4.0, starts at v3, so those batches go out uncompressed. zstd is
/// checked against v7 and is compressed. librdkafka 2.12 (rdkafka) compresses all.
fn kcat_compresses(codec: &str) -> bool {
    matches!(codec, "zstd")
}

#[tokio::test]
async fn kcat_lists_the_broker_and_topics() {
    if !tools::present(&tools::KCAT) {
        return;
    }
    let broker = start_broker().await;
    let (one, three) = (unique_topic("kcat-l1"), unique_topic("kcat-l3"));
    create_topic(&broker.bootstrap(), &one, 1, &[]).await;
    create_topic(&broker.bootstrap(), &three, 3, &[]).await;
    let out = kcat(&["-b", &broker.bootstrap(), "-L"], b"");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(lines.contains(&"1 brokers:"), "{out}");
    assert!(
        lines.contains(&format!("broker 1 at {} (controller)", broker.bootstrap()).as_str()),
        "{out}"
    );
    assert!(lines.contains(&"2 topics:"), "{out}");
    assert!(
        lines.contains(&format!("topic \"{one}\" with 1 partitions:").as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("topic \"{three}\" with 3 partitions:").as_str()),
        "{out}"
    );
    let partitions = lines.iter().filter(|l| l.starts_with("partition ")).count();
    assert_eq!(partitions, 4, "{out}");
    for p in 0..3 {
        let line = format!("partition {p}, leader 1, replicas: 1, isrs: 1");
        assert!(
            lines.contains(&line.as_str()),
            "missing {line:?} in:\n{out}"
        );
    }

    let only = kcat(&["-b", &broker.bootstrap(), "-L", "-t", &three], b"");
    assert!(
        only.contains(&format!("topic \"{three}\" with 3 partitions:")),
        "{only}"
    );
    assert!(!only.contains(&one), "{only}");
}

/// rdkafka writes `COUNT` keyed, timestamped records compressed with `codec`
/// in multi-record batches; kcat must print each with its offset and timestamp.
async fn rdkafka_writes_kcat_reads(codec: &str) {
    if !tools::present(&tools::KCAT) {
        return;
    }
    let broker = start_broker().await;
    let topic = unique_topic(&format!("to-kcat-{codec}"));
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(
        &broker.bootstrap(),
        &[("compression.codec", codec), ("linger.ms", "100")],
    );
    let ts = 1_690_000_000_000i64;
    let keys: Vec<String> = (0..COUNT).map(|i| format!("k{i}")).collect();
    // Repetitive values, so the codecs have something to compress.
    let values: Vec<String> = (0..COUNT)
        .map(|i| format!("v{i}-{}", "abc".repeat(i % 20)))
        .collect();
    let pending: Vec<_> = (0..COUNT)
        .map(|i| {
            let record = FutureRecord::to(&topic)
                .partition(0)
                .key(&keys[i])
                .payload(&values[i])
                .timestamp(ts + i as i64);
            send_or_wait(&producer, record)
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(
            await_delivery(p).await,
            Ok((0, i as i64)),
            "{codec} record {i}"
        );
    }
    let out = kcat(
        &[
            "-b",
            &broker.bootstrap(),
            "-C",
            "-t",
            &topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k %s %o %T\\n",
        ],
        b"",
    );
    let want: Vec<String> = (0..COUNT)
        .map(|i| format!("{} {} {i} {}", keys[i], values[i], ts + i as i64))
        .collect();
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, want, "kcat output for codec {codec}");
    assert_stored_with(&broker, &topic, codec, codec != "none");
    // rdkafka decompresses its own batches too.
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let again = consume_exactly(&consumer, COUNT, WAIT);
    for (i, r) in again.iter().enumerate() {
        let seen = (r.offset, r.key.as_deref(), r.value.as_deref());
        let want = (
            i as i64,
            Some(keys[i].as_bytes()),
            Some(values[i].as_bytes()),
        );
        assert_eq!(seen, want, "{codec}: rdkafka reading back record {i}");
    }
}

/// kcat writes `COUNT` keyed records compressed with `codec` (plus a header);
/// rdkafka must read each with its offset.
async fn kcat_writes_rdkafka_reads(codec: &str) {
    if !tools::present(&tools::KCAT) {
        return;
    }
    let broker = start_broker().await;
    let topic = unique_topic(&format!("from-kcat-{codec}"));
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let input: String = (0..COUNT)
        .map(|i| format!("k{i}:v{i}-{}\n", "xyz".repeat(i % 20)))
        .collect();
    let args = [
        "-b",
        &broker.bootstrap(),
        "-P",
        "-t",
        &topic,
        "-p",
        "0",
        "-z",
        codec,
        "-K:",
        "-H",
        "codec=kcat",
        "-X",
        "linger.ms=50",
    ];
    kcat(&args, input.as_bytes());
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, COUNT, WAIT);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "{codec}: offset");
        assert_eq!(
            r.key.as_deref(),
            Some(format!("k{i}").as_bytes()),
            "{codec}: key at {i}"
        );
        assert_eq!(
            r.value_str(),
            format!("v{i}-{}", "xyz".repeat(i % 20)),
            "{codec}: value at {i}"
        );
        assert_eq!(
            r.headers,
            vec![("codec".to_string(), Some(b"kcat".to_vec()))],
            "{codec}: headers at {i}"
        );
        assert!(
            matches!(r.timestamp, Timestamp::CreateTime(t) if t > 0),
            "{codec}: timestamp {:?}",
            r.timestamp
        );
    }
    assert_stored_with(&broker, &topic, codec, kcat_compresses(codec));
}

macro_rules! codec_tests {
    ($($codec:literal => $to_kcat:ident, $from_kcat:ident;)*) => {$(
        #[tokio::test]
        async fn $to_kcat() {
            rdkafka_writes_kcat_reads($codec).await;
        }

        #[tokio::test]
        async fn $from_kcat() {
            kcat_writes_rdkafka_reads($codec).await;
        }
    )*};
}

codec_tests! {
    "none" => rdkafka_uncompressed_is_read_by_kcat, kcat_uncompressed_is_read_by_rdkafka;
    "gzip" => rdkafka_gzip_is_read_by_kcat, kcat_gzip_is_read_by_rdkafka;
    "snappy" => rdkafka_snappy_is_read_by_kcat, kcat_snappy_is_read_by_rdkafka;
    "lz4" => rdkafka_lz4_is_read_by_kcat, kcat_lz4_is_read_by_rdkafka;
    "zstd" => rdkafka_zstd_is_read_by_kcat, kcat_zstd_is_read_by_rdkafka;
}

//! One test per kind of bad input, through a raw TCP socket: each gets a Kafka
//! error code or a closed connection, leaves the log unchanged, and ends with a
//! real client producing and consuming on the same broker.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::raw::*;
use common::*;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;

/// Requests that claim 2^31 array elements must not abort this process either.
#[global_allocator]
static ALLOCATOR: sluice::alloc::Guarded = sluice::alloc::Guarded;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Sends raw `bytes` on a fresh connection and expects the broker to close it.
async fn closes_on(bootstrap: &str, bytes: &[u8]) {
    let mut raw = Raw::connect(bootstrap).await;
    raw.send_bytes(bytes).await;
    assert!(
        raw.is_closed().await,
        "expected a close after {:?}",
        &bytes[..bytes.len().min(16)]
    );
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 4);
    f.put_i32(payload.len() as i32);
    f.extend_from_slice(payload);
    f
}

/// A request header for `key`/`version` (header v1: no tagged fields) followed by `body`.
fn request(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.put_i16(key);
    p.put_i16(version);
    p.put_i32(7);
    p.put_i16(-1); // null client id
    p.extend_from_slice(body);
    frame(&p)
}

#[tokio::test]
async fn garbage_bytes_close_the_connection() {
    let broker = start_broker().await;
    closes_on(
        &broker.bootstrap(),
        b"GET / HTTP/1.1\r\nHost: sluice\r\n\r\n",
    )
    .await;
    closes_on(
        &broker.bootstrap(),
        &frame(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5]),
    )
    .await;
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn a_truncated_frame_is_dropped_with_its_connection() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let whole = request(18, 0, &[]);
    raw.send_bytes(&whole[..whole.len() - 3]).await;
    drop(raw);
    // A frame that promises more than it sends, then goes quiet: idle, not served.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    raw.send_bytes(&[0, 0, 0, 100, 0, 18]).await;
    assert!(raw.is_silent_for(Duration::from_millis(300)).await);
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn huge_and_negative_size_prefixes_close_the_connection() {
    let broker = start_broker().await;
    for size in [0x7fff_ffff_u32, 0x8000_0000, 0xffff_ffff, 200 << 20] {
        closes_on(&broker.bootstrap(), &size.to_be_bytes()).await;
    }
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn unknown_api_keys_and_versions_are_refused() {
    let broker = start_broker().await;
    closes_on(&broker.bootstrap(), &request(999, 0, &[])).await;
    closes_on(&broker.bootstrap(), &request(3, 99, &[])).await;
    // ApiVersions answers an unknown version with UNSUPPORTED_VERSION (KIP-511).
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (id, payload) = raw.encode(3, &ApiVersionsRequest::default());
    let mut payload = payload.to_vec();
    payload[2..4].copy_from_slice(&99i16.to_be_bytes());
    raw.send_frame(&payload).await;
    let response = raw.read_frame(READ_WAIT).await;
    assert_eq!(
        i32::from_be_bytes([response[0], response[1], response[2], response[3]]),
        id
    );
    assert_eq!(
        i16::from_be_bytes([response[4], response[5]]),
        35,
        "UNSUPPORTED_VERSION"
    );
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn lying_array_and_string_lengths_close_the_connection() {
    let broker = start_broker().await;
    // Metadata v1 claiming 2^31 - 1 topics, with none sent.
    closes_on(
        &broker.bootstrap(),
        &request(3, 1, &0x7fff_ffffi32.to_be_bytes()),
    )
    .await;
    // Metadata v1 with one topic whose name claims 32,767 bytes but carries 3.
    let mut body = Vec::new();
    body.put_i32(1);
    body.put_i16(i16::MAX);
    body.extend_from_slice(b"abc");
    closes_on(&broker.bootstrap(), &request(3, 1, &body)).await;
    // Produce v3: null transactional id, acks, timeout, then 2^31 - 1 topics.
    let mut body = Vec::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(0x7fff_ffff);
    closes_on(&broker.bootstrap(), &request(0, 3, &body)).await;
    a_real_client_still_works(&broker.bootstrap()).await;
}

async fn end_offset(bootstrap: &str, topic: &str) -> i64 {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    blocking(move || watermarks(&consumer(&bootstrap, &[]), &topic, 0).1).await
}

#[tokio::test]
async fn bad_batches_get_error_codes_and_leave_the_log_unchanged() {
    let broker = start_broker().await;
    let topic = unique_topic("bad-batches");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let good = batch(&[record(0, 1, None, Some("a")), record(1, 1, None, Some("b"))]);
    assert_eq!(produce(&mut raw, 9, &topic, 0, good.clone()).await.0, 0);

    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, bad_crc.freeze()).await.0,
        2,
        "CORRUPT_MESSAGE"
    );

    // Record count (bytes 57..61) says 3 where the batch holds 2; the CRC is made to match.
    let mut bad_count = BytesMut::from(&good[..]);
    bad_count[57..61].copy_from_slice(&3i32.to_be_bytes());
    let crc = sluice::storage::crc32c(&bad_count[21..]);
    bad_count[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, bad_count.freeze()).await.0,
        87,
        "INVALID_RECORD"
    );

    // Batch length (bytes 8..12) larger than the bytes sent.
    let mut bad_length = BytesMut::from(&good[..]);
    bad_length[8..12].copy_from_slice(&10_000i32.to_be_bytes());
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, bad_length.freeze()).await.0,
        2,
        "CORRUPT_MESSAGE"
    );

    // A good batch followed by half of another: all or nothing.
    let mut torn = BytesMut::from(&good[..]);
    torn.extend_from_slice(&good[..good.len() / 2]);
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, torn.freeze()).await.0,
        2,
        "CORRUPT_MESSAGE"
    );

    assert_eq!(
        end_offset(&broker.bootstrap(), &topic).await,
        2,
        "only the good batch is stored"
    );
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn forbidden_topic_names_are_refused_and_touch_nothing_outside_the_data_dir() {
    let broker = start_broker().await;
    let outside = broker.data_dir().parent().expect("parent").to_path_buf();
    let before = std::fs::read_dir(&outside).expect("list").count();
    let long = "x".repeat(250);
    let bad = [
        "",
        ".",
        "..",
        "../escape",
        "a/b",
        "a\\b",
        "a b",
        "ü",
        long.as_str(),
    ];
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(
            bad.iter()
                .map(|n| {
                    CreatableTopic::default()
                        .with_name(name(n))
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                })
                .collect(),
        );
    let response = raw.call(5, &request).await;
    for t in &response.topics {
        assert_eq!(
            t.error_code,
            17,
            "INVALID_TOPIC_EXCEPTION for {:?}",
            t.name.as_str()
        );
    }
    // Auto-creation through Metadata refuses them too.
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(
            bad.iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(name(n))))
                .collect(),
        ));
    let response = raw.call(9, &request).await;
    for t in &response.topics {
        assert_eq!(t.error_code, 17, "INVALID_TOPIC_EXCEPTION for {:?}", t.name);
    }
    assert_eq!(
        std::fs::read_dir(&outside).expect("list").count(),
        before,
        "nothing created beside the data dir"
    );
    let inside: Vec<_> = std::fs::read_dir(broker.data_dir())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            n.ends_with("-0") && n != "__consumer_offsets-0" && n != "__transaction_state-0"
        })
        .collect();
    assert!(
        inside.is_empty(),
        "no partition directory was created: {inside:?}"
    );
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn a_slow_drip_of_a_frame_does_not_block_other_clients() {
    let broker = start_broker().await;
    let mut stream = tokio::net::TcpStream::connect(broker.bootstrap())
        .await
        .expect("connect");
    let whole = request(18, 0, &[]);
    let start = Instant::now();
    for b in &whole[..whole.len() - 1] {
        stream.write_all(&[*b]).await.expect("drip");
        if start.elapsed() > Duration::from_millis(200) {
            break;
        }
    }
    a_real_client_still_works(&broker.bootstrap()).await;
}

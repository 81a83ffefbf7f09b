//! rdkafka producers and consumers against an in-process broker: exact round
//! trips, sizes, volume, partitions, list offsets and long-polling fetches.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Timestamp;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

#[path = "produce_fetch/fetching.rs"]
mod fetching;

#[path = "produce_fetch/producing.rs"]
mod producing;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

fn rec(
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
    ts: i64,
) -> Rec {
    Rec {
        partition: 0,
        offset,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
            .collect(),
        timestamp: Timestamp::CreateTime(ts),
    }
}

#[tokio::test]
async fn round_trip_keeps_keys_null_values_headers_and_timestamps() {
    let broker = start_broker().await;
    let topic = unique_topic("round-trip");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    let ts = 1_600_000_000_000;
    let sends = vec![
        FutureRecord::<[u8], [u8]>::to(&topic)
            .partition(0)
            .key(b"k0")
            .payload(b"v0")
            .timestamp(ts)
            .headers(headers(&[
                ("h1", Some(b"a")),
                ("h2", None),
                ("h1", Some(b"dup")),
            ])),
        FutureRecord::<[u8], [u8]>::to(&topic)
            .partition(0)
            .payload(b"no key")
            .timestamp(ts + 1),
        FutureRecord::<[u8], [u8]>::to(&topic)
            .partition(0)
            .key(b"tombstone")
            .timestamp(ts + 2),
        FutureRecord::<[u8], [u8]>::to(&topic)
            .partition(0)
            .key(b"")
            .payload(b"")
            .timestamp(ts - 5),
        FutureRecord::<[u8], [u8]>::to(&topic)
            .partition(0)
            .key(&[0u8, 255, 10, 13][..])
            .payload(&[0u8; 3][..])
            .timestamp(ts + 3)
            .headers(headers(&[("", Some(b""))])),
    ];
    for (i, record) in sends.into_iter().enumerate() {
        // One at a time, so each record is its own batch with a known offset.
        let delivered = await_delivery(send_or_wait(&producer, record)).await;
        assert_eq!(delivered, Ok((0, i as i64)), "record {i}");
    }

    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 5, WAIT);
    let want = vec![
        rec(
            0,
            Some(b"k0"),
            Some(b"v0"),
            &[("h1", Some(b"a")), ("h2", None), ("h1", Some(b"dup"))],
            ts,
        ),
        rec(1, None, Some(b"no key"), &[], ts + 1),
        rec(2, Some(b"tombstone"), None, &[], ts + 2),
        rec(3, Some(b""), Some(b""), &[], ts - 5),
        rec(
            4,
            Some(&[0, 255, 10, 13]),
            Some(&[0, 0, 0]),
            &[("", Some(b""))],
            ts + 3,
        ),
    ];
    assert_eq!(got, want);
}

#[tokio::test]
async fn records_sent_together_keep_their_order_offsets_and_timestamps() {
    let broker = start_broker().await;
    let topic = unique_topic("batched");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    // A long linger puts the records into few, multi-record batches.
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "200")]);
    let ts = 1_700_000_000_000;
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let values: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let pending: Vec<_> = (0..50)
        .map(|i| {
            let record = FutureRecord::to(&topic)
                .partition(0)
                .key(&keys[i])
                .payload(&values[i])
                .timestamp(ts + i as i64 * 10)
                .headers(headers(&[("i", Some(i.to_string().as_bytes()))]));
            send_or_wait(&producer, record)
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(await_delivery(p).await, Ok((0, i as i64)));
    }
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Offset(0));
    let got = consume_exactly(&consumer, 50, WAIT);
    for (i, r) in got.iter().enumerate() {
        let want = rec(
            i as i64,
            Some(keys[i].as_bytes()),
            Some(values[i].as_bytes()),
            &[("i", Some(i.to_string().as_bytes()))],
            ts + i as i64 * 10,
        );
        assert_eq!(r, &want);
    }
}

#[tokio::test]
async fn one_byte_and_one_megabyte_messages_round_trip() {
    let broker = start_broker().await;
    let topic = unique_topic("sizes");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("message.max.bytes", "2000000")]);
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let one = await_delivery(send_or_wait(
        &producer,
        FutureRecord::<(), [u8]>::to(&topic).payload(b"x"),
    ))
    .await;
    assert_eq!(one, Ok((0, 0)));
    let large = await_delivery(send_or_wait(
        &producer,
        FutureRecord::<(), [u8]>::to(&topic).payload(&big),
    ))
    .await;
    assert_eq!(large, Ok((0, 1)));
    let one_more = await_delivery(send_or_wait(
        &producer,
        FutureRecord::<(), [u8]>::to(&topic).payload(b"y"),
    ))
    .await;
    assert_eq!(one_more, Ok((0, 2)));

    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 3, WAIT);
    assert_eq!(
        (got[0].offset, got[0].value.as_deref()),
        (0, Some(&b"x"[..]))
    );
    assert_eq!(got[1].offset, 1);
    assert!(
        got[1].value.as_deref() == Some(&big[..]),
        "the 1 MB payload came back different"
    );
    assert_eq!(
        (got[2].offset, got[2].value.as_deref()),
        (2, Some(&b"y"[..]))
    );
}

#[tokio::test]
async fn a_batch_over_max_message_bytes_is_refused_and_the_log_stays_usable() {
    let broker = start_broker().await;
    let topic = unique_topic("too-large");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("max.message.bytes", "10000")],
    )
    .await;
    let producer = producer(
        &broker.bootstrap(),
        &[("message.max.bytes", "3000000"), ("retries", "0")],
    );
    let too_big = vec![7u8; 20_000];
    let refused = await_delivery(send_or_wait(
        &producer,
        FutureRecord::<(), [u8]>::to(&topic).payload(&too_big),
    ))
    .await;
    let err =
        refused.expect_err("a 20 kB batch must be refused by a topic with max.message.bytes=10000");
    assert!(
        err.contains("too large") || err.contains("MsgSizeTooLarge"),
        "unexpected error: {err}"
    );
    let fits = await_delivery(send_or_wait(
        &producer,
        FutureRecord::<(), [u8]>::to(&topic).payload(b"fits"),
    ))
    .await;
    assert_eq!(fits, Ok((0, 0)));
}

#[tokio::test]
async fn hundred_thousand_messages_read_back_in_order() {
    const N: usize = 100_000;
    let broker = start_broker().await;
    let topic = unique_topic("volume");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "5")]);
    let offsets = produce_n(&producer, &topic, 0, N).await;
    for (i, &offset) in offsets.iter().enumerate() {
        assert_eq!(offset, i as i64, "acknowledged offset of record {i}");
    }

    let consumer = consumer(&broker.bootstrap(), &[("fetch.wait.max.ms", "10")]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, N, Duration::from_secs(120));
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offset at position {i}");
        assert_eq!(
            r.key.as_deref(),
            Some(format!("key-{i}").as_bytes()),
            "key at offset {i}"
        );
        assert_eq!(r.value_str(), format!("value-{i}"), "value at offset {i}");
    }
}

#[tokio::test]
async fn several_partitions_keep_separate_offsets() {
    let broker = start_broker().await;
    let topic = unique_topic("partitions");
    create_topic(&broker.bootstrap(), &topic, 4, &[]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    let values: Vec<String> = (0..100).map(|i| format!("p{}-n{}", i % 4, i / 4)).collect();
    let pending: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            send_or_wait(
                &producer,
                FutureRecord::<(), str>::to(&topic)
                    .partition(i as i32 % 4)
                    .payload(v),
            )
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(
            await_delivery(p).await,
            Ok((i as i32 % 4, i as i64 / 4)),
            "record {i}"
        );
    }

    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0, 1, 2, 3], Offset::Beginning);
    let got = consume_exactly(&consumer, 100, WAIT);
    let parts = by_partition(&got);
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for (p, records) in parts {
        let seen: Vec<(i64, &str)> = records.iter().map(|r| (r.offset, r.value_str())).collect();
        let want: Vec<(i64, String)> = (0..25).map(|n| (n, format!("p{p}-n{n}"))).collect();
        let want: Vec<(i64, &str)> = want.iter().map(|(o, v)| (*o, v.as_str())).collect();
        assert_eq!(seen, want, "partition {p}");
    }
}

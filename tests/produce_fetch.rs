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

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_time() {
    let broker = start_broker().await;
    let topic = unique_topic("list-offsets");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(
        watermarks(&consumer, &topic, 0),
        (0, 0),
        "watermarks of an empty partition"
    );

    let producer = producer(&broker.bootstrap(), &[]);
    let base = 1_650_000_000_000i64;
    for i in 0..10i64 {
        let value = format!("t{i}");
        let record = FutureRecord::<(), str>::to(&topic)
            .partition(0)
            .payload(&value)
            .timestamp(base + i * 1000);
        assert_eq!(
            await_delivery(send_or_wait(&producer, record)).await,
            Ok((0, i))
        );
    }

    assert_eq!(
        watermarks(&consumer, &topic, 0),
        (0, 10),
        "earliest and latest after 10 records"
    );
    let found: Vec<(i64, Offset)> = [
        base - 1,
        base,
        base + 1,
        base + 2500,
        base + 9000,
        base + 9001,
    ]
    .into_iter()
    .map(|ts| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(ts))
            .expect("tpl");
        let out = consumer
            .offsets_for_times(tpl, Duration::from_secs(10))
            .expect("ListOffsets by time");
        let elem = out.find_partition(&topic, 0).expect("partition in answer");
        (ts, elem.offset())
    })
    .collect();
    assert_eq!(
        found,
        vec![
            (base - 1, Offset::Offset(0)),
            (base, Offset::Offset(0)),
            (base + 1, Offset::Offset(1)),
            (base + 2500, Offset::Offset(3)),
            (base + 9000, Offset::Offset(9)),
            (base + 9001, Offset::End),
        ],
        "first offset whose timestamp is at or after each time"
    );
}

#[tokio::test]
async fn fetch_from_the_middle_starts_at_the_requested_offset() {
    let broker = start_broker().await;
    let topic = unique_topic("middle");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "50")]);
    produce_n(&producer, &topic, 0, 40).await;
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Offset(17));
    let got = consume_exactly(&consumer, 23, WAIT);
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (17..40).collect::<Vec<_>>());
    assert_eq!(got[0].value_str(), "value-17");
}

#[tokio::test]
async fn reads_cross_segment_boundaries() {
    let broker = start_broker().await;
    let topic = unique_topic("segments");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("segment.bytes", "16384")],
    )
    .await;
    let producer = producer(
        &broker.bootstrap(),
        &[("linger.ms", "1"), ("batch.num.messages", "20")],
    );
    produce_n(&producer, &topic, 0, 3000).await;
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let segments = std::fs::read_dir(&dir)
        .expect("partition directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count();
    assert!(
        segments > 3,
        "expected the log to roll into several segments, found {segments}"
    );

    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let all = consume_exactly(&consumer, 3000, WAIT);
    assign(&consumer, &topic, &[0], Offset::Offset(2345));
    let tail = consume_exactly(&consumer, 655, WAIT);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as i64 && r.value_str() == format!("value-{i}"))
    );
    assert_eq!(tail.first().map(|r| r.offset), Some(2345));
    assert!(
        tail.iter()
            .zip(2345..)
            .all(|(r, o)| r.offset == o && r.value_str() == format!("value-{o}"))
    );
}

#[tokio::test]
async fn a_waiting_fetch_returns_as_soon_as_a_record_is_produced() {
    let broker = start_broker().await;
    let topic = unique_topic("long-poll");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    // The broker may hold each fetch for 20 s; the record must arrive long before that.
    let consumer = consumer(
        &broker.bootstrap(),
        &[
            ("fetch.wait.max.ms", "20000"),
            ("socket.timeout.ms", "60000"),
            ("fetch.min.bytes", "1"),
        ],
    );
    assign(&consumer, &topic, &[0], Offset::Offset(0));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::task::spawn_blocking(move || {
        let _ = started_tx.send(());
        let polled = Instant::now();
        let got = consumer
            .poll(Duration::from_secs(60))
            .map(|m| m.map(|m| Rec::from_message(&m)));
        (got, polled.elapsed())
    });
    started_rx.await.expect("consumer thread started");
    // Give the consumer time to connect and park its fetch (a longer pause only
    // makes the test stricter; a shorter one would let the fetch see the record at once).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let producer = producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<str, str>::to(&topic)
        .partition(0)
        .key("wake")
        .payload("up");
    assert_eq!(
        await_delivery(send_or_wait(&producer, record)).await,
        Ok((0, 0))
    );
    let (got, waited) = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the consumer never returned")
        .expect("consumer thread");
    let got = got
        .expect("poll returned nothing within 60 s")
        .expect("consumer error");
    assert_eq!(
        (got.offset, got.key.as_deref(), got.value.as_deref()),
        (0, Some(&b"wake"[..]), Some(&b"up"[..]))
    );
    // 20 s is the broker's wait limit: arriving earlier means the append woke the fetch.
    assert!(
        waited < Duration::from_secs(15),
        "the record arrived only after {waited:?}, i.e. at the fetch timeout"
    );
}

#[tokio::test]
async fn idempotent_producer_delivers_each_message_once() {
    const N: usize = 5000;
    let broker = start_broker().await;
    let topic = unique_topic("idempotent");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let producer = producer(
        &broker.bootstrap(),
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("batch.num.messages", "100"),
        ],
    );
    let p0 = produce_n(&producer, &topic, 0, N).await;
    let p1 = produce_n(&producer, &topic, 1, N / 2).await;
    assert_eq!(p0, (0..N as i64).collect::<Vec<_>>());
    assert_eq!(p1, (0..(N / 2) as i64).collect::<Vec<_>>());
    assert!(
        producer.client().fatal_error().is_none(),
        "idempotent producer hit a fatal error"
    );

    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0, 1], Offset::Beginning);
    let got = consume_exactly(&consumer, N + N / 2, Duration::from_secs(60));
    let parts = by_partition(&got);
    for (p, count) in [(0, N), (1, N / 2)] {
        let values: Vec<(i64, String)> = parts[&p]
            .iter()
            .map(|r| (r.offset, r.value_str().to_string()))
            .collect();
        let want: Vec<(i64, String)> = (0..count)
            .map(|i| (i as i64, format!("value-{i}")))
            .collect();
        assert_eq!(values, want, "partition {p}");
    }
}

#[tokio::test]
async fn acks_zero_one_and_all_all_store_the_records() {
    let broker = start_broker().await;
    let topic = unique_topic("acks");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    for acks in ["0", "1", "all"] {
        let producer = producer(&broker.bootstrap(), &[("acks", acks)]);
        let values: Vec<String> = (0..10).map(|i| format!("acks={acks} #{i}")).collect();
        let pending: Vec<_> = values
            .iter()
            .map(|v| {
                send_or_wait(
                    &producer,
                    FutureRecord::<(), str>::to(&topic).partition(0).payload(v),
                )
            })
            .collect();
        for p in pending {
            let delivered = await_delivery(p).await;
            assert!(delivered.is_ok(), "acks={acks}: {delivered:?}");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    }
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 30, WAIT);
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
    let mut values: Vec<&str> = got.iter().map(Rec::value_str).collect();
    values.sort_unstable();
    let mut want: Vec<String> = ["0", "1", "all"]
        .iter()
        .flat_map(|a| (0..10).map(move |i| format!("acks={a} #{i}")))
        .collect();
    want.sort_unstable();
    assert_eq!(values, want);
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_broker_time() {
    let broker = start_broker().await;
    let topic = unique_topic("append-time");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "50")]);
    let before = now_ms();
    let pending: Vec<_> = (0..5)
        .map(|i| {
            send_or_wait(
                &producer,
                FutureRecord::<(), str>::to(&topic)
                    .partition(0)
                    .payload("old")
                    .timestamp(1000 + i),
            )
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(await_delivery(p).await, Ok((0, i as i64)));
    }
    let after = now_ms();
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 5, WAIT);
    for r in &got {
        match r.timestamp {
            Timestamp::LogAppendTime(t) => {
                assert!(
                    (before - 1000..=after + 1000).contains(&t),
                    "append time {t} not near {before}..{after}"
                )
            }
            other => panic!(
                "offset {}: expected a LogAppendTime timestamp, got {other:?}",
                r.offset
            ),
        }
        assert_eq!(r.value_str(), "old");
    }
}

#[tokio::test]
async fn producing_to_a_missing_partition_fails() {
    let broker = start_broker().await;
    let topic = unique_topic("no-such-partition");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("message.timeout.ms", "5000")]);
    let result = await_delivery(send_or_wait(
        &producer,
        FutureRecord::<(), str>::to(&topic)
            .partition(3)
            .payload("x"),
    ))
    .await;
    let err = result.expect_err("partition 3 of a 1-partition topic does not exist");
    let expected = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition).to_string();
    assert!(
        err == expected || err.contains("Unknown partition") || err.contains("UnknownPartition"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn offsets_for_times_finds_the_record_inside_a_compressed_batch() {
    let broker = start_broker().await;
    let topic = unique_topic("time-in-gzip");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    // One linger window: the 20 records travel (and are stored) as one gzip batch.
    let producer = producer(
        &broker.bootstrap(),
        &[("compression.codec", "gzip"), ("linger.ms", "500")],
    );
    let base = 1_660_000_000_000i64;
    let pending: Vec<_> = (0..20i64)
        .map(|i| {
            let record = FutureRecord::<(), str>::to(&topic)
                .partition(0)
                .payload("same")
                .timestamp(base + i * 100);
            send_or_wait(&producer, record)
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(await_delivery(p).await, Ok((0, i as i64)));
    }
    let consumer = consumer(&broker.bootstrap(), &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(base + 1250))
        .expect("tpl");
    let out = consumer
        .offsets_for_times(tpl, Duration::from_secs(10))
        .expect("ListOffsets by time");
    let found = out
        .find_partition(&topic, 0)
        .expect("partition in answer")
        .offset();
    // Kafka answers with the first record at or after the time (offset 13), not the batch start.
    assert_eq!(found, Offset::Offset(13));
}

#[tokio::test]
async fn concurrent_producers_get_dense_unique_offsets() {
    const PRODUCERS: usize = 4;
    const EACH: usize = 2000;
    let broker = start_broker().await;
    let topic = unique_topic("concurrent");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let (bootstrap, topic) = (broker.bootstrap(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let producer = producer(
                &bootstrap,
                &[("linger.ms", "1"), ("batch.num.messages", "50")],
            );
            let values: Vec<String> = (0..EACH).map(|i| format!("producer-{p}-{i}")).collect();
            let pending: Vec<_> = values
                .iter()
                .map(|v| {
                    send_or_wait(
                        &producer,
                        FutureRecord::<(), str>::to(&topic).partition(0).payload(v),
                    )
                })
                .collect();
            let mut offsets = Vec::new();
            for d in pending {
                offsets.push(await_delivery(d).await.expect("acknowledged").1);
            }
            offsets
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("producer task"));
    }
    acked.sort_unstable();
    assert_eq!(
        acked,
        (0..(PRODUCERS * EACH) as i64).collect::<Vec<_>>(),
        "acknowledged offsets"
    );

    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, PRODUCERS * EACH, Duration::from_secs(60));
    let mut next = [0usize; PRODUCERS];
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        let (p, n) = r
            .value_str()
            .trim_start_matches("producer-")
            .split_once('-')
            .expect("value shape");
        let (p, n): (usize, usize) = (p.parse().expect("producer"), n.parse().expect("number"));
        assert_eq!(n, next[p], "producer {p}'s records must stay in order");
        next[p] += 1;
    }
}

#[tokio::test]
async fn large_records_on_several_partitions_fit_through_a_small_fetch_budget() {
    let broker = start_broker().await;
    let topic = unique_topic("budget");
    create_topic(&broker.bootstrap(), &topic, 3, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    let payload = |p: i32, i: i32| vec![(p * 16 + i) as u8; 300_000];
    for i in 0..6 {
        for p in 0..3 {
            let value = payload(p, i);
            let record = FutureRecord::<(), [u8]>::to(&topic)
                .partition(p)
                .payload(&value);
            assert_eq!(
                await_delivery(send_or_wait(&producer, record)).await,
                Ok((p, i as i64))
            );
        }
    }
    // Each fetch may carry barely more than one record: the broker must still
    // hand out whole batches and make progress on every partition.
    let consumer = consumer(
        &broker.bootstrap(),
        &[
            ("fetch.max.bytes", "400000"),
            ("max.partition.fetch.bytes", "350000"),
            ("message.max.bytes", "400000"),
        ],
    );
    assign(&consumer, &topic, &[0, 1, 2], Offset::Beginning);
    let got = by_partition(&consume_exactly(&consumer, 18, WAIT));
    for p in 0..3 {
        let offsets: Vec<i64> = got[&p].iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..6).collect::<Vec<_>>(), "partition {p}");
        for (i, r) in got[&p].iter().enumerate() {
            assert!(
                r.value.as_deref() == Some(&payload(p, i as i32)[..]),
                "partition {p} record {i} differs"
            );
        }
    }
}

//! Reading as consumers do: ListOffsets and offsets for times, a fetch from the
//! middle, across segments, woken by a produce, and through a small budget.

use super::*;

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

//! Producing as producers do: idempotently, with every acks, to a LogAppendTime
//! topic, to a missing partition, and from several producers at once.

use super::*;

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
        for p in send_values(&producer, &topic, &values) {
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
            let mut offsets = Vec::new();
            for d in send_values(&producer, &topic, &values) {
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

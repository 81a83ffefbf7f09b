//! Exact Produce, Fetch and ListOffsets answers: offsets of whole batches,
//! corrupt batches, acks, offsets out of range, times, and long-polls.

use super::*;

#[tokio::test]
async fn produce_assigns_offsets_to_whole_batches_and_refuses_corrupt_ones() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "raw", 1, &[]).await;
    assert_eq!(
        produce(
            &mut raw,
            9,
            "raw",
            0,
            batch(&[record(0, 10, Some("a"), Some("first"))])
        )
        .await,
        (0, 0)
    );
    // A client numbers records from 0 in every batch; the broker rebases them.
    let three = batch(&[
        record(0, 11, Some("b"), Some("x")),
        record(1, 12, None, None),
        record(2, 13, Some("c"), Some("")),
    ]);
    assert_eq!(produce(&mut raw, 11, "raw", 0, three).await, (0, 1));

    let mut corrupt = batch(&[record(0, 14, Some("d"), Some("flipped"))]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut raw, 9, "raw", 0, Bytes::from(corrupt)).await,
        (2, -1),
        "CORRUPT_MESSAGE"
    );
    assert_ne!(
        produce(&mut raw, 9, "raw", 0, Bytes::from_static(&[1, 2, 3]))
            .await
            .0,
        0,
        "garbage records"
    );
    assert_eq!(
        produce(&mut raw, 9, "raw", 5, batch(&[record(0, 1, None, None)]))
            .await
            .0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce(&mut raw, 9, "nope", 0, batch(&[record(0, 1, None, None)]))
            .await
            .0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    let response = raw.call(12, &fetch_request("raw", 0, 0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 4));
    let got: Vec<_> = decode_records(p.records.as_ref().expect("records"))
        .into_iter()
        .map(|r| (r.offset, r.timestamp, r.key, r.value))
        .collect();
    let b = |v: &'static str| Some(Bytes::from_static(v.as_bytes()));
    assert_eq!(
        got,
        vec![
            (0, 10, b("a"), b("first")),
            (1, 11, b("b"), b("x")),
            (2, 12, None, None),
            (3, 13, b("c"), b(""))
        ]
    );
}

#[tokio::test]
async fn a_compacted_topic_names_each_keyless_record_it_refuses_and_why() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "keyed", 1, &[("cleanup.policy", "compact")]).await;
    let keyless_at_1_and_3 = batch(&[
        record(0, 10, Some("a"), Some("x")),
        record(1, 11, None, Some("y")),
        record(2, 12, Some("c"), Some("z")),
        record(3, 13, None, None),
    ]);
    let p = produce_answer(&mut raw, 8, "keyed", 0, keyless_at_1_and_3).await;
    assert_eq!((p.error_code, p.base_offset), (87, -1), "INVALID_RECORD");
    let named: Vec<_> = p
        .record_errors
        .iter()
        .map(|e| (e.batch_index, e.batch_index_error_message.as_deref()))
        .collect();
    let why = Some("a compacted topic cannot accept a record without a key");
    assert_eq!(named, vec![(1, why), (3, why)]);
    assert!(
        p.error_message
            .as_deref()
            .is_some_and(|m| m.contains("without a key")),
        "{:?}",
        p.error_message
    );
    // Nothing of the batch was stored.
    let keyed = batch(&[record(0, 14, Some("d"), Some("w"))]);
    assert_eq!(produce(&mut raw, 8, "keyed", 0, keyed).await, (0, 0));
}

#[tokio::test]
async fn produce_with_acks_zero_sends_no_response() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "fire-and-forget", 1, &[]).await;
    let request = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("fire-and-forget"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&[record(0, 1, None, Some("x"))]))),
                ]),
        ]);
    let (_, payload) = raw.encode(9, &request);
    raw.send_frame(&payload).await;
    // The next frame on the connection answers the next request, not the produce.
    let (id, payload) = raw.encode(3, &ApiVersionsRequest::default());
    raw.send_frame(&payload).await;
    assert_eq!(raw.receive::<ApiVersionsRequest>(3, id).await.error_code, 0);
    assert_eq!(
        list_offset(&mut raw, 8, "fire-and-forget", -1).await,
        (0, 1, -1)
    );
}

#[tokio::test]
async fn produce_with_invalid_acks_is_refused_with_invalid_required_acks() {
    // Kafka answers every partition with INVALID_REQUIRED_ACKS (21) rather than
    // dropping the connection.
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "acks", 1, &[]).await;
    let request = ProduceRequest::default()
        .with_acks(2)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("acks"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&[record(0, 1, None, Some("x"))]))),
                ]),
        ]);
    let response = raw.call(9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 21);
}

#[tokio::test]
async fn fetch_outside_the_log_is_offset_out_of_range() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "range", 1, &[]).await;
    let five = batch(
        &(0..5)
            .map(|i| record(i, 1, None, Some("x")))
            .collect::<Vec<_>>(),
    );
    assert_eq!(produce(&mut raw, 9, "range", 0, five).await, (0, 0));
    for offset in [6, 100, -5] {
        let response = raw.call(12, &fetch_request("range", offset, 0)).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(
            (p.error_code, p.high_watermark),
            (1, 5),
            "fetch at {offset}: OFFSET_OUT_OF_RANGE"
        );
    }
    // At the end exactly: no error, no records.
    let response = raw.call(12, &fetch_request("range", 5, 0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn list_offsets_by_time_finds_the_record_inside_a_batch() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "times", 1, &[]).await;
    let t = 1_700_000_000_000;
    // One batch of five records, 10 ms apart, then a second batch.
    let first = batch(
        &(0..5)
            .map(|i| record(i, t + i * 10, None, Some("x")))
            .collect::<Vec<_>>(),
    );
    assert_eq!(produce(&mut raw, 9, "times", 0, first).await, (0, 0));
    assert_eq!(
        produce(
            &mut raw,
            9,
            "times",
            0,
            batch(&[record(0, t + 100, None, Some("y"))])
        )
        .await,
        (0, 5)
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", -2).await,
        (0, 0, -1),
        "earliest"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", -1).await,
        (0, 6, -1),
        "latest"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", t + 50).await,
        (0, 5, t + 100),
        "between batches"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", t + 101).await,
        (0, -1, -1),
        "after every record"
    );
    // Kafka answers with the first *record* at or after the time, inside the batch.
    assert_eq!(
        list_offset(&mut raw, 8, "times", t + 15).await,
        (0, 2, t + 20),
        "inside the first batch"
    );
    assert_eq!(
        list_offset(&mut raw, 8, "times", t).await,
        (0, 0, t),
        "the very first record"
    );
}

#[tokio::test]
async fn list_offsets_max_timestamp_finds_the_newest_record() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "max-ts", 1, &[]).await;
    let t = 1_700_000_000_000;
    let first = batch(&[
        record(0, t, None, Some("a")),
        record(1, t + 500, None, Some("b")),
        record(2, t + 5, None, None),
    ]);
    assert_eq!(produce(&mut raw, 9, "max-ts", 0, first).await, (0, 0));
    assert_eq!(
        produce(
            &mut raw,
            9,
            "max-ts",
            0,
            batch(&[record(0, t + 7, None, None)])
        )
        .await,
        (0, 3)
    );
    assert_eq!(
        list_offset(&mut raw, 8, "max-ts", -3).await,
        (0, 1, t + 500),
        "MAX_TIMESTAMP (v7+)"
    );
}

#[tokio::test]
async fn a_parked_fetch_is_answered_when_a_record_arrives() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "parked", 1, &[]).await;
    let (id, payload) = raw.encode(12, &fetch_request("parked", 0, 60_000));
    raw.send_frame(&payload).await;
    // The fetch waits (up to 60 s) for data: nothing may come back yet.
    assert!(
        raw.is_silent_for(Duration::from_millis(500)).await,
        "an empty fetch with min_bytes=1 answered at once"
    );
    let producer = producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<str, str>::to("parked")
        .partition(0)
        .key("k")
        .payload("wake up");
    assert_eq!(
        await_delivery(send_or_wait(&producer, record)).await,
        Ok((0, 0))
    );
    // Well before the 60 s wait ends (receive gives up after READ_WAIT = 10 s),
    // the fetch is answered with the record.
    let response = raw.receive::<FetchRequest>(12, id).await;
    let p = &response.responses[0].partitions[0];
    let records = decode_records(p.records.as_ref().expect("records"));
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].offset, records[0].value.as_deref()),
        (0, Some(&b"wake up"[..]))
    );
}

#[tokio::test]
async fn an_empty_fetch_waits_at_most_max_wait_and_answers_without_error() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "idle", 1, &[]).await;
    let response = raw.call(12, &fetch_request("idle", 0, 200)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(
        (response.error_code, p.error_code, p.high_watermark),
        (0, 0, 0)
    );
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

//! Parked fetches wake only for the partitions they asked for: 200 fetches
//! wait on 200 partitions, a produce to one answers exactly that fetch, and
//! the rest stay parked until the broker stops. (Their cost per append is
//! measured by `cargo bench --bench fetch_wakeups`.)

mod common;

use std::time::Duration;

use common::raw::*;
use common::*;
use kafka_protocol::messages::FetchRequest;

const PARTITIONS: i32 = 200;
const FETCH_VERSION: i16 = 12;

/// Sends a parked fetch on its own connection; returns it with the correlation id.
async fn park(bootstrap: &str, topic: &str, partition: i32) -> (Raw, i32) {
    let mut raw = Raw::connect(bootstrap).await;
    let (correlation_id, payload) = raw.encode(
        FETCH_VERSION,
        &fetch_request(topic, &[partition], 0, 60_000),
    );
    raw.send_frame(&payload).await;
    (raw, correlation_id)
}

/// Reads the answer to a parked fetch: (high watermark, values of its records).
async fn answer(raw: &mut Raw, correlation_id: i32) -> (i64, Vec<String>) {
    let response = raw
        .receive::<FetchRequest>(FETCH_VERSION, correlation_id)
        .await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let values = decode_records(p.records.as_ref().expect("records"))
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    (p.high_watermark, values)
}

#[tokio::test]
async fn a_produce_wakes_only_the_fetch_parked_on_its_partition() {
    let mut broker = start_broker().await;
    let topic = unique_topic("wakeups");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS, &[]).await;
    let mut parked = Vec::new();
    for partition in 0..PARTITIONS {
        parked.push(park(&broker.bootstrap(), &topic, partition).await);
    }

    let mut producer = Raw::connect(&broker.bootstrap()).await;
    for (partition, value) in [(17, "seventeen"), (18, "eighteen")] {
        let records = batch(&[record(0, 1_700_000_000_000, Some("k"), Some(value))]);
        assert_eq!(
            produce(&mut producer, 9, &topic, partition, records).await,
            (0, 0)
        );
        let (raw, correlation_id) = &mut parked[partition as usize];
        assert_eq!(
            answer(raw, *correlation_id).await,
            (1, vec![value.to_string()]),
            "the fetch on partition {partition}"
        );
    }
    // Both appends have been answered on their own partitions; no other fetch
    // has anything to say.
    for (partition, (raw, _)) in parked.iter_mut().enumerate() {
        if partition != 17 && partition != 18 {
            assert!(
                raw.is_silent_for(Duration::ZERO).await,
                "the fetch on partition {partition} answered"
            );
        }
    }

    // Stopping answers every parked fetch at once, empty.
    broker.stop().await;
    for (partition, (raw, correlation_id)) in parked.iter_mut().enumerate() {
        if partition != 17 && partition != 18 {
            assert_eq!(answer(raw, *correlation_id).await, (0, vec![]));
        }
    }
}

#[tokio::test]
async fn a_fetch_asking_for_no_bytes_still_waits_for_a_record() {
    let broker = start_broker().await;
    let topic = unique_topic("wakeups-no-bytes");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    // max_bytes 0, min_bytes 1: parked until a record comes (KIP-74 then
    // gives its first batch whole), not answered empty at once.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let request = fetch_request(&topic, &[0], 0, 60_000).with_max_bytes(0);
    let (correlation_id, payload) = raw.encode(FETCH_VERSION, &request);
    raw.send_frame(&payload).await;
    // Answered at once, the answer would be here well within this.
    assert!(
        raw.is_silent_for(Duration::from_millis(300)).await,
        "answered empty"
    );
    let mut producer = Raw::connect(&broker.bootstrap()).await;
    let records = batch(&[record(0, 1_700_000_000_000, Some("k"), Some("late"))]);
    assert_eq!(produce(&mut producer, 9, &topic, 0, records).await, (0, 0));
    assert_eq!(
        answer(&mut raw, correlation_id).await,
        (1, vec!["late".to_string()])
    );
}

//! Memory stays bounded by settings, not by load: 500 connections each push a
//! 1 MB record batch at once into the `sluice` binary, whose peak resident
//! memory must stay under [`PEAK_RSS_BOUND`]; every batch is acknowledged once,
//! and the log holds exactly what was acknowledged.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::*;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;

const CONNECTIONS: usize = 500;
const RECORDS_PER_BATCH: usize = 10;
const RECORD_BYTES: usize = 100_000;
/// `queued_max_request_bytes` for this test: 16 MiB of request bodies at a time.
const IN_FLIGHT: u64 = 16 << 20;
/// The stated bound: twice the in-flight budget (each body and the copy being
/// appended), response and socket buffers, and the broker's own ~12 MB.
/// Measured: ~37 MiB peak; without the budget the same load peaks near 110 MiB.
const PEAK_RSS_BOUND: u64 = 80 << 20;

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

fn one_megabyte_batch() -> Bytes {
    let value = "v".repeat(RECORD_BYTES);
    let records: Vec<_> = (0..RECORDS_PER_BATCH as i64)
        .map(|i| record(i, 1_700_000_000_000, None, Some(&value)))
        .collect();
    batch(&records)
}

#[test]
fn five_hundred_connections_pushing_megabyte_batches_stay_under_the_memory_bound() {
    let (_dir, data) = scratch_dir();
    let config = data.join("sluice.toml");
    std::fs::write(&config, format!("queued_max_request_bytes = {IN_FLIGHT}\n")).expect("config");
    let data_dir = data.join("data");
    let broker = BrokerProcess::start(&data_dir, &["--config", config.to_str().expect("utf-8")]);
    let topic = unique_topic("memory");
    block_on(create_topic(&broker.bootstrap, &topic, 1, &[]));
    let before = peak_rss(broker.pid());

    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(one_megabyte_batch())),
                ]),
        ]);
    let runtime = tokio::runtime::Runtime::new().expect("client runtime");
    let offsets: Vec<i64> = runtime.block_on(async {
        let mut raws = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            raws.push(Raw::connect(&broker.bootstrap).await);
        }
        let tasks: Vec<_> = raws
            .into_iter()
            .map(|mut raw| {
                let request = request.clone();
                tokio::spawn(async move {
                    let response =
                        tokio::time::timeout(Duration::from_secs(120), raw.call(9, &request))
                            .await
                            .expect("produce answered within 120 s");
                    let p = &response.responses[0].partition_responses[0];
                    assert_eq!(p.error_code, 0, "produce error");
                    p.base_offset
                })
            })
            .collect();
        let mut offsets = Vec::new();
        for task in tasks {
            offsets.push(task.await.expect("client task"));
        }
        offsets
    });
    let peak = peak_rss(broker.pid());

    // Every batch acknowledged once, at distinct offsets, and nothing else in the log.
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    let expected: Vec<i64> = (0..CONNECTIONS as i64)
        .map(|i| i * RECORDS_PER_BATCH as i64)
        .collect();
    assert_eq!(sorted, expected);
    let consumer = consumer(&broker.bootstrap, &[]);
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, (CONNECTIONS * RECORDS_PER_BATCH) as i64));
    eprintln!(
        "peak resident memory: {} MiB before, {} MiB after {CONNECTIONS} x 1 MB produces (bound {} MiB)",
        before >> 20,
        peak >> 20,
        PEAK_RSS_BOUND >> 20
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {} MiB is over the {} MiB bound",
        peak >> 20,
        PEAK_RSS_BOUND >> 20
    );
    broker.terminate();
}

//! Restarts: in-process (clean and unclean), and the `sluice` binary stopped
//! with SIGTERM or killed with SIGKILL mid-stream. Every acknowledged record
//! must come back at its offset, and topic settings must survive.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::Offset;
use rdkafka::admin::{ConfigSource, ResourceSpecifier};
use rdkafka::message::Timestamp;
use rdkafka::producer::FutureRecord;

#[path = "restart/binary.rs"]
mod binary;

/// Every record of `partitions`, read from the log start up to the high watermark.
fn read_all(bootstrap: &str, topic: &str, partitions: &[i32]) -> Vec<Rec> {
    let consumer = consumer(bootstrap, &[]);
    let mut expected = 0;
    for &p in partitions {
        let (low, high) = watermarks(&consumer, topic, p);
        expected += (high - low) as usize;
    }
    assign(&consumer, topic, partitions, Offset::Beginning);
    consume_exactly(&consumer, expected, Duration::from_secs(60))
}

/// The configured (non-default) settings of a topic.
async fn overrides(bootstrap: &str, topic: &str) -> BTreeMap<String, String> {
    let results = admin(bootstrap)
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let resource = results
        .into_iter()
        .next()
        .expect("one result")
        .expect("describe topic");
    resource
        .entries
        .into_iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const CONFIGS: [(&str, &str); 2] = [("retention.ms", "86400000"), ("segment.bytes", "65536")];

/// Produces `count` records with a key, a header and a timestamp to partition `p`.
async fn produce_rich(bootstrap: &str, topic: &str, p: i32, from: usize, count: usize) -> Vec<i64> {
    let producer = producer(bootstrap, &[("linger.ms", "5")]);
    let values: Vec<String> = (from..from + count)
        .map(|i| format!("p{p}-value-{i}-{}", "x".repeat(i % 50)))
        .collect();
    let keys: Vec<String> = (from..from + count).map(|i| format!("k{i}")).collect();
    let pending: Vec<_> = (0..count)
        .map(|i| {
            let record = FutureRecord::to(topic)
                .partition(p)
                .key(&keys[i])
                .payload(&values[i])
                .timestamp(1_000_000 + (from + i) as i64)
                .headers(headers(&[("n", Some((from + i).to_string().as_bytes()))]));
            send_or_wait(&producer, record)
        })
        .collect();
    let mut offsets = Vec::new();
    for p in pending {
        offsets.push(await_delivery(p).await.expect("acknowledged").1);
    }
    offsets
}

fn check_rich(records: &[Rec], p: i32, count: usize) {
    let mine: Vec<&Rec> = records.iter().filter(|r| r.partition == p).collect();
    assert_eq!(mine.len(), count, "partition {p}: record count");
    for (i, r) in mine.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "partition {p}: offset");
        assert_eq!(
            r.key.as_deref(),
            Some(format!("k{i}").as_bytes()),
            "partition {p}: key at {i}"
        );
        assert_eq!(
            r.value_str(),
            format!("p{p}-value-{i}-{}", "x".repeat(i % 50)),
            "partition {p}: value at {i}"
        );
        assert_eq!(
            r.headers,
            vec![("n".to_string(), Some(i.to_string().into_bytes()))],
            "partition {p}: headers at {i}"
        );
        assert_eq!(
            r.timestamp,
            Timestamp::CreateTime(1_000_000 + i as i64),
            "partition {p}: timestamp at {i}"
        );
    }
}

#[tokio::test]
async fn a_clean_restart_keeps_records_offsets_and_topic_configs() {
    let mut broker = start_broker_with(|c| c.log.segment_bytes = 256 * 1024).await;
    let topic = unique_topic("restart");
    create_topic(&broker.bootstrap(), &topic, 2, &CONFIGS).await;
    assert_eq!(
        produce_rich(&broker.bootstrap(), &topic, 0, 0, 3000).await,
        (0..3000).collect::<Vec<_>>()
    );
    assert_eq!(
        produce_rich(&broker.bootstrap(), &topic, 1, 0, 200).await,
        (0..200).collect::<Vec<_>>()
    );

    broker.restart().await;
    let records = read_all(&broker.bootstrap(), &topic, &[0, 1]);
    check_rich(&records, 0, 3000);
    check_rich(&records, 1, 200);
    assert_eq!(overrides(&broker.bootstrap(), &topic).await, map(&CONFIGS));
    // Appends continue where the log ended.
    assert_eq!(
        produce_rich(&broker.bootstrap(), &topic, 0, 3000, 5).await,
        (3000..3005).collect::<Vec<_>>()
    );

    broker.restart().await;
    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(watermarks(&consumer, &topic, 0), (0, 3005));
    assert_eq!(watermarks(&consumer, &topic, 1), (0, 200));
}

#[tokio::test]
async fn after_a_clean_restart_offsets_are_answered_from_the_stop_without_opening_the_log() {
    let mut broker = start_broker().await;
    let topic = unique_topic("closed");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    assert_eq!(
        produce_n(&producer, &topic, 0, 30).await,
        (0..30).collect::<Vec<_>>()
    );
    drop(producer);

    broker.restart().await;
    let marker = broker.data_dir().join(format!("{topic}-0/.clean-shutdown"));
    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(watermarks(&consumer, &topic, 0), (0, 30));
    assert!(marker.exists(), "ListOffsets opened the log");

    // The first read opens it, from where it stopped.
    assign(&consumer, &topic, &[0], Offset::Offset(28));
    let tail = consume_exactly(&consumer, 2, Duration::from_secs(30));
    assert_eq!(
        tail.iter()
            .map(|r| (r.offset, r.value_str()))
            .collect::<Vec<_>>(),
        [(28, "value-28"), (29, "value-29")]
    );
    assert!(!marker.exists(), "the opened log still has its marker");
    assert_eq!(watermarks(&consumer, &topic, 0), (0, 30));
}

#[tokio::test]
async fn an_unclean_stop_recovers_everything_that_was_acknowledged() {
    let mut broker = start_broker_with(|c| c.log.segment_bytes = 256 * 1024).await;
    let topic = unique_topic("unclean");
    create_topic(&broker.bootstrap(), &topic, 1, &CONFIGS).await;
    assert_eq!(
        produce_rich(&broker.bootstrap(), &topic, 0, 0, 2500).await,
        (0..2500).collect::<Vec<_>>()
    );

    broker.kill().await;
    broker.start_again().await;
    let records = read_all(&broker.bootstrap(), &topic, &[0]);
    check_rich(&records, 0, 2500);
    assert_eq!(overrides(&broker.bootstrap(), &topic).await, map(&CONFIGS));
    let producer = producer(&broker.bootstrap(), &[]);
    assert_eq!(
        produce_n(&producer, &topic, 0, 3).await,
        vec![2500, 2501, 2502]
    );
}

#[tokio::test]
async fn a_damaged_offset_index_is_read_past_and_rebuilt_by_the_fetch_that_finds_it() {
    let mut broker = start_broker().await;
    let topic = unique_topic("damaged-index");
    let configs = [("segment.bytes", "65536"), ("index.interval.bytes", "1024")];
    create_topic(&broker.bootstrap(), &topic, 1, &configs).await;
    // Small batches, so that the first segment holds many, indexed.
    let producer = producer(&broker.bootstrap(), &[("batch.size", "2000")]);
    assert_eq!(
        produce_n(&producer, &topic, 0, 3000).await,
        (0..3000).collect::<Vec<_>>()
    );
    drop(producer);
    broker.stop().await;
    // The first segment's index, as a disk fault might leave it: every
    // entry but the first points inside a batch.
    let index = broker
        .data_dir()
        .join(format!("{topic}-0/00000000000000000000.index"));
    let intact = std::fs::read(&index).unwrap();
    assert!(intact.len() >= 16, "{} bytes", intact.len());
    let mut garbled = intact.clone();
    for entry in 1..garbled.len() / 8 {
        garbled[entry * 8 + 7] ^= 0x5a;
    }
    std::fs::write(&index, garbled).unwrap();

    broker.start_again().await;
    let records = read_all(&broker.bootstrap(), &topic, &[0]);
    assert_eq!(
        records
            .iter()
            .map(|r| (r.offset, r.value_str().to_string()))
            .collect::<Vec<_>>(),
        (0..3000)
            .map(|i| (i, format!("value-{i}")))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        std::fs::read(&index).unwrap(),
        intact,
        "the index was rebuilt"
    );
}

#[tokio::test]
async fn deleted_records_and_topics_stay_deleted_after_a_restart() {
    let mut broker = start_broker().await;
    let (kept, gone) = (unique_topic("kept"), unique_topic("gone"));
    create_topic(&broker.bootstrap(), &kept, 1, &[]).await;
    create_topic(&broker.bootstrap(), &gone, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    for i in 0..10 {
        assert_eq!(produce_n(&producer, &kept, 0, 1).await, vec![i]);
    }
    let admin = admin(&broker.bootstrap());
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&kept, 0, Offset::Offset(7))
        .expect("tpl");
    admin
        .delete_records(&tpl, &admin_opts())
        .await
        .expect("DeleteRecords");
    assert_eq!(
        admin
            .delete_topics(&[&gone], &admin_opts())
            .await
            .expect("DeleteTopics"),
        vec![Ok(gone.clone())]
    );

    broker.restart().await;
    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(
        watermarks(&consumer, &kept, 0),
        (7, 10),
        "log start offset after restart"
    );
    let md = common::admin(&broker.bootstrap())
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, vec![kept.as_str()]);
}

#[tokio::test]
async fn a_clean_stop_does_not_wait_for_a_parked_fetch() {
    use common::raw::{Raw, fetch_request};

    let mut broker = start_broker().await;
    let topic = unique_topic("parked-at-stop");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let request = fetch_request(&topic, &[0], 0, 120_000);
    let (correlation_id, payload) = raw.encode(12, &request);
    raw.send_frame(&payload).await;
    assert!(
        raw.is_silent_for(Duration::from_millis(300)).await,
        "the fetch should be parked"
    );
    // The fetch would wait two minutes; stopping must not, and the fetch
    // is answered (with no records) before its connection closes.
    let (stopped, answer) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), broker.stop()),
        raw.receive::<kafka_protocol::messages::FetchRequest>(12, correlation_id)
    );
    stopped.expect("Broker::shutdown waited for a parked fetch");
    assert_eq!(answer.error_code, 0);
    let partitions: Vec<_> = answer
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.error_code, p.high_watermark))
        .collect();
    assert_eq!(partitions, vec![(0, 0, 0)]);
    assert!(
        raw.is_closed().await,
        "the connection closes after the answer"
    );
}

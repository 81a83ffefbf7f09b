//! A disk that misbehaves on command (storage::testing::FaultyDisk, no root
//! or tmpfs needed): write errors (EIO, ENOSPC) refuse that partition's
//! produce and leave its log unchanged; a failed fsync fails the partition
//! for good (until restart), but a sync that runs out of descriptors fails
//! only its produce; a failed read answers KAFKA_STORAGE_ERROR for
//! that partition only; a machine crash that drops every unsynced byte keeps
//! all that `flush = "always"` acknowledged, and leaves a clean prefix with
//! `flush = "os"`; under `flush = "always"` consumers read only what is
//! fsynced; a topic whose partition cannot be opened (out of descriptors)
//! is not created at all and leaves nothing behind.

mod common;

use bytes::Bytes;
use common::raw::*;
use common::*;
use rdkafka::Offset;
use rdkafka::admin::{NewPartitions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use sluice::config::FlushMode;
use sluice::storage::testing::{DiskOp, FaultyDisk};

const KAFKA_STORAGE_ERROR: i16 = 56;

fn one(value: &str) -> Bytes {
    batch(&[record(0, 1_700_000_000_000, Some("k"), Some(value))])
}

/// The values of partition `partition` read from the beginning by rdkafka, with offsets.
async fn read_back(bootstrap: &str, topic: &str, partition: i32, n: usize) -> Vec<(i64, String)> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    blocking(move || {
        let consumer = consumer(&bootstrap, &[]);
        assign(&consumer, &topic, &[partition], Offset::Beginning);
        consume_exactly(&consumer, n, WAIT)
            .iter()
            .map(|r| (r.offset, r.value_str().to_string()))
            .collect()
    })
    .await
}

/// A raw Fetch of partitions 0 and 1 from offset 0: (error code, values) of each.
async fn fetch_both(raw: &mut Raw, topic: &str) -> Vec<(i16, Vec<String>)> {
    let request = fetch_request(topic, &[0, 1], 0, 0);
    let response = raw.call(12, &request).await;
    response.responses[0]
        .partitions
        .iter()
        .map(|p| {
            let records = p.records.clone().unwrap_or_default();
            let values = decode_records(&records)
                .iter()
                .map(|r| {
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
                })
                .collect();
            (p.error_code, values)
        })
        .collect()
}

#[tokio::test]
async fn write_errors_refuse_that_partition_only_and_leave_its_log_unchanged() {
    for (errno, name) in [(libc::EIO, "eio"), (libc::ENOSPC, "enospc")] {
        let disk = FaultyDisk::new();
        let broker = start_broker_on(disk.clone(), |_| {}).await;
        let topic = unique_topic(&format!("write-{name}"));
        create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        assert_eq!(produce(&mut raw, 9, &topic, 0, one("a")).await, (0, 0));

        disk.fail(DiskOp::Write, &format!("{topic}-0/"), errno);
        assert_eq!(
            produce(&mut raw, 9, &topic, 0, one("refused")).await,
            (KAFKA_STORAGE_ERROR, -1),
            "{name}"
        );
        assert_eq!(produce(&mut raw, 9, &topic, 1, one("other")).await, (0, 0));

        disk.clear();
        assert_eq!(produce(&mut raw, 9, &topic, 0, one("b")).await, (0, 1));
        assert_eq!(
            read_back(&broker.bootstrap(), &topic, 0, 2).await,
            vec![(0, "a".to_string()), (1, "b".to_string())],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_failed_fsync_fails_the_partition_until_restart() {
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    let topic = unique_topic("fsync");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut raw, 9, &topic, 0, one("a")).await, (0, 0));

    disk.fail_times(DiskOp::Sync, &format!("{topic}-0/"), libc::EIO, Some(1));
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, one("lost?")).await.0,
        KAFKA_STORAGE_ERROR
    );
    // The fault is gone, but after a failed fsync the page cache cannot be
    // trusted: the partition stays failed. Its neighbour is fine.
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, one("still refused"))
            .await
            .0,
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(produce(&mut raw, 9, &topic, 1, one("other")).await, (0, 0));
    // Consumers read only what is fsynced: not the record whose fsync failed,
    // which a power loss may take (and whose producer sends it again).
    assert_eq!(
        fetch_both(&mut raw, &topic).await,
        vec![(0, vec!["a".to_string()]), (0, vec!["other".to_string()])]
    );

    // A restart recovers the partition from what is on disk.
    broker.kill().await;
    broker.start_again().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (code, offset) = produce(&mut raw, 9, &topic, 0, one("after")).await;
    assert_eq!(code, 0);
    let got = read_back(&broker.bootstrap(), &topic, 0, offset as usize + 1).await;
    assert_eq!(got.first(), Some(&(0, "a".to_string())));
    assert_eq!(got.last(), Some(&(offset, "after".to_string())));
}

/// Under `flush = "always"` consumers wait for the fsync, so records that
/// no answer waits for (acks=0) are fsynced all the same.
#[tokio::test]
async fn records_produced_without_acks_are_read_under_flush_always() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    let topic = unique_topic("acks0-always");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let unacknowledged = producer(&broker.bootstrap(), &[("acks", "0")]);
    produce_n(&unacknowledged, &topic, 0, 3).await;
    let want: Vec<(i64, String)> = (0..3).map(|i| (i, format!("value-{i}"))).collect();
    assert_eq!(read_back(&broker.bootstrap(), &topic, 0, 3).await, want);
}

/// Under `flush = "always"` the high watermark waits for the fsync, but
/// never moves back: not when a produce rolls a segment whose index files
/// are not fsynced yet (the records below it are).
#[tokio::test]
async fn the_high_watermark_never_moves_back_under_flush_always() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    let topic = unique_topic("hw-always");
    create_topic(&broker.bootstrap(), &topic, 1, &[("segment.bytes", "1024")]).await;
    const BATCHES: i64 = 60;
    let producing = tokio::spawn({
        let (bootstrap, topic) = (broker.bootstrap(), topic.clone());
        async move {
            let mut raw = Raw::connect(&bootstrap).await;
            for i in 0..BATCHES {
                let value = format!("{i:0>200}");
                assert_eq!(produce(&mut raw, 9, &topic, 0, one(&value)).await, (0, i));
            }
        }
    });
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut seen = Vec::new();
    while !producing.is_finished() {
        let (code, latest, _) = list_offset(&mut raw, 7, &topic, -1).await;
        assert_eq!(code, 0);
        seen.push(latest);
    }
    producing.await.expect("producer");
    seen.push(list_offset(&mut raw, 7, &topic, -1).await.1);
    assert_eq!(seen.last(), Some(&BATCHES));
    let went_back: Vec<_> = seen.windows(2).filter(|w| w[1] < w[0]).collect();
    assert!(
        went_back.is_empty(),
        "the latest offset went back: {went_back:?}"
    );
}

#[tokio::test]
async fn a_read_error_answers_storage_error_for_that_partition_only() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("read");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut raw, 9, &topic, 0, one("a")).await, (0, 0));
    assert_eq!(produce(&mut raw, 9, &topic, 1, one("b")).await, (0, 0));

    disk.fail(DiskOp::Read, &format!("{topic}-0/"), libc::EIO);
    assert_eq!(
        fetch_both(&mut raw, &topic).await,
        vec![(KAFKA_STORAGE_ERROR, vec![]), (0, vec!["b".to_string()])]
    );
    disk.clear();
    assert_eq!(
        read_back(&broker.bootstrap(), &topic, 0, 1).await,
        vec![(0, "a".to_string())]
    );
}

#[tokio::test]
async fn a_crash_that_drops_unsynced_bytes_keeps_what_flush_always_acknowledged() {
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    let topic = unique_topic("crash-always");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let offsets = produce_n(&producer(&broker.bootstrap(), &[]), &topic, 0, 300).await;
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>());

    broker.kill().await;
    disk.drop_unsynced().expect("model the crash");
    broker.start_again().await;
    let want: Vec<(i64, String)> = (0..300).map(|i| (i, format!("value-{i}"))).collect();
    assert_eq!(read_back(&broker.bootstrap(), &topic, 0, 300).await, want);
}

#[tokio::test]
async fn a_crash_that_drops_unsynced_bytes_leaves_a_clean_prefix_with_flush_os() {
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |c| c.log.segment_bytes = 4096).await;
    let topic = unique_topic("crash-os");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let small_batches = producer(&broker.bootstrap(), &[("batch.num.messages", "50")]);
    produce_n(&small_batches, &topic, 0, 1000).await;

    broker.kill().await;
    disk.drop_unsynced().expect("model the crash");
    broker.start_again().await;
    // Whatever survived is the acknowledged records from offset 0 on, and
    // the partition takes new records right after it.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (code, end) = produce(&mut raw, 9, &topic, 0, one("after")).await;
    assert_eq!(code, 0);
    assert!(end <= 1000, "end {end}");
    let got = read_back(&broker.bootstrap(), &topic, 0, end as usize + 1).await;
    let mut want: Vec<(i64, String)> = (0..end).map(|i| (i, format!("value-{i}"))).collect();
    want.push((end, "after".to_string()));
    assert_eq!(got, want);
}

/// A write error answers KAFKA_STORAGE_ERROR and leaves the log unchanged,
/// so an idempotent producer's retries store every record once, in order.
#[tokio::test]
async fn idempotent_producers_under_intermittent_write_errors_lose_and_duplicate_nothing() {
    const ROUNDS: usize = 6;
    const PER_ROUND: usize = 300;
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("flaky-writes");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("enable.idempotence", "true")]);
    let values: Vec<String> = (0..ROUNDS * PER_ROUND).map(|i| format!("v{i}")).collect();
    let mut acked: Vec<Vec<(i64, String)>> = vec![Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        // The next write of one partition fails (EIO), while records flow to both.
        let partition = round % 2;
        disk.fail_times(
            DiskOp::Write,
            &format!("{topic}-{partition}/"),
            libc::EIO,
            Some(1),
        );
        let range = round * PER_ROUND..(round + 1) * PER_ROUND;
        let pending: Vec<_> = range
            .clone()
            .map(|i| {
                let record = rdkafka::producer::FutureRecord::<str, str>::to(&topic)
                    .partition((i % 2) as i32)
                    .payload(&values[i]);
                send_or_wait(&producer, record)
            })
            .collect();
        for (i, p) in range.zip(pending) {
            let (partition, offset) = await_delivery(p).await.expect("delivered after retries");
            acked[partition as usize].push((offset, values[i].clone()));
        }
    }
    assert_eq!(disk.injected(), ROUNDS as u64, "every fault was hit");
    for (partition, want) in acked.iter_mut().enumerate() {
        want.sort();
        let got = read_back(&broker.bootstrap(), &topic, partition as i32, want.len()).await;
        // Every acknowledged record once, at its offset, in send order.
        assert_eq!(&got, want, "partition {partition}");
        let sent: Vec<&String> = values.iter().skip(partition).step_by(2).collect();
        let stored: Vec<&String> = got.iter().map(|(_, v)| v).collect();
        assert_eq!(stored, sent, "partition {partition}");
    }
}

/// A sync that cannot open a rolled segment's index for want of a
/// descriptor fails the produce waiting on it with KAFKA_STORAGE_ERROR; the
/// partition stays writable, and the producer's retry of that batch is
/// answered with the offset it was given.
#[tokio::test]
async fn a_produce_whose_sync_runs_out_of_descriptors_is_refused_and_its_retry_answered_with_its_offset()
 {
    use kafka_protocol::messages::InitProducerIdRequest;
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    let topic = unique_topic("sync-emfile-raw");
    create_topic(&broker.bootstrap(), &topic, 1, &[("segment.bytes", "1024")]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let request = InitProducerIdRequest::default().with_transaction_timeout_ms(60_000);
    let id = raw.call(4, &request).await;
    assert_eq!(id.error_code, 0);
    let value = |seq: i32| format!("{seq:0>200}");
    let idempotent = |seq: i32| {
        let mut r = record(0, 1_700_000_000_000, Some("k"), Some(&value(seq)));
        (r.producer_id, r.producer_epoch, r.sequence) = (id.producer_id.0, id.producer_epoch, seq);
        batch(&[r])
    };
    // Out of descriptors until cleared: the produce that rolls the first
    // segment cannot open its offset index to fsync it.
    let index = format!("{topic}-0/00000000000000000000.index");
    disk.fail(DiskOp::Open, &index, libc::EMFILE);
    let mut seq = 0;
    let refused = loop {
        let (code, offset) = produce(&mut raw, 9, &topic, 0, idempotent(seq)).await;
        if code == KAFKA_STORAGE_ERROR {
            break seq;
        }
        assert_eq!((code, offset), (0, i64::from(seq)));
        seq += 1;
        assert!(seq < 10, "no roll in {seq} batches of 200 B");
    };
    disk.clear();
    let retry = produce(&mut raw, 9, &topic, 0, idempotent(refused)).await;
    assert_eq!(
        retry,
        (0, i64::from(refused)),
        "the offset the batch was given"
    );
    let next = produce(&mut raw, 9, &topic, 0, idempotent(refused + 1)).await;
    assert_eq!(next, (0, i64::from(refused) + 1));
    let want: Vec<(i64, String)> = (0..=refused + 1)
        .map(|s| (i64::from(s), value(s)))
        .collect();
    let got = read_back(&broker.bootstrap(), &topic, 0, want.len()).await;
    assert_eq!(got, want, "every batch once, at its offset");
}

/// Through librdkafka, whose idempotent producer retries on its own: across
/// a sync that runs out of descriptors (the produce's own, or the
/// background flush's), every record is delivered and stored once, in
/// order, and the partition stays writable (with a log that EMFILE
/// poisoned, deliveries time out).
#[tokio::test]
async fn an_idempotent_producer_rides_out_a_sync_that_runs_out_of_descriptors() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    let topic = unique_topic("sync-emfile");
    create_topic(&broker.bootstrap(), &topic, 1, &[("segment.bytes", "1024")]).await;
    // The first roll's sync opens the sealed segment's offset index: EMFILE.
    let index = format!("{topic}-0/00000000000000000000.index");
    disk.fail_times(DiskOp::Open, &index, libc::EMFILE, Some(1));
    let producer = producer(
        &broker.bootstrap(),
        &[("enable.idempotence", "true"), ("linger.ms", "0")],
    );
    let values: Vec<String> = (0..200).map(|i| format!("value-{i:04}")).collect();
    let mut acked = Vec::new();
    // In rounds, so that the batches fill and roll 1 KiB segments.
    for round in values.chunks(20) {
        let pending = send_values(&producer, &topic, round);
        for (value, p) in round.iter().zip(pending) {
            let (_, offset) = await_delivery(p).await.expect("delivered");
            acked.push((offset, value.clone()));
        }
    }
    assert_eq!(disk.injected(), 1, "the fault was hit");
    let got = read_back(&broker.bootstrap(), &topic, 0, values.len()).await;
    let want: Vec<(i64, String)> = (0..).zip(values).collect();
    assert_eq!(got, want, "every record once, at its offset");
    // librdkafka may acknowledge a batch it retried after an error without
    // an offset, once a later batch of the producer is accepted in sequence.
    acked.retain(|(offset, _)| *offset != rdkafka::Offset::Invalid.to_raw().unwrap());
    assert!(
        acked.len() >= want.len() - 20,
        "{} with offsets",
        acked.len()
    );
    assert!(acked.iter().all(|a| want.contains(a)), "{acked:?}");
    // The partition stays writable.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(
        produce(&mut raw, 9, &topic, 0, one("after")).await,
        (0, 200)
    );
}

/// Partition directories of `topic` in `data_dir`.
fn partition_dirs(data_dir: &std::path::Path, topic: &str) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(data_dir)
        .expect("data dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| name.starts_with(&format!("{topic}-")))
        .collect();
    dirs.sort();
    dirs
}

#[tokio::test]
async fn a_topic_whose_partition_cannot_be_opened_is_created_whole_or_not_at_all() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("whole");
    let admin = admin(&broker.bootstrap());
    let new = NewTopic::new(&topic, 6, TopicReplication::Fixed(1));

    disk.fail(DiskOp::Open, &format!("{topic}-3/"), libc::EMFILE);
    let results = admin
        .create_topics([&new], &admin_opts())
        .await
        .expect("CreateTopics request");
    assert_eq!(
        results,
        vec![Err((topic.clone(), RDKafkaErrorCode::KafkaStorageError))]
    );
    assert_eq!(
        partition_dirs(broker.data_dir(), &topic),
        Vec::<String>::new()
    );

    disk.clear();
    let results = admin
        .create_topics([&new], &admin_opts())
        .await
        .expect("CreateTopics request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(partition_dirs(broker.data_dir(), &topic).len(), 6);

    // Growing it is all or nothing too.
    disk.fail(DiskOp::Open, &format!("{topic}-7/"), libc::EMFILE);
    let grow = NewPartitions::new(&topic, 9);
    let results = admin
        .create_partitions([&grow], &admin_opts())
        .await
        .expect("CreatePartitions request");
    assert_eq!(
        results,
        vec![Err((topic.clone(), RDKafkaErrorCode::KafkaStorageError))]
    );
    assert_eq!(partition_dirs(broker.data_dir(), &topic).len(), 6);
    disk.clear();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut raw, 9, &topic, 5, one("last")).await, (0, 0));
    assert_eq!(
        read_back(&broker.bootstrap(), &topic, 5, 1).await,
        vec![(0, "last".to_string())]
    );
}

#[tokio::test]
async fn offsets_of_a_partition_that_cannot_be_opened_are_a_storage_error_not_zero() {
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("unopenable");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for (i, value) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(
            produce(&mut raw, 9, &topic, 0, one(value)).await,
            (0, i as i64)
        );
    }
    broker.stop().await;
    // A marker without the summary the close writes (as an older version
    // wrote it): the offsets are known only by opening the log, which runs
    // out of descriptors.
    let marker = broker.data_dir().join(format!("{topic}-0/.clean-shutdown"));
    std::fs::write(&marker, b"").expect("marker");
    disk.fail(DiskOp::Open, &format!("{topic}-0/"), libc::EMFILE);
    broker.start_again().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for timestamp in [-1, -2] {
        let (code, _, _) = list_offset(&mut raw, 7, &topic, timestamp).await;
        assert_eq!(code, KAFKA_STORAGE_ERROR, "ListOffsets {timestamp}");
    }
    // Descriptors back: the partition opens on its next use.
    disk.clear();
    assert_eq!(list_offset(&mut raw, 7, &topic, -1).await, (0, 3, -1));
    assert_eq!(list_offset(&mut raw, 7, &topic, -2).await, (0, 0, -1));
    let got = read_back(&broker.bootstrap(), &topic, 0, 3).await;
    assert_eq!(
        got,
        [(0, "a"), (1, "b"), (2, "c")].map(|(o, v)| (o, v.to_string()))
    );
}

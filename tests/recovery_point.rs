//! The recovery point checkpoint: rolled segments are fsynced in the
//! background and `<data_dir>/recovery-point-offset-checkpoint` (Kafka's
//! format) moves past them; a clean stop records every log end; after an
//! unclean stop a torn active segment is cut and everything below it reads back;
//! a background sync that ran out of descriptors is tried again by itself.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::Offset;

const COUNT: usize = 3_000;

/// The checkpoint's offset for `topic`-0, if the file names it.
fn checkpoint(data_dir: &Path, topic: &str) -> Option<i64> {
    let text = std::fs::read_to_string(data_dir.join("recovery-point-offset-checkpoint")).ok()?;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "version line of {text:?}");
    let count: usize = lines.next()?.parse().expect("count line");
    let entries: Vec<&str> = lines.collect();
    assert_eq!(entries.len(), count, "{text:?}");
    entries.iter().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields[0] == topic && fields[1] == "0").then(|| fields[2].parse().expect("offset"))
    })
}

/// Base offsets of the segments of `topic`-0, ascending.
fn segment_bases(data_dir: &Path, topic: &str) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(data_dir.join(format!("{topic}-0")))
        .expect("partition dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

fn read_everything(bootstrap: &str, topic: &str) -> Vec<Rec> {
    let consumer = consumer(bootstrap, &[]);
    assign(&consumer, topic, &[0], Offset::Beginning);
    consume_exactly(&consumer, COUNT, WAIT)
}

#[tokio::test]
async fn rolled_segments_move_the_recovery_point_and_a_crash_keeps_every_record() {
    let mut broker = start_broker_with(|c| c.log.segment_bytes = 4 * 1024).await;
    let topic = unique_topic("recovery-point");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let small_batches = producer(&broker.bootstrap(), &[("batch.num.messages", "100")]);
    let offsets = produce_n(&small_batches, &topic, 0, COUNT).await;
    assert_eq!(offsets, (0..COUNT as i64).collect::<Vec<_>>());
    let bases = segment_bases(broker.data_dir(), &topic);
    let active = *bases.last().expect("segments");
    assert!(bases.len() >= 3, "the log rolled: {bases:?}");

    // The background flusher fsyncs every sealed segment and records it.
    let deadline = Instant::now() + WAIT;
    while checkpoint(broker.data_dir(), &topic).is_none_or(|p| p < active) {
        assert!(
            Instant::now() < deadline,
            "the recovery point never passed {active}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A clean stop records the end of every log.
    broker.stop().await;
    assert_eq!(checkpoint(broker.data_dir(), &topic), Some(COUNT as i64));
    broker.start_again().await;

    // A crash with a torn write at the end of the active segment: the torn
    // bytes are cut, every acknowledged record is still there.
    broker.kill().await;
    let active = segment_bases(broker.data_dir(), &topic)
        .pop()
        .expect("segments");
    let path = broker
        .data_dir()
        .join(format!("{topic}-0/{active:020}.log"));
    let mut bytes = std::fs::read(&path).expect("active segment");
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x0b, 0xb8, 0, 0, 0, 200, 0xff, 0xff]);
    std::fs::write(&path, bytes).expect("tear the active segment");
    broker.start_again().await;
    let bootstrap = broker.bootstrap();
    let topic_name = topic.clone();
    let records = blocking(move || read_everything(&bootstrap, &topic_name)).await;
    let got: Vec<(i64, String)> = records
        .iter()
        .map(|r| (r.offset, r.value_str().to_string()))
        .collect();
    let want: Vec<(i64, String)> = (0..COUNT)
        .map(|i| (i as i64, format!("value-{i}")))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_segment_rolled_by_its_age_moves_the_recovery_point_without_another_append() {
    let broker = start_broker_with(|c| c.retention_check_interval_ms = 50).await;
    let topic = unique_topic("aged-roll");
    create_topic(&broker.bootstrap(), &topic, 1, &[("segment.ms", "200")]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    assert_eq!(
        produce_n(&producer, &topic, 0, 10).await,
        (0..10).collect::<Vec<_>>()
    );
    // The retention task rolls the segment once it is 200 ms old (on a
    // loaded machine it may also have rolled between two of the ten); with
    // no append after the last roll, that roll alone gets the sealed
    // segments fsynced.
    let deadline = Instant::now() + WAIT;
    while segment_bases(broker.data_dir(), &topic).last() != Some(&10)
        || checkpoint(broker.data_dir(), &topic) != Some(10)
    {
        assert!(
            Instant::now() < deadline,
            "segments {:?}, recovery point {:?}",
            segment_bases(broker.data_dir(), &topic),
            checkpoint(broker.data_dir(), &topic)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rolled_segment_whose_background_sync_ran_out_of_descriptors_is_synced_without_another_append()
 {
    use common::raw::{Raw, batch, produce, record};
    use sluice::storage::testing::{DiskOp, FaultyDisk};
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("flush-emfile");
    create_topic(&broker.bootstrap(), &topic, 1, &[("segment.bytes", "1024")]).await;
    // The background flusher's first try to open the sealed offset index
    // to fsync it finds no descriptor left.
    let index = format!("{topic}-0/00000000000000000000.index");
    disk.fail_times(DiskOp::Open, &index, libc::EMFILE, Some(1));
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let value = "v".repeat(200);
    let mut offset = 0;
    while segment_bases(broker.data_dir(), &topic).len() < 2 {
        let one = batch(&[record(0, 1_700_000_000_000, Some("k"), Some(&value))]);
        assert_eq!(produce(&mut raw, 9, &topic, 0, one).await, (0, offset));
        offset += 1;
        assert!(offset < 10, "no roll in {offset} batches of 200 B");
    }
    let active = segment_bases(broker.data_dir(), &topic)[1];
    // No append follows: the flusher tries again by itself.
    let deadline = Instant::now() + WAIT;
    while disk.injected() < 1 || checkpoint(broker.data_dir(), &topic).is_none_or(|p| p < active) {
        assert!(
            Instant::now() < deadline,
            "faults {}, recovery point {:?}, want {active}",
            disk.injected(),
            checkpoint(broker.data_dir(), &topic)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(disk.injected(), 1);
}

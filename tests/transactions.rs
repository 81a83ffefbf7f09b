//! Transactions through rdkafka: a transactional producer commits and
//! aborts; read_committed consumers see exactly the committed records,
//! read_uncommitted ones everything; offsets sent to a transaction are
//! committed with it (and not when it aborts); a second producer with the
//! same transactional.id fences the first; a transaction left open by a
//! crash is aborted at start-up, so read_committed consumers move on; an
//! abort whose index entry cannot be written stays aborted across a restart;
//! a read_committed lookup by time does not find a record of an open
//! transaction.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureRecord, Producer, ThreadedProducer,
};
use rdkafka::{Offset, TopicPartitionList};

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn txn_producer(bootstrap: &str, id: &str) -> TxnProducer {
    let producer: TxnProducer = producer_config(bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("transactional producer");
    producer.init_transactions(WAIT).expect("init_transactions");
    producer
}

/// One transaction of `values` to partition 0, committed or aborted.
fn transaction(producer: &TxnProducer, topic: &str, values: &[&str], commit: bool) {
    producer.begin_transaction().expect("begin");
    for v in values {
        producer
            .send(BaseRecord::<str, str>::to(topic).partition(0).payload(v))
            .expect("enqueue");
    }
    // Aborting drops what the client has not sent yet: send it all first.
    producer.flush(WAIT).expect("flush");
    if commit {
        producer.commit_transaction(WAIT).expect("commit");
    } else {
        producer.abort_transaction(WAIT).expect("abort");
    }
}

fn pairs(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(o, v)| (*o, v.to_string())).collect()
}

#[tokio::test]
async fn read_committed_sees_committed_transactions_and_read_uncommitted_everything() {
    let broker = start_broker().await;
    let topic = unique_topic("txn");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let (committed, everything) = blocking(move || {
        let producer = txn_producer(&bootstrap, "txn-basic");
        transaction(&producer, &t, &["a", "b", "c"], true);
        transaction(&producer, &t, &["x", "y"], false);
        transaction(&producer, &t, &["d"], true);
        (
            read_values(&bootstrap, &t, "read_committed", 4),
            read_values(&bootstrap, &t, "read_uncommitted", 6),
        )
    })
    .await;
    // Each transaction ends with a marker, which takes an offset.
    assert_eq!(committed, pairs(&[(0, "a"), (1, "b"), (2, "c"), (7, "d")]));
    assert_eq!(
        everything,
        pairs(&[(0, "a"), (1, "b"), (2, "c"), (4, "x"), (5, "y"), (7, "d")])
    );
}

/// The offset a consumer with `isolation` finds for time `at` in partition
/// 0 (`Offset::End` when no record below its latest offset has that time).
fn offset_for_time(bootstrap: &str, topic: &str, isolation: &str, at: i64) -> Offset {
    let consumer = consumer(bootstrap, &[("isolation.level", isolation)]);
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(topic, 0, Offset::Offset(at))
        .expect("partition");
    let found = consumer
        .offsets_for_times(wanted, WAIT)
        .expect("offsets_for_times");
    found.elements()[0].offset()
}

/// As in Kafka, a record found by its time must be readable: a
/// read_committed consumer does not find one in an open transaction.
#[tokio::test]
async fn a_read_committed_lookup_by_time_skips_an_open_transaction() {
    let broker = start_broker().await;
    let topic = unique_topic("txn-time");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    blocking(move || {
        let producer = txn_producer(&bootstrap, "txn-time");
        let send = |value: &str, at: i64| {
            let record = BaseRecord::<str, str>::to(&t)
                .partition(0)
                .payload(value)
                .timestamp(at);
            producer.send(record).expect("enqueue");
            producer.flush(WAIT).expect("flush");
        };
        // Markers take the broker's time: "open" is set after theirs.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let (before, at) = (now - 60_000, now + 60_000);
        producer.begin_transaction().expect("begin");
        send("committed", before);
        producer.commit_transaction(WAIT).expect("commit");
        producer.begin_transaction().expect("begin");
        send("open", at);

        // "committed" is at 0, its marker at 1, "open" at 2.
        assert_eq!(
            offset_for_time(&bootstrap, &t, "read_uncommitted", at),
            Offset::Offset(2)
        );
        assert_eq!(
            offset_for_time(&bootstrap, &t, "read_committed", at),
            Offset::End
        );
        assert_eq!(
            offset_for_time(&bootstrap, &t, "read_committed", before),
            Offset::Offset(0)
        );
        producer.commit_transaction(WAIT).expect("commit");
        assert_eq!(
            offset_for_time(&bootstrap, &t, "read_committed", at),
            Offset::Offset(2)
        );
    })
    .await;
}

#[tokio::test]
async fn offsets_sent_to_a_transaction_are_committed_with_it_only() {
    let broker = start_broker().await;
    let topic = unique_topic("txn-offsets");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let committed = blocking(move || {
        let group = unique_topic("txn-group");
        let consumer: BaseConsumer = consumer_config(&bootstrap)
            .set("group.id", &group)
            .create()
            .expect("group consumer");
        let producer = txn_producer(&bootstrap, "txn-offsets");
        let offsets = |o: i64| {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, 0, Offset::Offset(o)).unwrap();
            tpl
        };
        let metadata = consumer.group_metadata().expect("group metadata");
        for (offset, commit) in [(5, true), (9, false)] {
            producer.begin_transaction().expect("begin");
            producer
                .send(BaseRecord::<str, str>::to(&t).partition(0).payload("out"))
                .expect("enqueue");
            producer
                .send_offsets_to_transaction(&offsets(offset), &metadata, WAIT)
                .expect("send offsets");
            if commit {
                producer.commit_transaction(WAIT).expect("commit");
            } else {
                producer.abort_transaction(WAIT).expect("abort");
            }
        }
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(&t, 0);
        consumer.committed_offsets(wanted, WAIT).expect("committed")
    })
    .await;
    let offset = committed
        .find_partition(&topic, 0)
        .expect("partition")
        .offset();
    assert_eq!(
        offset,
        Offset::Offset(5),
        "the aborted transaction's 9 must not land"
    );
}

#[tokio::test]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let broker = start_broker().await;
    let topic = unique_topic("txn-fence");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let (first_commit, committed) = blocking(move || {
        let first = txn_producer(&bootstrap, "txn-fenced");
        first.begin_transaction().expect("begin");
        first
            .send(
                BaseRecord::<str, str>::to(&t)
                    .partition(0)
                    .payload("zombie"),
            )
            .expect("enqueue");
        first.flush(WAIT).expect("flush");
        let second = txn_producer(&bootstrap, "txn-fenced");
        let first_commit = first.commit_transaction(WAIT);
        transaction(&second, &t, &["alive"], true);
        (
            first_commit,
            read_values(&bootstrap, &t, "read_committed", 1),
        )
    })
    .await;
    assert!(
        matches!(first_commit, Err(KafkaError::Transaction(_))),
        "{first_commit:?}"
    );
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].1, "alive");
}

#[tokio::test]
async fn a_transaction_left_open_by_a_crash_is_aborted_at_start_up() {
    let mut broker = start_broker().await;
    let topic = unique_topic("txn-crash");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    blocking(move || {
        let producer = txn_producer(&bootstrap, "txn-crash");
        transaction(&producer, &t, &["kept"], true);
        producer.begin_transaction().expect("begin");
        producer
            .send(BaseRecord::<str, str>::to(&t).partition(0).payload("open"))
            .expect("enqueue");
        producer.flush(WAIT).expect("flush");
    })
    .await;
    broker.kill().await;
    broker.start_again().await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let (committed, end) = blocking(move || {
        let committed = read_values(&bootstrap, &t, "read_committed", 1);
        // The abort marker at 3 makes offset 4 the end; read_committed
        // consumers are not held back.
        let consumer = consumer(&bootstrap, &[("isolation.level", "read_committed")]);
        let (_, high) = consumer
            .fetch_watermarks(&t, 0, Duration::from_secs(10))
            .expect("watermarks");
        (committed, high)
    })
    .await;
    assert_eq!(committed, pairs(&[(0, "kept")]));
    assert_eq!(end, 4);
}

#[tokio::test]
async fn kcat_reading_read_committed_skips_aborted_transactions() {
    if !common::tools::present(&common::tools::KCAT) {
        return;
    }
    let broker = start_broker().await;
    let topic = unique_topic("txn-kcat");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    blocking(move || {
        let producer = txn_producer(&bootstrap, "txn-kcat");
        transaction(&producer, &t, &["one", "two"], true);
        transaction(&producer, &t, &["gone"], false);
        transaction(&producer, &t, &["three"], true);
    })
    .await;
    let read = |isolation: &str| {
        kcat(
            &[
                "-b",
                &broker.bootstrap(),
                "-t",
                &topic,
                "-C",
                "-o",
                "beginning",
                "-e",
                "-X",
                &format!("isolation.level={isolation}"),
                "-f",
                "%o %s\n",
            ],
            b"",
        )
    };
    assert_eq!(read("read_committed"), "0 one\n1 two\n5 three\n");
    assert_eq!(read("read_uncommitted"), "0 one\n1 two\n3 gone\n5 three\n");
}

#[tokio::test]
async fn a_read_committed_consumer_waits_for_offsets_pending_in_a_transaction() {
    let broker = start_broker().await;
    let topic = unique_topic("txn-stable");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let (pending, uncommitted, stable) = blocking(move || {
        let group = unique_topic("txn-stable-group");
        let member = |isolation: &str| -> BaseConsumer {
            consumer_config(&bootstrap)
                .set("group.id", &group)
                .set("isolation.level", isolation)
                .create()
                .expect("group consumer")
        };
        let (committed, uncommitted) = (member("read_committed"), member("read_uncommitted"));
        let producer = txn_producer(&bootstrap, "txn-stable");
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&t, 0, Offset::Offset(7))
            .unwrap();
        let metadata = committed.group_metadata().expect("group metadata");
        producer.begin_transaction().expect("begin");
        producer
            .send_offsets_to_transaction(&offsets, &metadata, WAIT)
            .expect("send offsets");
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(&t, 0);
        // KIP-447: librdkafka asks read_committed OffsetFetches to be stable
        // and retries UNSTABLE_OFFSET_COMMIT until its timeout.
        let pending = committed.committed_offsets(wanted.clone(), Duration::from_secs(2));
        let uncommitted = uncommitted
            .committed_offsets(wanted.clone(), WAIT)
            .expect("read_uncommitted OffsetFetch");
        producer.commit_transaction(WAIT).expect("commit");
        let stable = committed
            .committed_offsets(wanted, WAIT)
            .expect("read_committed OffsetFetch after the commit");
        (pending, uncommitted, stable)
    })
    .await;
    let offset_of = |tpl: &TopicPartitionList| tpl.find_partition(&topic, 0).map(|p| p.offset());
    match pending {
        Err(_) => {}
        Ok(tpl) => panic!(
            "an offset pending in a transaction was answered: {:?}",
            offset_of(&tpl)
        ),
    }
    assert_eq!(
        offset_of(&uncommitted),
        Some(Offset::Invalid),
        "nothing committed yet"
    );
    assert_eq!(offset_of(&stable), Some(Offset::Offset(7)));
}

#[tokio::test]
async fn a_consume_transform_produce_loop_processes_every_record_once_across_producer_restarts() {
    let broker = start_broker().await;
    let (input, output) = (unique_topic("ctp-in"), unique_topic("ctp-out"));
    create_topic(&broker.bootstrap(), &input, 1, &[]).await;
    create_topic(&broker.bootstrap(), &output, 1, &[]).await;
    let values: Vec<String> = (0..60).map(|i| format!("in-{i}")).collect();
    let plain = producer(&broker.bootstrap(), &[]);
    for v in &values {
        let record = FutureRecord::<str, str>::to(&input).partition(0).payload(v);
        await_delivery(send_or_wait(&plain, record))
            .await
            .expect("input");
    }
    let (bootstrap, inp, out) = (broker.bootstrap(), input.clone(), output.clone());
    blocking(move || {
        let group = unique_topic("ctp-group");
        // Three lives of the application (same transactional.id, same
        // group): the first two each commit two transactions of ten records,
        // then die in the middle of a third, sent but not committed.
        for life in 0..3 {
            let consumer: BaseConsumer = consumer_config(&bootstrap)
                .set("group.id", &group)
                .set("isolation.level", "read_committed")
                .create()
                .expect("group consumer");
            consumer.subscribe(&[&inp]).expect("subscribe");
            let producer = txn_producer(&bootstrap, "ctp-app");
            let transactions = if life < 2 { 3 } else { 2 };
            for n in 0..transactions {
                let records = consume_at_least(&consumer, 10, WAIT);
                producer.begin_transaction().expect("begin");
                for r in &records {
                    let transformed = format!("out-{}", r.value_str());
                    producer
                        .send(
                            BaseRecord::<str, str>::to(&out)
                                .partition(0)
                                .payload(&transformed),
                        )
                        .expect("enqueue");
                }
                let next = records.last().expect("ten records").offset + 1;
                let mut offsets = TopicPartitionList::new();
                offsets
                    .add_partition_offset(&inp, 0, Offset::Offset(next))
                    .unwrap();
                let metadata = consumer.group_metadata().expect("group metadata");
                producer
                    .send_offsets_to_transaction(&offsets, &metadata, WAIT)
                    .expect("send offsets");
                producer.flush(WAIT).expect("flush");
                if n < 2 {
                    producer.commit_transaction(WAIT).expect("commit");
                }
                // else: the application dies here, its transaction open.
            }
        }
    })
    .await;
    let got = read_values(&broker.bootstrap(), &output, "read_committed", 60);
    let got: Vec<String> = got.into_iter().map(|(_, v)| v).collect();
    let want: Vec<String> = values.iter().map(|v| format!("out-{v}")).collect();
    assert_eq!(got, want, "every input record once, in order");
}

/// An ABORT whose `.txnindex` entry cannot be written (out of descriptors)
/// counts at once; the stop cannot be clean while the entry is missing, and
/// the restart writes it: read_committed never shows the aborted records.
#[tokio::test]
async fn an_abort_whose_index_entry_cannot_be_written_stays_aborted_across_a_restart() {
    use sluice::storage::testing::{DiskOp, FaultyDisk};
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("txn-index-emfile");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    disk.fail(DiskOp::Open, ".txnindex", libc::EMFILE);
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let before = blocking(move || {
        let producer = txn_producer(&bootstrap, "txn-index-emfile");
        transaction(&producer, &t, &["a"], true);
        transaction(&producer, &t, &["x", "y"], false);
        transaction(&producer, &t, &["b"], true);
        read_values(&bootstrap, &t, "read_committed", 2)
    })
    .await;
    let want = pairs(&[(0, "a"), (5, "b")]);
    assert_eq!(before, want);
    assert!(disk.injected() > 0, "the entry's write was refused");
    assert!(broker.try_stop().await.is_err(), "not a clean stop");
    disk.clear();
    broker.start_again().await;
    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let after = blocking(move || read_values(&bootstrap, &t, "read_committed", 2)).await;
    assert_eq!(after, want);
    let index = broker
        .data_dir()
        .join(format!("{topic}-0/00000000000000000000.txnindex"));
    assert_eq!(std::fs::metadata(index).expect(".txnindex").len(), 34);
}

/// A commit whose offsets log fails after the decision is recorded is
/// finished at the next start, offsets and all: they were written when
/// sent, and count with the transaction's COMMIT marker. Held in memory
/// until the commit, they were lost with the crash while the output
/// records committed, so a read-process-write loop read its input twice.
#[tokio::test]
async fn a_commit_cut_short_by_a_crash_keeps_its_offsets() {
    use sluice::storage::testing::{DiskOp, FaultyDisk};
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("txn-offsets-crash");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let group = unique_topic("txn-offsets-crash-group");
    let (bootstrap, t, g, d) = (
        broker.bootstrap(),
        topic.clone(),
        group.clone(),
        disk.clone(),
    );
    let commit = blocking(move || {
        let consumer: BaseConsumer = consumer_config(&bootstrap)
            .set("group.id", &g)
            .create()
            .expect("group consumer");
        let producer = txn_producer(&bootstrap, "txn-offsets-crash");
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&t, 0, Offset::Offset(7))
            .expect("partition");
        producer.begin_transaction().expect("begin");
        producer
            .send(BaseRecord::<str, str>::to(&t).partition(0).payload("out"))
            .expect("enqueue");
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &metadata, WAIT)
            .expect("send offsets");
        producer.flush(WAIT).expect("flush");
        // The decision goes to the transaction state log; the offsets log
        // fails from here on.
        d.fail(DiskOp::Write, "__consumer_offsets-0", libc::EIO);
        producer.commit_transaction(Duration::from_secs(3))
    })
    .await;
    assert!(commit.is_err(), "{commit:?}");
    assert!(disk.injected() > 0, "the offsets log refused a write");
    broker.kill().await;
    disk.clear();
    broker.start_again().await;

    let (bootstrap, t) = (broker.bootstrap(), topic.clone());
    let (output, committed) = blocking(move || {
        let output = read_values(&bootstrap, &t, "read_committed", 1);
        let consumer: BaseConsumer = consumer_config(&bootstrap)
            .set("group.id", &group)
            .create()
            .expect("group consumer");
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(&t, 0);
        let committed = consumer.committed_offsets(wanted, WAIT).expect("committed");
        let offset = committed.find_partition(&t, 0).expect("partition").offset();
        (output, offset)
    })
    .await;
    assert_eq!(output, pairs(&[(0, "out")]));
    assert_eq!(
        committed,
        Offset::Offset(7),
        "the committed transaction's offset"
    );
}

//! Creating, growing, auto-creating and deleting topics, and DeleteRecords,
//! with Kafka's error codes for bad requests.

use super::*;

#[tokio::test]
async fn creating_an_existing_topic_fails_with_topic_already_exists() {
    let broker = start_broker().await;
    let topic = unique_topic("dup");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let again = NewTopic::new(&topic, 5, TopicReplication::Fixed(1));
    let results = admin(&broker.bootstrap())
        .create_topics([&again], &admin_opts())
        .await
        .expect("request");
    assert_eq!(
        results,
        vec![Err((topic.clone(), RDKafkaErrorCode::TopicAlreadyExists))]
    );
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((2, None)),
        "the topic is unchanged"
    );
}

#[tokio::test]
async fn create_topics_with_validate_only_creates_nothing() {
    let broker = start_broker().await;
    let topic = unique_topic("validate-only");
    let new = NewTopic::new(&topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "1000");
    let results = admin(&broker.bootstrap())
        .create_topics([&new], &admin_opts().validate_only(true))
        .await
        .expect("request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
    let bad = NewTopic::new(&topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "never");
    let results = admin(&broker.bootstrap())
        .create_topics([&bad], &admin_opts().validate_only(true))
        .await
        .expect("request");
    assert_eq!(results, vec![Err((topic, RDKafkaErrorCode::InvalidConfig))]);
}

#[tokio::test]
async fn invalid_topic_requests_are_rejected_with_kafka_error_codes() {
    let broker = start_broker().await;
    let long = "x".repeat(250);
    let base = unique_topic("dotted.name");
    create_topic(&broker.bootstrap(), &base, 1, &[]).await;
    let collides = base.replace('.', "_");
    let admin = admin(&broker.bootstrap());
    let cases: Vec<(NewTopic<'_>, RDKafkaErrorCode)> = vec![
        (
            NewTopic::new("bad/name", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("has space", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("..", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new(&long, 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new(&collides, 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("three-replicas", 1, TopicReplication::Fixed(3)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
        (
            NewTopic::new("unknown-config", 1, TopicReplication::Fixed(1))
                .set("min.insync.replicas.typo", "2"),
            RDKafkaErrorCode::InvalidConfig,
        ),
    ];
    for (topic, code) in &cases {
        let results = admin
            .create_topics([topic], &admin_opts())
            .await
            .expect("CreateTopics request");
        assert_eq!(
            results,
            vec![Err((topic.name.to_string(), *code))],
            "creating {:?}",
            topic.name
        );
    }
    let md = metadata(&broker.bootstrap(), None);
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, vec![base.as_str()], "no invalid topic was created");
}

#[tokio::test]
async fn delete_topics_removes_topic_and_data_and_the_name_can_be_reused() {
    let broker = start_broker().await;
    let topic = unique_topic("delete");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_n(&producer, &topic, 1, 3).await, vec![0, 1, 2]);
    let dir = broker.data_dir().join(format!("{topic}-1"));
    assert!(
        dir.is_dir(),
        "{} should exist before the delete",
        dir.display()
    );

    let admin = admin(&broker.bootstrap());
    let results = admin
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
    assert!(
        !dir.exists(),
        "{} should be gone after the delete",
        dir.display()
    );
    let again = admin
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(
        again,
        vec![Err((
            topic.clone(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let fresh = producer_config(&broker.bootstrap())
        .create()
        .expect("producer");
    assert_eq!(
        produce_n(&fresh, &topic, 0, 2).await,
        vec![0, 1],
        "a re-created topic starts empty"
    );
}

#[tokio::test]
async fn create_partitions_grows_a_topic_and_refuses_to_shrink_it() {
    let broker = start_broker().await;
    let topic = unique_topic("grow");
    create_topic(
        &broker.bootstrap(),
        &topic,
        1,
        &[("retention.ms", "86400000")],
    )
    .await;
    let admin = admin(&broker.bootstrap());
    let results = admin
        .create_partitions([&NewPartitions::new(&topic, 3)], &admin_opts())
        .await
        .expect("CreatePartitions request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((3, None))
    );
    let producer = producer(
        &broker.bootstrap(),
        &[("topic.metadata.refresh.interval.ms", "100")],
    );
    assert_eq!(
        produce_n(&producer, &topic, 2, 2).await,
        vec![0, 1],
        "the new partition takes records"
    );

    for count in [2, 3] {
        let results = admin
            .create_partitions([&NewPartitions::new(&topic, count)], &admin_opts())
            .await
            .expect("CreatePartitions request");
        assert_eq!(
            results,
            vec![Err((topic.clone(), RDKafkaErrorCode::InvalidPartitions))],
            "count {count}"
        );
    }
    let entries = topic_configs(&broker.bootstrap(), &topic).await;
    assert_eq!(
        entry(&entries, "retention.ms"),
        ("86400000", &ConfigSource::DynamicTopic)
    );
}

#[tokio::test]
async fn producing_to_an_unknown_topic_auto_creates_it_with_one_partition() {
    let broker = start_broker().await;
    let topic = unique_topic("auto");
    let producer = producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<str, str>::to(&topic)
        .key("k")
        .payload("first");
    assert_eq!(
        await_delivery(send_or_wait(&producer, record)).await,
        Ok((0, 0))
    );
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((1, None))
    );
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 1, WAIT);
    assert_eq!((got[0].offset, got[0].value_str()), (0, "first"));
}

#[tokio::test]
async fn auto_creation_can_be_disabled() {
    let broker = start_broker_with(|c| c.auto_create_topics_enable = false).await;
    let topic = unique_topic("no-auto");
    let md = metadata(&broker.bootstrap(), Some(&topic));
    assert_eq!(
        topic_in(&md, &topic),
        Some((0, Some(RDKafkaErrorCode::UnknownTopicOrPartition)))
    );
    let producer = producer(&broker.bootstrap(), &[("message.timeout.ms", "3000")]);
    let record = FutureRecord::<str, str>::to(&topic).payload("nowhere");
    let result = await_delivery(send_or_wait(&producer, record)).await;
    assert!(
        result.is_err(),
        "a record for a missing topic must not be acknowledged: {result:?}"
    );
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
}

#[tokio::test]
async fn delete_records_moves_the_low_watermark() {
    let broker = start_broker().await;
    let topic = unique_topic("delete-records");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    // Partition 0: one batch per record. Partition 1: few large batches, so
    // the new start offset falls inside a batch.
    let one_by_one = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    for i in 0..10 {
        assert_eq!(produce_n(&one_by_one, &topic, 0, 1).await, vec![i]);
    }
    let batched = producer(&broker.bootstrap(), &[("linger.ms", "100")]);
    assert_eq!(
        produce_n(&batched, &topic, 1, 10).await,
        (0..10).collect::<Vec<_>>()
    );

    let admin = admin(&broker.bootstrap());
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(4))
        .expect("tpl");
    tpl.add_partition_offset(&topic, 1, Offset::Offset(6))
        .expect("tpl");
    let result = admin
        .delete_records(&tpl, &admin_opts())
        .await
        .expect("DeleteRecords request");
    for (p, low) in [(0, 4), (1, 6)] {
        let elem = result
            .find_partition(&topic, p)
            .expect("partition in the answer");
        assert_eq!(
            (elem.error(), elem.offset()),
            (Ok(()), Offset::Offset(low)),
            "partition {p}"
        );
    }

    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(watermarks(&consumer, &topic, 0), (4, 10));
    assert_eq!(watermarks(&consumer, &topic, 1), (6, 10));
    assign(&consumer, &topic, &[0, 1], Offset::Beginning);
    let got = by_partition(&consume_exactly(&consumer, 10, WAIT));
    let offsets = |p: i32| got[&p].iter().map(|r| r.offset).collect::<Vec<_>>();
    assert_eq!(offsets(0), (4..10).collect::<Vec<_>>());
    assert_eq!(offsets(1), (6..10).collect::<Vec<_>>());

    let mut all = TopicPartitionList::new();
    all.add_partition_offset(&topic, 0, Offset::End)
        .expect("tpl");
    let result = admin
        .delete_records(&all, &admin_opts())
        .await
        .expect("DeleteRecords request");
    let elem = result
        .find_partition(&topic, 0)
        .expect("partition in the answer");
    assert_eq!((elem.error(), elem.offset()), (Ok(()), Offset::Offset(10)));
    assert_eq!(watermarks(&consumer, &topic, 0), (10, 10));

    let mut past = TopicPartitionList::new();
    past.add_partition_offset(&topic, 1, Offset::Offset(11))
        .expect("tpl");
    let result = admin
        .delete_records(&past, &admin_opts())
        .await
        .expect("DeleteRecords request");
    let elem = result
        .find_partition(&topic, 1)
        .expect("partition in the answer");
    assert!(
        elem.error().is_err(),
        "deleting past the log end must fail, got {:?}",
        elem.offset()
    );
    assert_eq!(watermarks(&consumer, &topic, 1), (6, 10));
}

/// A raw client producing one record at a time to a partition, alongside
/// a change that must not let it write.
struct Producing {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Requests answered so far, with an error or not.
    answers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The offsets answered without error.
    task: tokio::task::JoinHandle<Vec<i64>>,
}

impl Producing {
    /// Starts producing to `topic`/`partition`; returns once the first
    /// answer is in, so that what follows runs while it produces.
    async fn start(bootstrap: String, topic: &str, partition: i32) -> Producing {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let answers = std::sync::Arc::new(AtomicUsize::new(0));
        let (topic, flag, count) = (topic.to_string(), done.clone(), answers.clone());
        let task = tokio::spawn(async move {
            let mut raw = raw::Raw::connect(&bootstrap).await;
            let record = raw::batch(&[raw::record(0, 1, None, Some("lost?"))]);
            let mut answered = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let (code, offset) =
                    raw::produce(&mut raw, 7, &topic, partition, record.clone()).await;
                count.fetch_add(1, Ordering::Relaxed);
                if code == 0 {
                    answered.push(offset);
                }
            }
            answered
        });
        let started = std::time::Instant::now();
        while answers.load(Ordering::Relaxed) == 0 {
            assert!(started.elapsed() < WAIT, "no produce answered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Producing {
            done,
            answers,
            task,
        }
    }

    /// Stops producing: the offsets answered without error. Panics if it
    /// was not answered while `since` answers were counted.
    async fn stop(self, since: usize) -> Vec<i64> {
        use std::sync::atomic::Ordering;
        assert!(
            self.answers.load(Ordering::Relaxed) > since,
            "the producer was not answered alongside the change"
        );
        self.done.store(true, Ordering::Relaxed);
        self.task.await.expect("producer")
    }

    fn answers(&self) -> usize {
        self.answers.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Makes `topics.toml` impossible to write: a directory where its
/// temporary file goes.
fn block_topics_file(data_dir: &std::path::Path) -> std::path::PathBuf {
    let blocker = data_dir.join("topics.tmp");
    std::fs::create_dir_all(blocker.join("in-the-way")).expect("blocker");
    blocker
}

/// Asks for `change` 20 times, and asserts it is refused each time.
async fn refused_every_time<F>(mut change: impl FnMut() -> F)
where
    F: std::future::Future<Output = rdkafka::error::KafkaResult<Vec<rdkafka::admin::TopicResult>>>,
{
    for _ in 0..20 {
        let results = change().await.expect("request");
        assert!(results[0].is_err(), "{results:?}");
    }
}

/// A create that cannot be written down is refused whole, and no producer
/// is ever answered for the topic meanwhile: its records would go with the
/// directories that the failure removes.
#[tokio::test]
async fn a_create_that_cannot_be_written_down_is_never_seen_by_producers() {
    let broker = start_broker_with(|c| c.auto_create_topics_enable = false).await;
    let topic = unique_topic("unwritten");
    let blocker = block_topics_file(broker.data_dir());
    let producing = Producing::start(broker.bootstrap(), &topic, 0).await;
    let before = producing.answers();
    let admin = admin(&broker.bootstrap());
    let (new, opts) = (
        NewTopic::new(&topic, 1, TopicReplication::Fixed(1)),
        admin_opts(),
    );
    refused_every_time(|| admin.create_topics([&new], &opts)).await;
    assert_eq!(
        producing.stop(before).await,
        Vec::<i64>::new(),
        "records answered for a topic that was never created"
    );
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);

    // Once the file can be written, the topic starts empty.
    std::fs::remove_dir_all(&blocker).expect("remove blocker");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = raw::Raw::connect(&broker.bootstrap()).await;
    let record = raw::batch(&[raw::record(0, 1, None, Some("first"))]);
    assert_eq!(raw::produce(&mut raw, 7, &topic, 0, record).await, (0, 0));
}

/// The same for partitions added to a topic.
#[tokio::test]
async fn partitions_that_cannot_be_written_down_are_never_seen_by_producers() {
    let broker = start_broker().await;
    let topic = unique_topic("unwritten-partitions");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let blocker = block_topics_file(broker.data_dir());
    let producing = Producing::start(broker.bootstrap(), &topic, 1).await;
    let before = producing.answers();
    let admin = admin(&broker.bootstrap());
    let (grow, opts) = (NewPartitions::new(&topic, 2), admin_opts());
    refused_every_time(|| admin.create_partitions([&grow], &opts)).await;
    assert_eq!(
        producing.stop(before).await,
        Vec::<i64>::new(),
        "records answered for a partition that was never added"
    );
    assert_eq!(
        topic_in(&metadata(&broker.bootstrap(), None), &topic),
        Some((1, None))
    );
    std::fs::remove_dir_all(&blocker).expect("remove blocker");
}

/// A delete whose `topics.toml` is in place but whose directory's fsync
/// fails is answered with an error, and still made: the topic is gone now,
/// as it is after a restart (which reads that file). Refusing it in memory
/// showed the topic until the next restart, then lost it.
#[tokio::test]
async fn a_delete_in_place_but_not_durable_is_kept_and_answered_with_an_error() {
    use sluice::storage::testing::{DiskOp, FaultyDisk};
    let disk = FaultyDisk::new();
    let mut broker = start_broker_on(disk.clone(), |_| {}).await;
    let topic = unique_topic("not-durable");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    // The data directory's own fsync: the first after this, a fresh broker
    // syncing no other directory meanwhile.
    let data_dir = broker.data_dir().to_string_lossy().into_owned();
    disk.fail_times(DiskOp::SyncDir, &data_dir, libc::EIO, Some(1));
    let results = admin(&broker.bootstrap())
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("request");
    assert_eq!(disk.injected(), 1);
    assert!(
        results[0].is_err(),
        "a delete that may not survive a crash is not acknowledged: {results:?}"
    );
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);

    broker.restart().await;
    assert_eq!(topic_in(&metadata(&broker.bootstrap(), None), &topic), None);
}

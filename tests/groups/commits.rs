//! Committed offsets: read back by a new consumer, kept across a clean restart
//! and a SIGKILL of the broker binary.

use super::*;

/// Commits `offset` with metadata `m-<p>` for each partition, as a simple consumer (no membership).
pub(super) fn commit_simple(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    offset: i64,
) {
    let consumer: BaseConsumer = group_config(bootstrap, group, &[])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let mut e = tpl.add_partition(topic, p);
        e.set_offset(Offset::Offset(offset)).expect("offset");
        e.set_metadata(format!("m-{p}"));
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// The committed (offset, metadata) of each partition, through a fresh consumer.
pub(super) fn committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(Offset, String)> {
    let consumer: BaseConsumer = group_config(bootstrap, group, &[])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let found = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("OffsetFetch");
    found
        .elements()
        .iter()
        .map(|e| (e.offset(), e.metadata().to_string()))
        .collect()
}

fn expected_commits(partitions: i32, offset: i64) -> Vec<(Offset, String)> {
    (0..partitions)
        .map(|p| (Offset::Offset(offset), format!("m-{p}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_a_clean_restart() {
    let mut broker = start_broker().await;
    let (topic, group) = (unique_topic("restart"), unique_topic("g-restart"));
    create_topic(&broker.bootstrap(), &topic, 3, &[]).await;
    let prod = producer(&broker.bootstrap(), &[]);
    for p in 0..3 {
        produce_n(&prod, &topic, p, 4).await;
    }
    let member: BaseConsumer = group_config(&broker.bootstrap(), &group, &[])
        .create()
        .expect("consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let read = blocking_consume(member, 12, true).await;
    assert_eq!(read.len(), 12);
    let unknown = unique_topic("never-committed");
    create_topic(&broker.bootstrap(), &unknown, 1, &[]).await;

    broker.restart().await;
    let b = broker.bootstrap();
    let found: Vec<Offset> = committed(&b, &group, &topic, 3)
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(found, vec![Offset::Offset(4); 3]);
    assert_eq!(
        committed(&b, &group, &unknown, 1)[0].0,
        Offset::Invalid,
        "no commit reads as -1"
    );

    let prod = producer(&b, &[]);
    for p in 0..3 {
        produce_n(&prod, &topic, p, 1).await;
    }
    let member: BaseConsumer = group_config(&b, &group, &[]).create().expect("consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let mut read: Vec<(i32, i64)> = blocking_consume(member, 3, false)
        .await
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    read.sort();
    assert_eq!(read, vec![(0, 4), (1, 4), (2, 4)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_sigkill_of_the_binary() {
    let (_dir, path) = scratch_dir();
    let (topic, group) = (unique_topic("sigkill"), unique_topic("g-sigkill"));
    let process = BrokerProcess::start(&path, &[]);
    create_topic(&process.bootstrap, &topic, 2, &[]).await;
    let b = process.bootstrap.clone();
    let (t, g) = (topic.clone(), group.clone());
    blocking(move || commit_simple(&b, &g, &t, 2, 7)).await;
    process.crash();

    let process = BrokerProcess::start(&path, &[]);
    let b = process.bootstrap.clone();
    let found = blocking(move || committed(&b, &group, &topic, 2)).await;
    assert_eq!(found, expected_commits(2, 7));
    process.terminate();
}

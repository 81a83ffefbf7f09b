//! Transactions of different transactional ids through rdkafka do not wait
//! for each other: one whose COMMIT markers wait for a slow fsync (under
//! `flush = "always"`) holds up only requests of its own id; and a slow
//! fsync of the transaction state log holds up only the transactions
//! waiting for it, never the broker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureRecord, Producer, ThreadedProducer,
};
use sluice::config::FlushMode;
use sluice::storage::testing::{DiskOp, FaultyDisk};

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

/// A committed transaction of one record, `value`, to partition 0 of
/// `topic`; `hold` runs once the record is acknowledged, before the commit.
fn commit_one(
    bootstrap: &str,
    id: &str,
    topic: &str,
    value: &str,
    hold: impl FnOnce(),
) -> Result<(), String> {
    let producer: TxnProducer = producer_config(bootstrap)
        .set("transactional.id", id)
        .create()
        .map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(10);
    producer
        .init_transactions(limit)
        .map_err(|e| e.to_string())?;
    producer.begin_transaction().map_err(|e| e.to_string())?;
    producer
        .send(
            BaseRecord::<str, str>::to(topic)
                .partition(0)
                .payload(value),
        )
        .map_err(|(e, _)| e.to_string())?;
    producer.flush(limit).map_err(|e| e.to_string())?;
    hold();
    producer
        .commit_transaction(limit)
        .map_err(|e| e.to_string())
}

/// Lets held fsyncs go when the test ends, passed or not, so that the
/// broker can stop.
struct ReleaseOnDrop(Arc<FaultyDisk>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_ending_slowly_holds_up_only_its_own_id() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    // Dropped before the broker, which waits for its threads.
    let _release = ReleaseOnDrop(disk.clone());
    let (slow, quick) = (unique_topic("txn-slow"), unique_topic("txn-quick"));
    create_topic(&broker.bootstrap(), &slow, 1, &[]).await;
    create_topic(&broker.bootstrap(), &quick, 1, &[]).await;

    // The slow transaction's record is in; then its partition's fsyncs
    // wait, and with them its COMMIT marker.
    let (bootstrap, topic, d) = (broker.bootstrap(), slow.clone(), disk.clone());
    let slow_commit = tokio::task::spawn_blocking(move || {
        let hold = || d.hold(DiskOp::Sync, &format!("{topic}-0"));
        commit_one(&bootstrap, "txn-slow", &topic, "slow", hold)
    });
    let deadline = Instant::now() + WAIT;
    while disk.held() == 0 {
        assert!(
            !slow_commit.is_finished() && Instant::now() < deadline,
            "the slow commit never reached its fsync"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (bootstrap, topic) = (broker.bootstrap(), quick.clone());
    let quick_commit =
        blocking(move || commit_one(&bootstrap, "txn-quick", &topic, "quick", || {})).await;
    assert_eq!(quick_commit, Ok(()));
    assert!(!slow_commit.is_finished(), "the slow commit still waits");

    disk.release();
    let slow_commit = slow_commit.await.expect("slow commit task");
    assert_eq!(slow_commit, Ok(()));
    let bootstrap = broker.bootstrap();
    let read = blocking(move || {
        (
            read_values(&bootstrap, &slow, "read_committed", 1),
            read_values(&bootstrap, &quick, "read_committed", 1),
        )
    })
    .await;
    assert_eq!(
        read,
        (
            vec![(0, "slow".to_string())],
            vec![(0, "quick".to_string())]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_state_log_fsync_holds_up_no_other_request() {
    let disk = FaultyDisk::new();
    let broker = start_broker_on(disk.clone(), |c| c.flush = FlushMode::Always).await;
    // Dropped before the broker, which waits for its threads.
    let _release = ReleaseOnDrop(disk.clone());
    let topic = unique_topic("txn-state-slow");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;

    // Two new transactional producers: their producer ids wait for the
    // state log's fsync. Both the broker's threads waited with them.
    disk.hold(DiskOp::Sync, "__transaction_state-0");
    let inits: Vec<_> = ["txn-state-a", "txn-state-b"]
        .into_iter()
        .map(|id| {
            let (bootstrap, topic) = (broker.bootstrap(), topic.clone());
            tokio::task::spawn_blocking(move || commit_one(&bootstrap, id, &topic, id, || {}))
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while disk.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "no fsync of the state log waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let plain = producer(&broker.bootstrap(), &[("message.timeout.ms", "5000")]);
    let sent = plain
        .send(
            FutureRecord::<str, str>::to(&topic)
                .partition(0)
                .payload("plain"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        sent.map(|d| d.offset).map_err(|(e, _)| e.to_string()),
        Ok(0)
    );

    disk.release();
    for init in inits {
        assert_eq!(init.await.expect("transaction task"), Ok(()));
    }
}

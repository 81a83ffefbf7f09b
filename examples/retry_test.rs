//! How to test an application's retry logic with `sluice::testing`: the
//! "application" here is `deliver`, which sends a batch of orders and must
//! get each one into the log exactly once, whatever the cluster does. The
//! checks below are what a `#[tokio::test]` would assert; run them with
//!
//! ```text
//! cargo run --example retry_test
//! ```

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use sluice::testing::{ApiKey, Cluster, Fault, ResponseError};

/// The code under test: sends `orders` in order, relying on an idempotent
/// producer's retries; returns the offset of each.
async fn deliver(bootstrap: &str, topic: &str, orders: &[String]) -> Result<Vec<i64>, String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "15000")
        .create()
        .map_err(|e| e.to_string())?;
    let mut offsets = Vec::new();
    for order in orders {
        let record = FutureRecord::<(), _>::to(topic).partition(0).payload(order);
        let delivered = producer
            .send(record, Duration::from_secs(15))
            .await
            .map_err(|(e, _)| e.to_string())?;
        offsets.push(delivered.offset);
    }
    Ok(offsets)
}

/// What a consumer reads from partition 0: `n` values in offset order.
fn read(bootstrap: &str, topic: &str, n: usize) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "retry-test")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut values = Vec::new();
    while values.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    values
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::start(3).await?;
    cluster.create_topic("orders", 1).await?;
    let orders: Vec<String> = (0..20).map(|i| format!("order-{i}")).collect();

    // The leader refuses twice and drops a connection mid-batch, then goes
    // down altogether: every order must still land once, in order.
    cluster.inject(
        ApiKey::Produce,
        Fault::error(ResponseError::NotLeaderOrFollower).times(2),
    );
    cluster.inject(ApiKey::Produce, Fault::disconnect());
    let first = deliver(&cluster.bootstrap(), "orders", &orders[..10]).await?;
    cluster.broker_down(cluster.leader("orders", 0)?).await?;
    let second = deliver(&cluster.bootstrap(), "orders", &orders[10..]).await?;

    let offsets: Vec<i64> = first.into_iter().chain(second).collect();
    assert_eq!(
        offsets,
        (0..20).collect::<Vec<i64>>(),
        "one offset each, in order"
    );
    assert_eq!(read(&cluster.bootstrap(), "orders", 20), orders);
    println!(
        "20 orders delivered once each through 2 refusals, a disconnect and a leader going down \
         ({} Produce requests)",
        cluster.request_count(ApiKey::Produce)
    );
    cluster.shutdown().await?;
    Ok(())
}

//! Produce three messages and read them back with rdkafka.
//!
//! ```text
//! cargo run --release                                   # in one terminal: the broker
//! cargo run --example produce_consume -- 127.0.0.1:9092 # in another
//! ```

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = "greetings";
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    for (i, text) in ["hello", "from", "sluice"].iter().enumerate() {
        let key = format!("k{i}");
        let delivery = producer
            .send(
                FutureRecord::to(topic).key(&key).payload(*text),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)?;
        println!(
            "produced {text:?} at partition {} offset {}",
            delivery.partition, delivery.offset
        );
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "example")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await??;
        println!(
            "consumed offset {}: key {:?} value {:?}",
            m.offset(),
            m.key().map(String::from_utf8_lossy),
            m.payload().map(String::from_utf8_lossy)
        );
    }
    Ok(())
}

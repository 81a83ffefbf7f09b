//! rdkafka clients with short timeouts, and produce / consume helpers that fail
//! with a clear message instead of hanging.

use super::*;

/// Settings every client shares: IPv4, short timeouts.
pub(crate) fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    c
}

/// Producer settings: acks=all, short delivery timeout, small linger.
pub(crate) fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("message.timeout.ms", "15000")
        .set("request.timeout.ms", "10000")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000");
    c
}

/// A FutureProducer with [`producer_config`] plus `extra` settings.
pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = producer_config(bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// Consumer settings for manual assignment (no group protocol is used: the
/// group.id is only there because librdkafka requires one).
pub(crate) fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("group.id", "sluice-tests-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    c
}

/// A BaseConsumer with [`consumer_config`] plus `extra` settings.
pub(crate) fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = consumer_config(bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

/// An AdminClient with [`client_config`].
pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("admin client")
}

/// Admin options with a bounded operation time.
pub(crate) fn admin_opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(10)))
}

/// Creates `name` with `partitions` partitions and `configs`; panics on any error.
pub(crate) async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin(bootstrap)
        .create_topics([&topic], &admin_opts())
        .await
        .expect("CreateTopics request");
    assert_eq!(results, vec![Ok(name.to_string())], "creating topic {name}");
}

/// Assigns `consumer` to `partitions` of `topic`, each starting at `offset`.
pub(crate) fn assign(consumer: &BaseConsumer, topic: &str, partitions: &[i32], offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, offset)
            .expect("partition offset");
    }
    consumer.assign(&tpl).expect("assign");
}

/// One record as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: Timestamp,
}

impl Rec {
    pub(crate) fn from_message(m: &BorrowedMessage<'_>) -> Rec {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Rec {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp(),
        }
    }

    /// The value as UTF-8 (for readable assertions).
    pub(crate) fn value_str(&self) -> &str {
        std::str::from_utf8(self.value.as_deref().unwrap_or_default()).expect("utf-8 value")
    }
}

/// Polls until exactly `n` records have arrived (or `within` passes, which
/// fails the test), then checks that nothing more arrives in a short grace.
pub(crate) fn consume_exactly(consumer: &BaseConsumer, n: usize, within: Duration) -> Vec<Rec> {
    let records = consume_at_least(consumer, n, within);
    if let Some(extra) = consumer.poll(Duration::from_millis(300)) {
        let extra = extra.map(|m| Rec::from_message(&m));
        panic!("expected exactly {n} records, got one more: {extra:?}");
    }
    records
}

/// Polls until `n` records have arrived; fails after `within` with what was seen.
pub(crate) fn consume_at_least(consumer: &BaseConsumer, n: usize, within: Duration) -> Vec<Rec> {
    let deadline = Instant::now() + within;
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {within:?}: got {} of {n} records; last: {:?}",
            records.len(),
            records.last()
        );
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) => records.push(Rec::from_message(&m)),
            Some(Err(e)) => panic!("consumer error after {} records: {e}", records.len()),
        }
    }
    records
}

/// Runs a blocking closure on a blocking thread, for work that must overlap with the test body.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

/// Sends `count` records `(key-i, value-i)` to one partition and waits for every
/// acknowledgement; returns the offsets in send order.
pub(crate) async fn produce_n(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    count: usize,
) -> Vec<i64> {
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(&value);
        pending.push(send_or_wait(producer, record));
    }
    let mut offsets = Vec::with_capacity(count);
    for (i, delivery) in pending.into_iter().enumerate() {
        let delivery = await_delivery(delivery).await;
        let (p, offset) = delivery.unwrap_or_else(|e| panic!("record {i} was not delivered: {e}"));
        assert_eq!(p, partition, "record {i} landed in the wrong partition");
        offsets.push(offset);
    }
    offsets
}

/// A pending acknowledgement.
pub(crate) type Pending = rdkafka::producer::DeliveryFuture;

/// Enqueues `record`, flushing the producer's queue if it is full.
pub(crate) fn send_or_wait<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> Pending
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match producer.send_result(record) {
            Ok(pending) => return pending,
            Err((e, r)) => {
                assert!(Instant::now() < deadline, "producer queue stayed full: {e}");
                producer.poll(Duration::from_millis(10));
                record = r;
            }
        }
    }
}

/// Queues each of `values`, keyless, for partition 0 of `topic`, in order.
pub(crate) fn send_values(
    producer: &FutureProducer,
    topic: &str,
    values: &[String],
) -> Vec<Pending> {
    values
        .iter()
        .map(|v| {
            send_or_wait(
                producer,
                FutureRecord::<(), str>::to(topic).partition(0).payload(v),
            )
        })
        .collect()
}

/// Waits (bounded) for one acknowledgement: `(partition, offset)` or the error text.
pub(crate) async fn await_delivery(pending: Pending) -> Result<(i32, i64), String> {
    match tokio::time::timeout(WAIT, pending).await {
        Err(_) => Err(format!("no acknowledgement within {WAIT:?}")),
        Ok(Err(_)) => Err("the producer dropped the delivery".into()),
        Ok(Ok(Ok(d))) => Ok((d.partition, d.offset)),
        Ok(Ok(Err((e, _)))) => Err(e.to_string()),
    }
}

/// `(low, high)` watermarks of one partition.
pub(crate) fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("ListOffsets for {topic}/{partition}: {e}"))
}

/// Headers from `(name, value)` pairs.
pub(crate) fn headers(pairs: &[(&str, Option<&[u8]>)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header { key, value: *value })
    })
}

"""kafka-python (an independent, pure-Python protocol implementation) against Sluice.

Driven by tests/kafka_python.rs:  python3 client.py BOOTSTRAP TOPIC

Before this runs, the Rust test has created TOPIC (2 partitions, retention.ms=123456789)
and written 50 records "rd-<i>" to partition 1 with rdkafka. This script checks them,
administers the topic, writes 100 gzip-compressed records to partition 0, reads them
back, and deletes the first 10; the Rust test then reads partition 0 with rdkafka.
Any failed check raises, so the exit status is non-zero.
"""

import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

TIMEOUT_MS = 10_000


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def read(consumer, tp, count):
    """Exactly `count` records of one partition from the current position."""
    records = []
    while len(records) < count:
        batch = consumer.poll(timeout_ms=TIMEOUT_MS)
        check(batch, f"no records within {TIMEOUT_MS} ms after {len(records)} of {count}")
        for part, recs in batch.items():
            check(part == tp, f"records from unexpected partition {part}")
            records.extend(recs)
    check(len(records) == count, f"got {len(records)} records, expected {count}")
    return records


def administer(admin, topic):
    try:
        admin.create_topics([NewTopic(topic, 5, 1)], timeout_ms=TIMEOUT_MS)
        raise AssertionError("creating an existing topic must fail")
    except TopicAlreadyExistsError:
        pass
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    retention = configs["topic"][topic]["retention.ms"]
    check(retention["value"] == "123456789", f"retention.ms: {retention}")
    check(retention["config_source"] == "DYNAMIC_TOPIC_CONFIG", f"retention.ms source: {retention}")
    cluster = admin.describe_cluster()
    check(cluster["cluster_id"] == "sluice-cluster", f"cluster: {cluster}")
    check([b["broker_id"] for b in cluster["brokers"]] == [1], f"brokers: {cluster}")
    check(topic in admin.list_topics(), "the topic is listed")
    dirs = admin.describe_log_dirs()[0]["log_dirs"][0]
    partitions = {p["partition_index"] for t in dirs["topics"] if t["name"] == topic for p in t["partitions"]}
    check(partitions == {0, 1}, f"log dirs: {dirs}")


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    administer(admin, topic)

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, request_timeout_ms=TIMEOUT_MS + 5000
    )
    p1 = TopicPartition(topic, 1)
    consumer.assign([p1])
    consumer.seek_to_beginning(p1)
    got = [(r.offset, r.key, r.value) for r in read(consumer, p1, 50)]
    want = [(i, f"k{i}".encode(), f"rd-{i}".encode()) for i in range(50)]
    check(got == want, f"partition 1 as written by rdkafka: {got[:3]}...")

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip", linger_ms=20)
    futures = [
        producer.send(
            topic,
            key=f"py-k{i}".encode(),
            value=f"py-v{i}".encode(),
            headers=[("i", str(i).encode())],
            partition=0,
            timestamp_ms=2_000_000 + i,
        )
        for i in range(100)
    ]
    producer.flush(timeout=TIMEOUT_MS / 1000)
    offsets = [f.get(timeout=TIMEOUT_MS / 1000).offset for f in futures]
    check(offsets == list(range(100)), f"acknowledged offsets: {offsets[:5]}...")

    p0 = TopicPartition(topic, 0)
    consumer.assign([p0])
    consumer.seek(p0, 0)
    records = read(consumer, p0, 100)
    for i, r in enumerate(records):
        check(
            (r.offset, r.key, r.value, r.headers, r.timestamp)
            == (i, f"py-k{i}".encode(), f"py-v{i}".encode(), [("i", str(i).encode())], 2_000_000 + i),
            f"record {i}: {r}",
        )
    check(consumer.end_offsets([p0]) == {p0: 100}, "end offset")
    check(consumer.offsets_for_times({p0: 2_000_000})[p0].offset == 0, "offset for the first timestamp")
    check(consumer.offsets_for_times({p0: 3_000_000})[p0] is None, "no offset after the last timestamp")

    deleted = admin.delete_records({p0: 10}, timeout_ms=TIMEOUT_MS)
    check(deleted[p0]["low_watermark"] == 10, f"delete_records: {deleted}")
    check(consumer.beginning_offsets([p0]) == {p0: 10}, "log start after delete_records")
    admin.create_partitions({topic: NewPartitions(3)})
    check(admin.describe_topics([topic])[0]["partitions"].__len__() == 3, "three partitions")

    consumer.close()
    producer.close()
    admin.close()
    print("kafka-python: all checks passed")


if __name__ == "__main__":
    main()

"""kafka-python writes updates and tombstones to a compacted topic and reads the latest state.

Driven by tests/kafka_python.rs:  python3 compaction.py BOOTSTRAP TOPIC

Creates TOPIC (compacted, 1 KiB segments), writes 20 rounds of values for
keys py-0..py-4 (gzip), a tombstone for py-0, then 30 records of other keys
so that everything before them is in sealed segments; checks that a record
without a key is refused; then reads the topic from the beginning until the
cleaner has left one record per key before that tail (at most 30 s), and
prints each record of that part as "offset key value" (value "null" for a
tombstone), which the Rust test compares with what rdkafka reads.
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

TIMEOUT_MS = 10_000


def read_all(bootstrap, tp):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=TIMEOUT_MS)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    records = []
    while consumer.position(tp) < end:
        for recs in consumer.poll(timeout_ms=TIMEOUT_MS).values():
            records.extend(recs)
    consumer.close()
    return records


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={
        "cleanup.policy": "compact",
        "segment.bytes": "1024",
        "min.cleanable.dirty.ratio": "0.01",
    })], timeout_ms=TIMEOUT_MS)
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=0,
                             acks="all", retries=0)
    for round_ in range(20):
        for key in range(5):
            producer.send(topic, key=f"py-{key}".encode(), value=f"r{round_}".encode(),
                          partition=0).get(timeout=10)
    producer.send(topic, key=b"py-0", value=None, partition=0).get(timeout=10)
    tail = producer.send(topic, key=b"tail-0", value=b"t", partition=0).get(timeout=10).offset
    for i in range(1, 30):
        producer.send(topic, key=f"tail-{i}".encode(), value=b"t", partition=0).get(timeout=10)
    try:
        producer.send(topic, key=None, value=b"no key", partition=0).get(timeout=10)
        raise AssertionError("a record without a key was accepted by a compacted topic")
    except KafkaError as e:
        print(f"keyless refused: {type(e).__name__}")
    producer.close()

    tp = TopicPartition(topic, 0)
    deadline = time.time() + 30
    while True:
        records = [r for r in read_all(bootstrap, tp) if r.offset < tail]
        keys = {r.key for r in records}
        if len(keys) == len(records):
            break
        if time.time() > deadline:
            raise AssertionError(f"not cleaned within 30 s: {len(records)} records for {len(keys)} keys")
        time.sleep(0.2)
    for r in records:
        value = "null" if r.value is None else r.value.decode()
        print(f"{r.offset} {r.key.decode()} {value}")
    print(f"tail {tail}")
    print("compaction: all checks passed")


main()

"""kafka-python's incremental fetch sessions (KIP-227) against Sluice.

Driven by tests/kafka_python.rs:  python3 fetch_sessions.py BOOTSTRAP TOPIC

The Rust test has created TOPIC with 3 partitions. This script writes 5 records to
each, reads all 15 with a consumer of the 3 partitions (kafka-python opens a fetch
session and then fetches incrementally), writes 3 more to partition 2 only and reads
them, and checks from kafka-python's own log that the broker opened a session and
answered incremental fetches naming only the partitions that changed, and that the
client never had to throw its session away. Any failed check raises.
"""

import logging
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

TIMEOUT_MS = 10_000


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def read(consumer, count):
    """Exactly `count` records, as (partition, offset, value)."""
    records = []
    while len(records) < count:
        batch = consumer.poll(timeout_ms=TIMEOUT_MS)
        check(batch, f"no records within {TIMEOUT_MS} ms after {len(records)} of {count}")
        for part, recs in batch.items():
            records.extend((part.partition, r.offset, r.value.decode()) for r in recs)
    check(len(records) == count, f"got {len(records)} records, expected {count}")
    return sorted(records)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    captured = Captured()
    fetcher_log = logging.getLogger("kafka.consumer.fetcher")
    fetcher_log.setLevel(logging.DEBUG)
    fetcher_log.addHandler(captured)

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for partition in range(3):
        for i in range(5):
            producer.send(topic, value=f"p{partition}-{i}".encode(), partition=partition)
    producer.flush(timeout=10)

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        enable_incremental_fetch_sessions=True,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    consumer.seek_to_beginning()
    first = read(consumer, 15)
    expected = sorted((p, i, f"p{p}-{i}") for p in range(3) for i in range(5))
    check(first == expected, f"first read: {first}")

    for i in range(5, 8):
        producer.send(topic, value=f"p2-{i}".encode(), partition=2)
    producer.flush(timeout=10)
    later = read(consumer, 3)
    check(later == [(2, 5, "p2-5"), (2, 6, "p2-6"), (2, 7, "p2-7")], f"later read: {later}")
    consumer.close()
    producer.close()

    messages = captured.messages
    opened = [m for m in messages if "created a new incremental fetch session" in m]
    incremental = [m for m in messages if "sent an incremental fetch response for session" in m]
    implied = [m for m in incremental if "(3 implied)" in m or "(2 implied)" in m]
    problems = [
        m for m in messages
        if "invalid" in m or "unable to process" in m or "closing session" in m
    ]
    check(len(opened) == 1, f"one session opened: {opened}")
    check(incremental, "incremental fetches were answered")
    check(implied, f"incremental answers left unchanged partitions out: {incremental[:5]}")
    check(not problems, f"the client threw its session away: {problems}")
    print(f"fetch sessions: all checks passed ({len(incremental)} incremental fetches)")


if __name__ == "__main__":
    main()

"""kafka-python's transactional producer and transaction admin tooling against Sluice.

Driven by tests/kafka_python.rs:  python3 transactions.py BOOTSTRAP TOPIC

TOPIC exists (1 partition). The script commits a transaction of three
records ("py-c0".."py-c2"), checks it with ListTransactions and
DescribeTransactions while it is open and after it commits, aborts a
second transaction of two records ("py-a0", "py-a1"), then reads the
partition with a read_committed consumer, which must see exactly the
committed records. The Rust test then reads it with rdkafka.
"""

import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TransactionalIdNotFoundError

TIMEOUT_MS = 10_000
TXN_ID = "py-txn"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.describe_transactions(["never-used"])
        raise AssertionError("an unknown transactional id was described")
    except TransactionalIdNotFoundError:
        pass

    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=TXN_ID,
                             transaction_timeout_ms=60_000)
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, key=b"k", value=f"py-c{i}".encode(), partition=0)
    producer.flush()

    listed = [t for ts in admin.list_transactions().values() for t in ts]
    mine = [t for t in listed if t.transactional_id == TXN_ID]
    check(len(mine) == 1 and mine[0].state.value == "Ongoing", f"ListTransactions: {listed}")
    ongoing = admin.list_transactions(state_filters=["Ongoing"])
    check(any(t.transactional_id == TXN_ID for ts in ongoing.values() for t in ts),
          f"ListTransactions filtered on Ongoing: {ongoing}")
    d = admin.describe_transactions([TXN_ID])[TXN_ID]
    check(d.state.value == "Ongoing", f"DescribeTransactions: {d}")
    check(d.transaction_timeout_ms == 60_000, f"timeout: {d}")
    check(d.topic_partitions == {TopicPartition(topic, 0)}, f"partitions: {d}")
    check(d.transaction_start_time_ms > 0 and d.producer_id == mine[0].producer_id, f"{d}")

    producer.commit_transaction()
    d = admin.describe_transactions([TXN_ID])[TXN_ID]
    check(d.state.value == "CompleteCommit" and not d.topic_partitions, f"after commit: {d}")

    producer.begin_transaction()
    for i in range(2):
        producer.send(topic, key=b"k", value=f"py-a{i}".encode(), partition=0)
    producer.flush()
    producer.abort_transaction()
    d = admin.describe_transactions([TXN_ID])[TXN_ID]
    check(d.state.value == "CompleteAbort", f"after abort: {d}")
    producer.close()
    admin.close()

    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, consumer_timeout_ms=TIMEOUT_MS)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    values = []
    while consumer.position(tp) < end:
        for recs in consumer.poll(timeout_ms=TIMEOUT_MS).values():
            values.extend(r.value.decode() for r in recs)
    consumer.close()
    check(values == ["py-c0", "py-c1", "py-c2"], f"read_committed read {values}")
    print("transactions: all checks passed")


main()

"""kafka-python over SASL_PLAINTEXT against Sluice.

Driven by tests/security.rs:  python3 sasl.py BOOTSTRAP TOPIC

BOOTSTRAP is a SASL_PLAINTEXT listener with the user alice / alice-secret.
The script produces two records with SCRAM-SHA-256 and reads them back with
PLAIN; a wrong password must fail to connect.
"""

import sys

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def sasl(mechanism, password="alice-secret"):
    return dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                sasl_plain_username="alice", sasl_plain_password=password)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    producer = KafkaProducer(bootstrap_servers=bootstrap, **sasl("SCRAM-SHA-256"))
    for value in (b"py-0", b"py-1"):
        producer.send(topic, value=value, partition=0).get(timeout=10)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, **sasl("PLAIN"))
    from kafka import TopicPartition
    consumer.assign([TopicPartition(topic, 0)])
    got = []
    for m in consumer:
        got.append((m.offset, m.value))
        if len(got) == 2:
            break
    check(got == [(0, b"py-0"), (1, b"py-1")], f"read back: {got}")
    consumer.close()

    # A wrong password: nothing can be sent (no version probe, a short wait).
    bad = KafkaProducer(bootstrap_servers=bootstrap, api_version=(4, 0), max_block_ms=2000,
                        **sasl("SCRAM-SHA-512", password="wrong"))
    try:
        bad.send(topic, value=b"nope", partition=0).get(timeout=5)
        raise AssertionError("a wrong password produced")
    except KafkaError:
        pass
    bad.close(timeout=1)
    print("sasl: all checks passed")


if __name__ == "__main__":
    main()

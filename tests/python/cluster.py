"""confluent-kafka against `sluice --brokers 3` and its HTTP fault endpoints.

Driven by tests/cluster.rs:  python3 cluster.py BOOTSTRAP HTTP TOPIC

BOOTSTRAP lists the three nodes, HTTP is the broker's HTTP server, TOPIC
does not exist yet. An idempotent producer survives two injected
NOT_LEADER_OR_FOLLOWER answers and a disconnect, then the leader of
partition 0 going down; a consumer reads every message once, in order.
"""

import json
import sys
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def http(method, path, body=None):
    """(status, text) of a request to the broker's HTTP server (a JSON body
    sent as `curl -d` sends it, without saying it is JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(HTTP + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def produce(producer, topic, values):
    delivered = []

    def done(err, msg):
        check(err is None, f"delivery of {msg.value()!r} failed: {err}")
        delivered.append(msg.offset())

    for v in values:
        producer.produce(topic, value=v.encode(), partition=0, on_delivery=done)
    left = producer.flush(30)
    check(left == 0, f"{left} messages not delivered")
    return delivered


def leader(admin, topic):
    return admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader


def main():
    global HTTP
    bootstrap, HTTP, topic = sys.argv[1], "http://" + sys.argv[2], sys.argv[3]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=10)
    brokers = admin.list_topics(timeout=10).brokers
    check(sorted(brokers) == [1, 2, 3], f"brokers: {sorted(brokers)}")

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "retry.backoff.ms": 50})
    check(produce(producer, topic, ["warm-up"]) == [0], "warm-up")

    status, text = http("POST", "/api/v1/faults",
                        {"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "times": 2})
    check(status == 200, f"inject: {status} {text}")
    status, text = http("POST", "/api/v1/faults", {"api": "Produce", "disconnect": True})
    check(status == 200, f"inject disconnect: {status} {text}")
    check(produce(producer, topic, ["a", "b", "c"]) == [1, 2, 3], "after the faults")

    down = leader(admin, topic)
    status, text = http("POST", f"/api/v1/brokers/{down}/down")
    check(status == 200, f"down: {status} {text}")
    check(produce(producer, topic, ["d", "e"]) == [4, 5], "after the leader went down")
    check(leader(admin, topic) != down, "the leadership moved")
    status, text = http("POST", f"/api/v1/brokers/{down}/up")
    check(status == 200, f"up: {status} {text}")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-cluster",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < 6:
        msg = consumer.poll(10)
        check(msg is not None, f"only {got}")
        if msg.error():
            continue
        got.append((msg.offset(), msg.value().decode()))
    consumer.close()
    expected = list(enumerate(["warm-up", "a", "b", "c", "d", "e"]))
    check(got == expected, f"read {got}")

    # Bad requests get a message: an unknown node, a bad body, an unknown error.
    status, _ = http("POST", "/api/v1/brokers/9/down")
    check(status == 404, f"unknown node: {status}")
    status, _ = http("POST", "/api/v1/faults", {"api": "Produce"})
    check(status == 400, f"no fault: {status}")
    status, _ = http("POST", "/api/v1/faults", {"api": "Produce", "error": "NO_SUCH_ERROR"})
    check(status == 400, f"unknown error: {status}")
    status, text = http("POST", "/api/v1/faults", {"api": "Metadata", "error": "15"})
    check(status == 400, f"an error fault on an API with no error answer: {status} {text}")
    status, _ = http("POST", "/api/v1/faults", {"api": "Fetch", "delay_ms": 5, "node": 9})
    check(status == 400, f"a fault for an unknown node: {status}")
    status, _ = http("DELETE", "/api/v1/faults")
    check(status == 200, f"clear: {status}")
    print("cluster: all checks passed")


if __name__ == "__main__":
    main()

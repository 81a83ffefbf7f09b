"""kafka-python's admin client on the cluster admin APIs against Sluice.

Driven by tests/kafka_python.rs:  python3 admin.py BOOTSTRAP TOPIC

TOPIC exists (3 partitions). An idempotent producer writes three records to
partition 0; then DescribeTopicPartitions (paged one partition at a time),
DescribeProducers, ElectLeaders, ListPartitionReassignments and
DescribeCluster must answer as Kafka does for a one-node cluster.
"""

import sys

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.structs import TopicPartition


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    for i in range(3):
        producer.send(topic, value=f"v{i}".encode(), partition=0)
    producer.flush()
    producer.close()

    described = admin.describe_topic_partitions([topic])
    partitions = described["topics"][0]["partitions"]
    check([p["partition_index"] for p in partitions] == [0, 1, 2], f"partitions: {described}")
    check(all(p["leader_id"] == 1 and p["isr_nodes"] == [1] for p in partitions), f"{described}")
    first = admin.describe_topic_partitions([topic], response_partition_limit=2)
    cursor = first["next_cursor"]
    check(len(first["topics"][0]["partitions"]) == 2 and cursor["partition_index"] == 2,
          f"paged: {first}")

    producers = admin.describe_producers([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    active = producers[TopicPartition(topic, 0)].active_producers
    check(len(active) == 1 and active[0].last_sequence == 2, f"DescribeProducers: {producers}")
    check(active[0].current_transaction_start_offset == -1, f"not transactional: {active}")
    check(producers[TopicPartition(topic, 1)].active_producers == [], f"{producers}")

    elected = admin.elect_leaders(0, {topic: [0, 1]})
    codes = [p.error_code for r in elected.replica_election_results for p in r.partition_result]
    check(codes == [84, 84], f"ElectLeaders: ELECTION_NOT_NEEDED expected: {elected}")
    check(admin.list_partition_reassignments() == {}, "ListPartitionReassignments")
    cluster = admin.describe_cluster()
    check(cluster["controller_id"] == 1 and len(cluster["brokers"]) == 1, f"{cluster}")

    # ACLs: created, found by a MATCH filter, deleted.
    read = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
               ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
    write = ACL("User:bob", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.TOPIC, "py-", ACLResourcePatternType.PREFIXED))
    created = admin.create_acls([read, write])
    check(len(created["succeeded"]) == 2 and not created["failed"], f"CreateAcls: {created}")
    match = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                      ResourcePatternFilter(ResourceType.TOPIC, "py-orders",
                                            ACLResourcePatternType.MATCH))
    found, error = admin.describe_acls(match)
    check(error.errno == 0 and [a.principal for a in found] == ["User:bob"],
          f"DescribeAcls MATCH: {found} {error}")
    every = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                      ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    deleted = admin.delete_acls([every])
    gone = [acl for _, acls, _ in deleted for acl in acls]
    check(sorted(a.principal for a in gone) == ["User:alice", "User:bob"], f"DeleteAcls: {deleted}")
    found, _ = admin.describe_acls(every)
    check(found == [], f"after DeleteAcls: {found}")

    admin.close()
    print("admin: all checks passed")


if __name__ == "__main__":
    main()

"""kafka-python's admin client manages ACLs that the authorizer enforces.

Driven by tests/kafka_python.rs:  python3 acl.py BOOTSTRAP TOPIC

BOOTSTRAP is a SASL_PLAINTEXT listener of a broker with `authorizer = true`,
the super user admin / admin-secret and the user carol / carol-secret. TOPIC
exists. carol may do nothing until admin grants it; she may not manage ACLs
herself; once admin deletes her binding she is refused again.
"""

import sys

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, ResourcePattern, ResourcePatternFilter,
                         ResourceType)
from kafka.errors import (ClusterAuthorizationFailedError, KafkaError,
                          TopicAuthorizationFailedError)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def login(user):
    return dict(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                sasl_plain_password=f"{user}-secret", api_version=(4, 0))


def produce(user, topic, value):
    """The offset `user` wrote `value` at, or the exception that refused it."""
    producer = KafkaProducer(max_block_ms=5000, **login(user))
    try:
        return producer.send(topic, value=value, partition=0).get(timeout=10).offset
    except KafkaError as e:
        return e
    finally:
        producer.close(timeout=1)


def main():
    global BOOTSTRAP
    BOOTSTRAP, topic = sys.argv[1], sys.argv[2]
    refused = produce("carol", topic, b"nope")
    check(isinstance(refused, TopicAuthorizationFailedError), f"before any ACL: {refused!r}")

    admin = KafkaAdminClient(**login("admin"))
    write = ACL("User:carol", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
    created = admin.create_acls([write])
    check(len(created["succeeded"]) == 1 and not created["failed"], f"created: {created}")
    every = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                      ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    found, error = admin.describe_acls(every)
    check(error.errno == 0 and [(a.principal, a.operation) for a in found]
          == [("User:carol", ACLOperation.WRITE)], f"listed: {found} {error}")

    offset = produce("carol", topic, b"by-carol")
    check(offset == 0, f"carol with WRITE: {offset!r}")

    # carol may not manage ACLs (CLUSTER ALTER and DESCRIBE).
    carol = KafkaAdminClient(**login("carol"))
    mine = ACL("User:carol", "*", ACLOperation.ALL, ACLPermissionType.ALLOW,
               ResourcePattern(ResourceType.CLUSTER, "kafka-cluster",
                               ACLResourcePatternType.LITERAL))
    result = carol.create_acls([mine])
    failed = result["failed"]
    check(failed == [ClusterAuthorizationFailedError], f"carol's create_acls: {result}")
    try:
        carol.describe_acls(every)
        raise AssertionError("carol listed the ACLs")
    except ClusterAuthorizationFailedError:
        pass
    carol.close()

    deleted = admin.delete_acls([every])
    gone = [acl for _, acls, _ in deleted for acl in acls]
    check([a.principal for a in gone] == ["User:carol"], f"deleted: {deleted}")
    admin.close()
    refused = produce("carol", topic, b"nope")
    check(isinstance(refused, TopicAuthorizationFailedError), f"after delete: {refused!r}")
    print("acl: all checks passed")


if __name__ == "__main__":
    main()

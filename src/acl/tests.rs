use super::*;

fn allow(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    operation: i8,
) -> Binding {
    Binding {
        resource_type,
        resource_name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: WILDCARD.into(),
        operation,
        permission: permission::ALLOW,
    }
}

fn any_filter() -> Filter {
    Filter {
        resource_type: resource::ANY,
        resource_name: None,
        pattern_type: pattern::ANY,
        principal: None,
        host: None,
        operation: op::ANY,
        permission: permission::ANY,
    }
}

#[test]
fn bindings_are_stored_matched_by_filters_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acls = Acls::open(dir.path()).expect("open");
    let read_orders = allow(
        resource::TOPIC,
        "orders",
        pattern::LITERAL,
        "User:alice",
        op::READ,
    );
    let write_prefix = allow(
        resource::TOPIC,
        "logs-",
        pattern::PREFIXED,
        "User:bob",
        op::WRITE,
    );
    let bad = Binding {
        principal: "alice".into(),
        ..read_orders.clone()
    };
    let created = acls.create(vec![read_orders.clone(), write_prefix.clone(), bad]);
    assert!(created[0].is_ok() && created[1].is_ok());
    assert_eq!(
        created[2].as_ref().err().map(|e| e.0),
        Some(ResponseError::InvalidRequest)
    );

    let reopened = Acls::open(dir.path()).expect("reopen");
    assert_eq!(
        reopened.describe(&any_filter()).len(),
        2,
        "they survive a restart"
    );
    let matching = Filter {
        resource_type: resource::TOPIC,
        resource_name: Some("logs-app".into()),
        pattern_type: pattern::MATCH,
        ..any_filter()
    };
    assert_eq!(reopened.describe(&matching), vec![write_prefix.clone()]);
    let literal = Filter {
        resource_name: Some("orders".into()),
        pattern_type: pattern::LITERAL,
        ..any_filter()
    };
    let removed = reopened.delete(&[literal]).expect("delete");
    assert_eq!(removed, vec![vec![read_orders]]);
    assert_eq!(reopened.describe(&any_filter()), vec![write_prefix]);
}

#[test]
fn deny_wins_and_operations_imply_describe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acls = Acls::open(dir.path()).expect("open");
    let everything = allow(
        resource::TOPIC,
        WILDCARD,
        pattern::LITERAL,
        "User:alice",
        op::ALL,
    );
    let deny_secret = Binding {
        resource_name: "secret".into(),
        operation: op::READ,
        permission: permission::DENY,
        ..everything.clone()
    };
    let bob_writes = allow(
        resource::TOPIC,
        "logs-",
        pattern::PREFIXED,
        "User:bob",
        op::WRITE,
    );
    let results = acls.create(vec![everything, deny_secret, bob_writes]);
    assert!(results.iter().all(Result::is_ok));
    let can = |who: &str, operation: i8, topic: &str| {
        acls.authorize(who, "127.0.0.1", operation, resource::TOPIC, topic)
    };
    assert!(can("User:alice", op::READ, "orders"));
    assert!(!can("User:alice", op::READ, "secret"), "DENY wins over ALL");
    assert!(can("User:alice", op::WRITE, "secret"));
    assert!(can("User:bob", op::WRITE, "logs-app"));
    assert!(
        can("User:bob", op::DESCRIBE, "logs-app"),
        "WRITE implies DESCRIBE"
    );
    assert!(!can("User:bob", op::READ, "logs-app"));
    assert!(!can("User:bob", op::WRITE, "orders"));
    assert!(
        !can("User:carol", op::DESCRIBE, "orders"),
        "nothing allows carol"
    );
    assert!(!acls.authorize("User:alice", "h", op::READ, resource::GROUP, "g"));
}

#[test]
fn the_authorizer_lets_super_users_and_bindings_through_and_reports_operations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let off = Acls::open(dir.path()).expect("open");
    assert!(
        off.allows("User:anyone", "h", op::DELETE, resource::TOPIC, "t"),
        "without the authorizer everything is allowed"
    );
    let acls = Acls::open(dir.path())
        .expect("open")
        .enforce(&["User:admin".to_string()]);
    assert!(acls.allows("User:admin", "h", op::DELETE, resource::TOPIC, "t"));
    assert!(!acls.allows("User:alice", "h", op::DESCRIBE, resource::TOPIC, "t"));
    assert!(!acls.allows_some("User:alice", "h", op::WRITE, resource::TOPIC));

    let from_one_host = Binding {
        host: "10.0.0.1".into(),
        ..allow(resource::TOPIC, "t", pattern::LITERAL, "User:*", op::READ)
    };
    let writes = allow(
        resource::TOPIC,
        "logs-",
        pattern::PREFIXED,
        "User:alice",
        op::WRITE,
    );
    assert!(
        acls.create(vec![from_one_host, writes])
            .iter()
            .all(Result::is_ok)
    );
    assert!(acls.allows("User:bob", "10.0.0.1", op::READ, resource::TOPIC, "t"));
    assert!(!acls.allows("User:bob", "10.0.0.2", op::READ, resource::TOPIC, "t"));
    assert!(acls.allows_some("User:alice", "h", op::WRITE, resource::TOPIC));
    // READ (1 << 3) and the DESCRIBE it implies (1 << 8), nothing else.
    let bits = acls.operations(
        "User:bob",
        "10.0.0.1",
        resource::TOPIC,
        "t",
        TOPIC_OPERATIONS,
    );
    assert_eq!(bits, (1 << 3) | (1 << 8));

    // A literal DENY of the name "logs-" leaves the prefixed ALLOW standing.
    let deny_literal = Binding {
        permission: permission::DENY,
        ..allow(
            resource::TOPIC,
            "logs-",
            pattern::LITERAL,
            "User:alice",
            op::WRITE,
        )
    };
    assert!(acls.create(vec![deny_literal]).iter().all(Result::is_ok));
    assert!(acls.allows_some("User:alice", "h", op::WRITE, resource::TOPIC));
    // A DENY of every topic name leaves no topic alice may write.
    let deny_all = Binding {
        resource_name: WILDCARD.into(),
        pattern_type: pattern::LITERAL,
        permission: permission::DENY,
        ..allow(
            resource::TOPIC,
            "",
            pattern::LITERAL,
            "User:alice",
            op::WRITE,
        )
    };
    assert!(acls.create(vec![deny_all]).iter().all(Result::is_ok));
    assert!(!acls.allows_some("User:alice", "h", op::WRITE, resource::TOPIC));
}

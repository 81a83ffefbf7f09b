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

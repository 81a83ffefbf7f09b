//! IncrementalAlterConfigs, AlterConfigs and DescribeConfigs, and CreateTopics,
//! with their errors per resource.

use super::*;

fn incremental_op(key: &str, op: i8, value: Option<&str>) -> incremental::AlterableConfig {
    incremental::AlterableConfig::default()
        .with_name(s(key))
        .with_config_operation(op)
        .with_value(value.map(s))
}

async fn incremental_alter(
    raw: &mut Raw,
    topic: &str,
    ops: Vec<incremental::AlterableConfig>,
    validate: bool,
) -> i16 {
    incremental_alter_of(raw, (2, topic), ops, validate).await
}

/// IncrementalAlterConfigs of one resource (type, name).
async fn incremental_alter_of(
    raw: &mut Raw,
    (resource_type, name): (i8, &str),
    ops: Vec<incremental::AlterableConfig>,
    validate: bool,
) -> i16 {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate)
        .with_resources(vec![
            incremental::AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configs(ops),
        ]);
    raw.call(1, &request).await.responses[0].error_code
}

/// `(value, source)` of each named config of a topic, via DescribeConfigs v4.
async fn describe(raw: &mut Raw, topic: &str, keys: &[&str]) -> (i16, Vec<(String, String, i8)>) {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configuration_keys(Some(keys.iter().map(|k| s(k)).collect())),
    ]);
    let response = raw.call(4, &request).await;
    let r = &response.results[0];
    let mut configs: Vec<_> = r
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
            )
        })
        .collect();
    configs.sort();
    (r.error_code, configs)
}

fn cfg(k: &str, v: &str, source: i8) -> (String, String, i8) {
    (k.to_string(), v.to_string(), source)
}

#[tokio::test]
async fn incremental_alter_configs_sets_deletes_appends_and_subtracts() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "inc", 1, &[("retention.ms", "1000")]).await;
    let keys = ["cleanup.policy", "retention.ms", "segment.bytes"];
    let ops = vec![
        incremental_op("segment.bytes", 0, Some("65536")),
        incremental_op("retention.ms", 1, None),
        incremental_op("cleanup.policy", 2, Some("compact")),
    ];
    assert_eq!(incremental_alter(&mut raw, "inc", ops, false).await, 0);
    let (code, configs) = describe(&mut raw, "inc", &keys).await;
    assert_eq!(code, 0);
    assert_eq!(
        configs,
        vec![
            cfg("cleanup.policy", "delete,compact", 1),
            cfg("retention.ms", "604800000", 5),
            cfg("segment.bytes", "65536", 1)
        ]
    );
    let subtract = vec![incremental_op("cleanup.policy", 3, Some("delete"))];
    assert_eq!(incremental_alter(&mut raw, "inc", subtract, false).await, 0);
    let (_, configs) = describe(&mut raw, "inc", &["cleanup.policy"]).await;
    assert_eq!(configs, vec![cfg("cleanup.policy", "compact", 1)]);

    // Refused changes: nothing is applied.
    let before = describe(&mut raw, "inc", &keys).await;
    let bad = vec![
        incremental_op("segment.bytes", 0, Some("1")),
        incremental_op("retention.ms", 0, Some("soon")),
    ];
    assert_eq!(
        incremental_alter(&mut raw, "inc", bad, false).await,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        incremental_alter(
            &mut raw,
            "inc",
            vec![incremental_op("no.such", 0, Some("1"))],
            false
        )
        .await,
        40
    );
    assert_eq!(
        incremental_alter(
            &mut raw,
            "inc",
            vec![incremental_op("retention.ms", 9, Some("1"))],
            false
        )
        .await,
        40
    );
    assert_eq!(
        incremental_alter(
            &mut raw,
            "missing",
            vec![incremental_op("retention.ms", 0, Some("1"))],
            false
        )
        .await,
        3
    );
    let valid_only = vec![incremental_op("retention.ms", 0, Some("5000"))];
    assert_eq!(
        incremental_alter(&mut raw, "inc", valid_only, true).await,
        0
    );
    assert_eq!(
        describe(&mut raw, "inc", &keys).await,
        before,
        "refused or validate-only changes must change nothing"
    );
}

/// APPEND to the cluster's default of a list setting starts from the
/// value under it (the file's), not from a broker's own setting over it:
/// that setting was copied into the default, and showed once it was gone.
#[tokio::test]
async fn a_cluster_default_append_starts_from_the_value_under_it() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let policy = |op, value| vec![incremental_op("log.cleanup.policy", op, value)];
    for (scope, op, value) in [
        ("1", 0, Some("compact")),
        ("", 2, Some("compact")),
        ("1", 1, None),
    ] {
        let code = incremental_alter_of(&mut raw, (4, scope), policy(op, value), false).await;
        assert_eq!(code, 0, "{scope:?} {op}");
    }
    create(&mut raw, "under", 1, &[]).await;
    let (_, configs) = describe(&mut raw, "under", &["cleanup.policy"]).await;
    assert_eq!(configs[0].1, "compact,delete");
}

async fn alter(raw: &mut Raw, resource_type: i8, name: &str, pairs: &[(&str, &str)]) -> i16 {
    let configs = pairs
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(s(k))
                .with_value(Some(s(v)))
        })
        .collect();
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs),
    ]);
    raw.call(2, &request).await.responses[0].error_code
}

#[tokio::test]
async fn config_apis_report_errors_per_resource() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "cfg", 1, &[("retention.ms", "5000")]).await;
    assert_eq!(
        alter(&mut raw, 2, "cfg", &[("retention.ms", "soon")]).await,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        alter(&mut raw, 2, "cfg", &[("no.such.config", "1")]).await,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        alter(&mut raw, 2, "missing", &[("retention.ms", "1")]).await,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_ne!(
        alter(&mut raw, 4, "1", &[("num.partitions", "3")]).await,
        0,
        "broker settings are static"
    );
    assert_eq!(
        describe(&mut raw, "cfg", &["retention.ms"]).await,
        (0, vec![cfg("retention.ms", "5000", 1)])
    );
    assert_eq!(
        describe(&mut raw, "missing", &["retention.ms"]).await.0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
}

#[tokio::test]
async fn create_topics_reports_errors_per_topic() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "exists", 1, &[]).await;
    let topic = |n: &str, partitions: i32, replication: i16| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
    };
    let assignment = CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(vec![BrokerId(1)]);
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            topic("good", 3, -1).with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1234"))),
            ]),
            topic("exists", 1, 1),
            topic("zero", 0, 1),
            topic("bad name!", 1, 1),
            topic("replicated", 1, 2),
            topic("both", 2, 1).with_assignments(vec![assignment]),
            topic("bad-config", 1, 1).with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(s("segment.bytes"))
                    .with_value(Some(s("x"))),
            ]),
        ]);
    let response = raw.call(7, &request).await;
    let codes: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.error_code))
        .collect();
    let want: Vec<(String, i16)> = [
        ("good", 0),
        ("exists", 36),
        ("zero", 37),
        ("bad name!", 17),
        ("replicated", 38),
        ("both", 42),
        ("bad-config", 40),
    ]
    .iter()
    .map(|(n, c)| (n.to_string(), *c))
    .collect();
    assert_eq!(codes, want);
    let good = &response.topics[0];
    assert_eq!((good.num_partitions, good.replication_factor), (3, 1));
    let retention = good
        .configs
        .as_ref()
        .expect("v5+ configs")
        .iter()
        .find(|c| c.name.as_str() == "retention.ms");
    assert_eq!(
        retention.and_then(|c| c.value.as_ref()).map(|v| v.as_str()),
        Some("1234")
    );
    assert!(
        response.topics[1..]
            .iter()
            .all(|t| t.error_message.is_some()),
        "errors carry a message"
    );
}

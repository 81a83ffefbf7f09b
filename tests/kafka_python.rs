//! kafka-python, a third client with its own protocol code, against an
//! in-process broker, with rdkafka on the other end (tests/python/client.py).
//! The test installs kafka-python itself, once, into the build directory (see
//! `common::tools::kafka_python`); without python3, pip or PyPI it is skipped.

mod common;

use std::process::Stdio;

use common::*;
use rdkafka::Offset;
use rdkafka::message::Timestamp;
use rdkafka::producer::FutureRecord;

/// Runs `tests/python/<name>.py BOOTSTRAP TOPIC` with kafka-python, and
/// fails unless it exits 0 and prints `passed`; returns its stdout.
async fn run_script(
    python: &tools::Python,
    name: &str,
    bootstrap: &str,
    topic: &str,
    passed: &str,
) -> String {
    let script = format!("{}/tests/python/{name}.py", env!("CARGO_MANIFEST_DIR"));
    let child = python
        .command()
        .args([script.as_str(), bootstrap, topic])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed");
    let what = format!("tests/python/{name}.py");
    let output = blocking(move || wait_with_timeout(child, WAIT * 2, &what)).await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(passed),
        "kafka-python scenario {name} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test]
async fn kafka_python_reads_rdkafka_records_administers_and_writes_for_rdkafka() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker().await;
    let topic = unique_topic("kafka-python");
    create_topic(
        &broker.bootstrap(),
        &topic,
        2,
        &[("retention.ms", "123456789")],
    )
    .await;
    let producer = producer(&broker.bootstrap(), &[]);
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let values: Vec<String> = (0..50).map(|i| format!("rd-{i}")).collect();
    let pending: Vec<_> = (0..50)
        .map(|i| {
            send_or_wait(
                &producer,
                FutureRecord::to(&topic)
                    .partition(1)
                    .key(&keys[i])
                    .payload(&values[i]),
            )
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(await_delivery(p).await, Ok((1, i as i64)));
    }

    run_script(
        &python,
        "client",
        &broker.bootstrap(),
        &topic,
        "kafka-python: all checks passed",
    )
    .await;

    // What kafka-python wrote (gzip batches, headers, timestamps) after its DeleteRecords.
    let consumer = consumer(&broker.bootstrap(), &[]);
    assert_eq!(watermarks(&consumer, &topic, 0), (10, 100));
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_exactly(&consumer, 90, WAIT);
    for (r, i) in got.iter().zip(10..) {
        let want = Rec {
            partition: 0,
            offset: i,
            key: Some(format!("py-k{i}").into_bytes()),
            value: Some(format!("py-v{i}").into_bytes()),
            headers: vec![("i".to_string(), Some(i.to_string().into_bytes()))],
            timestamp: Timestamp::CreateTime(2_000_000 + i),
        };
        assert_eq!(r, &want);
    }
}

#[tokio::test]
async fn kafka_python_writes_updates_and_tombstones_and_reads_the_compacted_state() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker_with(|c| c.log_cleaner_backoff_ms = 50).await;
    let topic = unique_topic("kafka-python-compacted");
    let stdout = run_script(
        &python,
        "compaction",
        &broker.bootstrap(),
        &topic,
        "compaction: all checks passed",
    )
    .await;
    assert!(
        stdout.contains("keyless refused: InvalidRecordError"),
        "{stdout}"
    );
    // The latest record of each key, at the offsets kafka-python wrote them:
    // rounds of 5 keys from offset 0, the tombstone of py-0 at 100.
    let python_view: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        python_view,
        [
            "96 py-1 r19",
            "97 py-2 r19",
            "98 py-3 r19",
            "99 py-4 r19",
            "100 py-0 null"
        ]
    );
    // rdkafka reads the same.
    let consumer = consumer(&broker.bootstrap(), &[]);
    assign(&consumer, &topic, &[0], Offset::Beginning);
    let got = consume_at_least(&consumer, 5, WAIT);
    let rd_view: Vec<String> = got[..5]
        .iter()
        .map(|r| {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).to_string();
            let value = r.value.as_deref().map_or("null".to_string(), |v| {
                String::from_utf8_lossy(v).to_string()
            });
            format!("{} {key} {value}", r.offset)
        })
        .collect();
    assert_eq!(rd_view, python_view);
}

#[tokio::test]
async fn kafka_python_runs_transactions_and_lists_and_describes_them() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker().await;
    let topic = unique_topic("kafka-python-txn");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    run_script(
        &python,
        "transactions",
        &broker.bootstrap(),
        &topic,
        "transactions: all checks passed",
    )
    .await;
    // rdkafka: read_committed sees the committed three at offsets 0..3; read
    // uncommitted also the aborted two after the first marker.
    let got = read_values(&broker.bootstrap(), &topic, "read_committed", 3);
    assert_eq!(
        got,
        [
            (0, "py-c0".to_string()),
            (1, "py-c1".to_string()),
            (2, "py-c2".to_string())
        ]
    );
    let got = read_values(&broker.bootstrap(), &topic, "read_uncommitted", 5);
    assert_eq!(
        got,
        [
            (0, "py-c0".to_string()),
            (1, "py-c1".to_string()),
            (2, "py-c2".to_string()),
            (4, "py-a0".to_string()),
            (5, "py-a1".to_string())
        ]
    );
}

#[tokio::test]
async fn kafka_python_describes_partitions_and_producers_and_elects_leaders() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker().await;
    let topic = unique_topic("kafka-python-admin");
    create_topic(&broker.bootstrap(), &topic, 3, &[]).await;
    run_script(
        &python,
        "admin",
        &broker.bootstrap(),
        &topic,
        "admin: all checks passed",
    )
    .await;
}

#[tokio::test]
async fn kafka_python_logs_in_with_scram_and_plain_and_a_wrong_password_fails() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker_with(|c| sasl_listener(c, &["alice"])).await;
    let topic = unique_topic("kafka-python-sasl");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let sasl = broker.listener(sluice::security::SecurityProtocol::SaslPlaintext);
    run_script(&python, "sasl", &sasl, &topic, "sasl: all checks passed").await;
    let got = read_values(&broker.bootstrap(), &topic, "read_uncommitted", 2);
    assert_eq!(got, [(0, "py-0".to_string()), (1, "py-1".to_string())]);
}

#[tokio::test]
async fn kafka_python_manages_acls_that_the_authorizer_enforces() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker_with(|c| {
        sasl_listener(c, &["admin", "carol"]);
        c.authorizer = true;
        c.super_users = vec!["User:admin".into(), "User:ANONYMOUS".into()];
    })
    .await;
    let topic = unique_topic("kafka-python-acl");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let sasl = broker.listener(sluice::security::SecurityProtocol::SaslPlaintext);
    run_script(&python, "acl", &sasl, &topic, "acl: all checks passed").await;
    let got = read_values(&broker.bootstrap(), &topic, "read_uncommitted", 1);
    assert_eq!(
        got,
        [(0, "by-carol".to_string())],
        "only the granted write landed"
    );
}

#[tokio::test]
async fn kafka_python_fetches_incrementally_in_a_fetch_session() {
    let Some(python) = tools::kafka_python(file!()) else {
        return;
    };
    let broker = start_broker().await;
    let topic = unique_topic("kafka-python-sessions");
    create_topic(&broker.bootstrap(), &topic, 3, &[]).await;
    run_script(
        &python,
        "fetch_sessions",
        &broker.bootstrap(),
        &topic,
        "fetch sessions: all checks passed",
    )
    .await;
}

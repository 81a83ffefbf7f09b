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

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client.py");
    let child = python
        .command()
        .args([script, &broker.bootstrap(), &topic])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed");
    let output =
        blocking(move || wait_with_timeout(child, WAIT * 2, "tests/python/client.py")).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kafka-python scenario failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("kafka-python: all checks passed"),
        "{stdout}"
    );

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

//! The HTTP server: `/metrics` counts what real clients did, `/healthz`,
//! the JSON behind the status page, bad input on the HTTP port leaves Kafka
//! clients alone, and the binary's `--http` flag.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::http::{get, sample};
use common::*;
use rdkafka::producer::FutureRecord;

#[tokio::test]
async fn metrics_and_the_json_api_show_what_clients_did() {
    let broker = start_broker_with(|c| c.http_listen = Some("127.0.0.1:0".into())).await;
    let http = broker.http_addr().expect("the HTTP server runs");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("observed");
    create_topic(&bootstrap, &topic, 1, &[("retention.ms", "86400000")]).await;
    let group = unique_topic("observers");
    let member = produce_and_commit(&bootstrap, (&topic, &group), 30, 20).await;

    let (status, metrics) = blocking(move || get(http, "/metrics")).await;
    assert_eq!(status, 200);
    let topic_label = format!("{{topic=\"{topic}\"}}");
    let partition = format!("{{topic=\"{topic}\",partition=\"0\"}}");
    let lag = format!("{{group=\"{group}\",topic=\"{topic}\",partition=\"0\"}}");
    assert_eq!(
        sample(
            &metrics,
            &format!("sluice_topic_messages_in_total{topic_label}")
        ),
        Some(30.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            &format!("sluice_topic_bytes_in_total{topic_label}")
        )
        .unwrap_or(0.0)
            > 30.0 * 2.0
    );
    assert!(
        sample(
            &metrics,
            &format!("sluice_topic_bytes_out_total{topic_label}")
        )
        .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("sluice_partition_log_end_offset{partition}")
        ),
        Some(30.0)
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("sluice_partition_high_watermark{partition}")
        ),
        Some(30.0)
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("sluice_partition_log_start_offset{partition}")
        ),
        Some(0.0)
    );
    assert!(
        sample(&metrics, &format!("sluice_partition_size_bytes{partition}")).unwrap_or(0.0) > 0.0
    );
    assert_eq!(
        sample(&metrics, &format!("sluice_group_lag{lag}")),
        Some(10.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("sluice_group_members{{group=\"{group}\"}}")
        ),
        Some(1.0)
    );
    assert!(sample(&metrics, "sluice_requests_total{api=\"Produce\"}").unwrap_or(0.0) >= 30.0);
    assert!(
        sample(
            &metrics,
            "sluice_request_duration_seconds_count{api=\"Fetch\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(sample(&metrics, "sluice_connections").unwrap_or(0.0) >= 2.0);
    assert!(metrics.contains("# TYPE sluice_fsync_duration_seconds histogram"));

    let (status, body) = blocking(move || get(http, "/healthz")).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, topics) = blocking(move || get(http, "/api/v1/topics")).await;
    assert_eq!(status, 200);
    let topics: serde_json::Value = serde_json::from_str(&topics).expect("JSON");
    let mine = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic.as_str())
        .expect("the topic");
    assert_eq!(mine["partitions"][0]["log_end_offset"], 30);
    assert_eq!(mine["partitions"][0]["high_watermark"], 30);
    assert_eq!(mine["configs"]["retention.ms"], "86400000");
    let (_, groups) = blocking(move || get(http, "/api/v1/groups")).await;
    let groups: serde_json::Value = serde_json::from_str(&groups).expect("JSON");
    let mine = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == group.as_str())
        .expect("the group");
    assert_eq!(mine["offsets"][0]["committed_offset"], 20);
    assert_eq!(mine["offsets"][0]["lag"], 10);
    assert_eq!(mine["members"].as_array().map(Vec::len), Some(1));
    let (_, clients) = blocking(move || get(http, "/api/v1/clients")).await;
    let clients: serde_json::Value = serde_json::from_str(&clients).expect("JSON");
    assert!(
        clients
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["software_name"] == "librdkafka"),
        "ApiVersions v3 names librdkafka: {clients}"
    );
    let (status, page) = blocking(move || get(http, "/")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Sluice</title>") && page.contains("/api/v1/"));
    // A single broker takes no faults from the network (only a test cluster does).
    let (status, _) = blocking(move || get(http, "/api/v1/faults")).await;
    assert_eq!(status, 404);
    drop(member);
}

#[tokio::test]
async fn garbage_on_the_http_port_leaves_kafka_clients_alone() {
    let broker = start_broker_with(|c| c.http_listen = Some("127.0.0.1:0".into())).await;
    let http = broker.http_addr().expect("the HTTP server runs");
    let slow = blocking(move || {
        let mut garbage = TcpStream::connect(http).expect("connect");
        garbage.write_all(&[0xff; 4096]).expect("garbage");
        let mut huge = TcpStream::connect(http).expect("connect");
        let _ = write!(
            huge,
            "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(1 << 20)
        );
        // A slow client that never finishes its request.
        let mut slow = TcpStream::connect(http).expect("connect");
        slow.write_all(b"GET /metr").expect("partial");
        slow
    })
    .await;
    let topic = unique_topic("unbothered");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<str, str>::to(&topic)
        .partition(0)
        .payload("still here");
    assert_eq!(
        await_delivery(send_or_wait(&producer, record)).await,
        Ok((0, 0))
    );
    let (status, _) = blocking(move || get(http, "/healthz")).await;
    assert_eq!(status, 200, "the HTTP server still answers others");
    drop(slow);
}

#[test]
fn the_binary_serves_http_by_default_and_refuses_a_taken_explicit_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    // An explicit address that cannot be bound stops start-up with exit code 2.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--listen", "127.0.0.1:0", "--http", &addr, "--data-dir"])
        .arg(dir.path().join("a"))
        .output()
        .expect("run sluice");
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains(&addr), "the error names the address: {text}");
    // `--http :0` picks a free port and the ready line says which.
    let broker = BrokerProcess::start(&dir.path().join("b"), &["--http", ":0"]);
    let line = broker.output();
    let http = line
        .split("http=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no http= address in {line}"));
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut s) = TcpStream::connect(http) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let _ = write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            break;
        }
        assert!(Instant::now() < deadline, "nothing listens on {http}");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.terminate();
    // `--http none`: no server, and the ready line says so.
    let broker = BrokerProcess::start(&dir.path().join("c"), &["--http", "none"]);
    assert!(broker.output().contains("http=off"), "{}", broker.output());
    broker.terminate();
}

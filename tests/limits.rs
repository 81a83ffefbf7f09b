//! Resource limits, through raw sockets: connections per address, connections
//! in all, idle connections, and the budget of request bytes in flight. Each
//! test ends with a real client producing and consuming.

mod common;

use std::time::{Duration, Instant};

use common::raw::*;
use common::*;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::Offset;

async fn served(raw: &mut Raw) -> bool {
    let (id, payload) = raw.encode(3, &ApiVersionsRequest::default());
    raw.send_frame(&payload).await;
    let frame = raw.read_frame(READ_WAIT).await;
    frame.len() >= 4 && i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) == id
}

/// An ApiVersions v0 request frame: size 10, api key 18, version 0,
/// correlation id 1, null client id.
const API_VERSIONS_V0: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];

/// Connects until an ApiVersions v0 is answered (not closed), within `WAIT`.
async fn connect_until_served(bootstrap: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + WAIT;
    loop {
        let mut stream = tokio::net::TcpStream::connect(bootstrap)
            .await
            .expect("connect");
        stream.write_all(&API_VERSIONS_V0).await.expect("send");
        let mut size = [0u8; 4];
        let read = tokio::time::timeout(READ_WAIT, stream.read_exact(&mut size)).await;
        if matches!(read, Ok(Ok(_))) {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "no connection was served within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_over_the_per_address_limit_are_closed() {
    let broker = start_broker_with(|c| c.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        assert!(served(&mut raw).await);
        held.push(raw);
    }
    let mut over = Raw::connect(&broker.bootstrap()).await;
    assert!(
        over.is_closed().await,
        "a fourth connection from one address is closed"
    );
    held.pop();
    let again = connect_until_served(&broker.bootstrap()).await;
    drop((held, again));
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn connections_over_the_limit_wait_to_be_served() {
    let broker = start_broker_with(|c| c.max_connections = 2).await;
    let mut a = Raw::connect(&broker.bootstrap()).await;
    let mut b = Raw::connect(&broker.bootstrap()).await;
    assert!(served(&mut a).await && served(&mut b).await);
    let mut c = Raw::connect(&broker.bootstrap()).await;
    let (id, payload) = c.encode(3, &ApiVersionsRequest::default());
    c.send_frame(&payload).await;
    assert!(
        c.is_silent_for(Duration::from_millis(300)).await,
        "the third waits"
    );
    drop(a);
    let frame = c.read_frame(READ_WAIT).await;
    assert_eq!(
        i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]),
        id
    );
    drop((b, c));
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let broker = start_broker_with(|c| c.connections_max_idle_ms = 200).await;
    let mut idle = Raw::connect(&broker.bootstrap()).await;
    assert!(idle.is_closed().await, "a silent connection is closed");
    a_real_client_still_works(&broker.bootstrap()).await;
}

#[tokio::test]
async fn a_connection_in_use_outlives_the_idle_time_and_closes_once_silent() {
    let broker = start_broker_with(|c| c.connections_max_idle_ms = 300).await;
    let mut busy = Raw::connect(&broker.bootstrap()).await;
    let started = std::time::Instant::now();
    // A request every 100 ms for three idle times: each is answered.
    while started.elapsed() < Duration::from_millis(900) {
        let versions = busy.call(3, &ApiVersionsRequest::default()).await;
        assert_eq!(versions.error_code, 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        busy.is_closed().await,
        "a connection silent for its idle time is closed"
    );
}

#[tokio::test]
async fn a_spent_in_flight_budget_stops_reading_until_requests_are_answered() {
    let broker = start_broker_with(|c| c.queued_max_request_bytes = 1024).await;
    let topic = unique_topic("budget");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    // A parked fetch whose frame (padded by a long client rack id) takes most of the budget.
    let mut parked = Raw::connect(&broker.bootstrap()).await;
    let fetch = FetchRequest::default()
        .with_max_wait_ms(1500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_rack_id(StrBytes::from_string("r".repeat(900)))
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let (_, payload) = parked.encode(11, &fetch);
    assert!(payload.len() > 900 && payload.len() < 1024);
    parked.send_frame(&payload).await;
    assert!(parked.is_silent_for(Duration::from_millis(200)).await);
    // Not enough budget is left for another request: it is not even read...
    let mut waiting = Raw::connect(&broker.bootstrap()).await;
    let (id, payload) = waiting.encode(3, &ApiVersionsRequest::default());
    waiting.send_frame(&payload).await;
    assert!(waiting.is_silent_for(Duration::from_millis(500)).await);
    // ...until the fetch times out and gives its share back.
    let _ = parked.read_frame(READ_WAIT).await;
    let frame = waiting.read_frame(READ_WAIT).await;
    assert_eq!(
        i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]),
        id
    );
    a_real_client_still_works(&broker.bootstrap()).await;
}

/// Open descriptors of this process on `.log` files of `topic` in `data_dir`.
fn open_log_files(data_dir: &std::path::Path, topic: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            let partition = target.parent().and_then(|p| p.strip_prefix(data_dir).ok());
            partition.is_some_and(|p| p.to_string_lossy().starts_with(&format!("{topic}-")))
                && target.extension().is_some_and(|e| e == "log")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_segment_files_held_open_stay_within_max_open_segment_files() {
    let broker = start_broker_with(|c| {
        c.log.segment_bytes = 1024;
        c.max_open_segment_files = 2;
    })
    .await;
    let b = broker.bootstrap();
    let topic = unique_topic("open-files");
    create_topic(&b, &topic, 2, &[]).await;
    let producer = producer(&b, &[]);
    for _ in 0..12 {
        for p in 0..2 {
            produce_n(&producer, &topic, p, 20).await;
        }
    }
    let segments = |p: i32| {
        std::fs::read_dir(broker.data_dir().join(format!("{topic}-{p}")))
            .expect("partition dir")
            .filter(|f| {
                f.as_ref()
                    .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "log"))
            })
            .count()
    };
    assert!(segments(0) + segments(1) >= 10, "many sealed segments");

    // Reading everything from the start opens every sealed segment in turn.
    for _ in 0..2 {
        let consumer = consumer(&b, &[]);
        assign(&consumer, &topic, &[0, 1], Offset::Beginning);
        let records = consume_exactly(&consumer, 480, Duration::from_secs(30));
        for p in 0..2 {
            let seen: Vec<(i64, String)> = records
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| (r.offset, r.value_str().to_string()))
                .collect();
            let expected: Vec<(i64, String)> =
                (0..240).map(|o| (o, format!("value-{}", o % 20))).collect();
            assert_eq!(seen, expected, "partition {p}");
        }
    }
    // Two active segments, and at most two sealed ones.
    let open = open_log_files(broker.data_dir(), &topic);
    assert!(open <= 4, "{open} .log files of the topic open");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_answer_stays_within_fetch_max_bytes_whatever_the_client_asks() {
    let broker = start_broker_with(|c| c.fetch_max_bytes = 1024).await;
    let b = broker.bootstrap();
    let topic = unique_topic("fetch-max");
    create_topic(&b, &topic, 3, &[]).await;
    let mut raw = Raw::connect(&b).await;
    let value = |p: i32, i: i64| format!("p{p}-{i}-{}", "x".repeat(600));
    for p in 0..3 {
        for i in 0..2 {
            let records = batch(&[record(0, 1_700_000_000_000, None, Some(&value(p, i)))]);
            assert_eq!(produce(&mut raw, 9, &topic, p, records).await, (0, i));
        }
    }

    // The client asks for all it may; the broker's 1024 bytes let one batch
    // of about 700 through, and no second one, of this partition or another.
    let mut request = fetch_request(&topic, &[0, 1, 2], 0, 0).with_max_bytes(i32::MAX);
    for p in &mut request.topics[0].partitions {
        p.partition_max_bytes = i32::MAX;
    }
    let answer = raw.call(12, &request).await;
    let got: Vec<(i32, i64, Vec<i64>)> = answer.responses[0]
        .partitions
        .iter()
        .map(|p| {
            let records = p.records.clone().unwrap_or_default();
            let offsets = decode_records(&records).iter().map(|r| r.offset).collect();
            (p.partition_index, p.high_watermark, offsets)
        })
        .collect();
    assert_eq!(got, vec![(0, 2, vec![0]), (1, 2, vec![]), (2, 2, vec![])]);

    // A consumer asking for the most librdkafka allows still gets every
    // message, in order, over several answers.
    let consumer = consumer(
        &b,
        &[
            ("fetch.max.bytes", "2147482000"),
            ("receive.message.max.bytes", "2147483647"),
        ],
    );
    assign(&consumer, &topic, &[0, 1, 2], Offset::Beginning);
    let records = consume_exactly(&consumer, 6, Duration::from_secs(30));
    for p in 0..3 {
        let seen: Vec<(i64, String)> = records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| (r.offset, r.value_str().to_string()))
            .collect();
        assert_eq!(
            seen,
            vec![(0, value(p, 0)), (1, value(p, 1))],
            "partition {p}"
        );
    }
}

/// A connection whose client asked for one fetch answer of 24 MB and has
/// read its first four bytes: the rest cannot fit the broker's send buffer
/// (4 MiB at most on Linux's defaults) and the client's receive buffer (set
/// to 64 KiB), so the broker's write of it waits on the client.
async fn fetching_without_reading(bootstrap: &str) -> (tokio::net::TcpStream, String, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let topic = unique_topic("unread");
    create_topic(bootstrap, &topic, 1, &[]).await;
    let mut raw = Raw::connect(bootstrap).await;
    let value = "x".repeat(500_000);
    for i in 0..48 {
        let records = batch(&[record(0, 1_700_000_000_000, None, Some(&value))]);
        assert_eq!(produce(&mut raw, 9, &topic, 0, records).await, (0, i));
    }
    let mut request = fetch_request(&topic, &[0], 0, 0).with_max_bytes(32 << 20);
    request.topics[0].partitions[0].partition_max_bytes = 32 << 20;
    let (_, payload) = raw.encode(12, &request);
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    let address = bootstrap.parse().expect("a socket address");
    let mut stream = socket.connect(address).await.expect("connect");
    let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    stream.write_all(&frame).await.expect("send the fetch");
    let mut size = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut size))
        .await
        .expect("the answer begins")
        .expect("read");
    let size = i32::from_be_bytes(size) as usize;
    assert!(size > 24_000_000, "an answer of 24 MB");
    (stream, topic, size)
}

/// Descriptors this process holds on files of `topic`, deleted ones too.
fn open_files_of(topic: &str) -> usize {
    let needle = format!("/{topic}-");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains(&needle))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_takes_no_reply_is_closed_after_the_idle_time() {
    let broker = start_broker_with(|c| c.connections_max_idle_ms = 1_000).await;
    let (stalled, topic, _) = fetching_without_reading(&broker.bootstrap()).await;
    let deleted = admin(&broker.bootstrap())
        .delete_topics(&[&topic], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(deleted, vec![Ok(topic.clone())]);
    // The unsent answer holds the deleted topic's segment file (and its disk
    // space) until the connection is closed, while the client still holds it.
    let deadline = Instant::now() + WAIT;
    while open_files_of(&topic) > 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled connection still holds the topic's files"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_takes_no_reply_does_not_hold_the_stop() {
    let mut broker = start_broker_with(|c| c.shutdown_reply_timeout_ms = 100).await;
    let (stalled, ..) = fetching_without_reading(&broker.bootstrap()).await;
    let stop = tokio::time::timeout(WAIT, broker.try_stop()).await;
    assert!(matches!(stop, Ok(Ok(()))), "the broker stopped: {stop:?}");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reads_slowly_gets_its_whole_reply_however_long_it_takes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = start_broker_with(|c| c.connections_max_idle_ms = 2_000).await;
    let (mut slow, _, size) = fetching_without_reading(&broker.bootstrap()).await;
    // 1 MiB every 200 ms: about 5 s in all, more than the idle time, but
    // never a pause near it.
    let mut piece = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < size {
        let n = piece.len().min(size - got);
        tokio::time::timeout(WAIT, slow.read_exact(&mut piece[..n]))
            .await
            .expect("the reply goes on")
            .unwrap_or_else(|e| panic!("closed after {got} of {size} bytes: {e}"));
        got += n;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Taking the reply kept the connection in use: it still answers.
    slow.write_all(&API_VERSIONS_V0).await.expect("send");
    let mut size = [0u8; 4];
    tokio::time::timeout(WAIT, slow.read_exact(&mut size))
        .await
        .expect("an answer")
        .expect("the connection is still open");
}

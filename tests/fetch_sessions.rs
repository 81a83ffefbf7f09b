//! Fetch sessions (KIP-227) on the wire: a full fetch at epoch 0 opens a
//! session; incremental fetches name only what changed and get back only
//! partitions with something new; a wrong epoch, an unknown session, a
//! forgotten partition and closing the session behave as in Kafka; the
//! byte budget goes round the session's partitions.
//! (kafka-python's own sessions: tests/kafka_python.rs.)

mod common;

use bytes::Bytes;
use common::raw::*;
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

fn one(value: &str) -> Bytes {
    batch(&[record(0, 1_700_000_000_000, None, Some(value))])
}

/// A fetch of session `id` at `epoch`, naming `partitions` (index, offset).
fn session_fetch(topic: &str, id: i32, epoch: i32, partitions: &[(i32, i64)]) -> FetchRequest {
    let mut request = fetch_request(topic, &[], 0, 0)
        .with_session_id(id)
        .with_session_epoch(epoch);
    request.topics[0].partitions = partitions
        .iter()
        .map(|&(p, offset)| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    if partitions.is_empty() {
        request.topics.clear();
    }
    request
}

/// (partition, high watermark, values) of every partition answered.
fn answered(response: &FetchResponse) -> Vec<(i32, i64, Vec<String>)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            let records = p.records.clone().unwrap_or_default();
            let values = decode_records(&records)
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into())
                .collect();
            (p.partition_index, p.high_watermark, values)
        })
        .collect()
}

fn values(list: &[&str]) -> Vec<String> {
    list.iter().map(|v| v.to_string()).collect()
}

#[tokio::test]
async fn a_session_answers_only_what_changed_and_refuses_a_wrong_epoch_or_id() {
    let broker = start_broker().await;
    let topic = unique_topic("sessions");
    create_topic(&broker.bootstrap(), &topic, 3, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for p in 0..3 {
        assert_eq!(
            produce(&mut raw, 9, &topic, p, one(&format!("p{p}-0"))).await,
            (0, 0)
        );
    }

    // Epoch 0 opens a session: a full answer.
    let full = raw
        .call(12, &session_fetch(&topic, 0, 0, &[(0, 0), (1, 0), (2, 0)]))
        .await;
    let id = full.session_id;
    assert_ne!(id, 0, "a session was opened");
    assert_eq!(
        answered(&full),
        vec![
            (0, 1, values(&["p0-0"])),
            (1, 1, values(&["p1-0"])),
            (2, 1, values(&["p2-0"]))
        ]
    );

    // The client moved past the records: nothing new anywhere.
    let moved = session_fetch(&topic, id, 1, &[(0, 1), (1, 1), (2, 1)]);
    let quiet = raw.call(12, &moved).await;
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert_eq!(answered(&quiet), vec![]);

    // A record in partition 1: only it is answered, though the request names none.
    assert_eq!(produce(&mut raw, 9, &topic, 1, one("p1-1")).await, (0, 1));
    let news = raw.call(12, &session_fetch(&topic, id, 2, &[])).await;
    assert_eq!(answered(&news), vec![(1, 2, values(&["p1-1"]))]);

    // The same epoch again, or an unknown session: refused as a whole.
    let again = raw.call(12, &session_fetch(&topic, id, 2, &[])).await;
    assert_eq!(
        (again.error_code, answered(&again)),
        (INVALID_FETCH_SESSION_EPOCH, vec![])
    );
    let unknown = raw
        .call(12, &session_fetch(&topic, id ^ 0x55, 3, &[]))
        .await;
    assert_eq!(unknown.error_code, FETCH_SESSION_ID_NOT_FOUND);

    // Forgetting partition 1: its news is no longer answered; partition 0's is.
    let mut forget = session_fetch(&topic, id, 3, &[(1, 2)]);
    forget.topics.clear();
    forget.forgotten_topics_data = vec![
        ForgottenTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
            .with_partitions(vec![1]),
    ];
    assert_eq!(answered(&raw.call(12, &forget).await), vec![]);
    assert_eq!(produce(&mut raw, 9, &topic, 1, one("p1-2")).await, (0, 2));
    assert_eq!(produce(&mut raw, 9, &topic, 0, one("p0-1")).await, (0, 1));
    let after = raw.call(12, &session_fetch(&topic, id, 4, &[])).await;
    assert_eq!(answered(&after), vec![(0, 2, values(&["p0-1"]))]);

    // Epoch -1 closes the session: a full answer without one; the id is gone.
    let closing = raw
        .call(12, &session_fetch(&topic, id, -1, &[(2, 1)]))
        .await;
    assert_eq!(
        (closing.session_id, answered(&closing)),
        (0, vec![(2, 1, vec![])])
    );
    let gone = raw.call(12, &session_fetch(&topic, id, 5, &[])).await;
    assert_eq!(gone.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

#[tokio::test]
async fn a_partition_that_returned_records_waits_behind_the_others() {
    let broker = start_broker().await;
    let topic = unique_topic("sessions-turns");
    create_topic(&broker.bootstrap(), &topic, 2, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for p in 0..2 {
        for i in 0..2 {
            let value = format!("p{p}-{i}");
            assert_eq!(produce(&mut raw, 9, &topic, p, one(&value)).await, (0, i));
        }
    }
    // A budget of one byte: only the first partition with records answers
    // one batch (KIP-74), the other answers none.
    let budget = |mut request: FetchRequest| {
        request.max_bytes = 1;
        request
    };
    let full = raw
        .call(12, &budget(session_fetch(&topic, 0, 0, &[(0, 0), (1, 0)])))
        .await;
    assert_eq!(
        answered(&full),
        vec![(0, 2, values(&["p0-0"])), (1, 2, vec![])]
    );
    // Partition 0 had its turn: partition 1 goes first now, then 0 again.
    let id = full.session_id;
    let next = raw
        .call(12, &budget(session_fetch(&topic, id, 1, &[(0, 1)])))
        .await;
    assert_eq!(answered(&next), vec![(1, 2, values(&["p1-0"]))]);
    let then = raw
        .call(12, &budget(session_fetch(&topic, id, 2, &[(1, 1)])))
        .await;
    assert_eq!(answered(&then), vec![(0, 2, values(&["p0-1"]))]);
}

#[tokio::test]
async fn an_unknown_topic_does_not_cut_a_long_poll_short_and_a_session_keeps_its_naming() {
    let broker = start_broker().await;
    let topic = unique_topic("sessions-wait");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut request = fetch_request(&topic, &[0], 0, 400);
    let mut unknown = request.topics[0].clone();
    unknown.topic = TopicName(StrBytes::from_static_str("no-such-topic"));
    request.topics.push(unknown.clone());

    // The empty partition is waited on for max_wait, the unknown one answered with it.
    let started = std::time::Instant::now();
    let both = raw.call(12, &request).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(350));
    let codes: Vec<i16> = both
        .responses
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, vec![0, 3]);

    // Nothing else to wait on: answered at once.
    request.topics = vec![unknown];
    request.max_wait_ms = 30_000;
    let started = std::time::Instant::now();
    let alone = raw.call(12, &request).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(alone.responses[0].partitions[0].error_code, 3);

    // A session opened with topic names cannot go on with topic ids.
    let full = raw.call(12, &session_fetch(&topic, 0, 0, &[(0, 0)])).await;
    assert_ne!(full.session_id, 0);
    let mut by_id = session_fetch(&topic, full.session_id, 1, &[]);
    by_id.max_wait_ms = 0;
    let mixed = raw.call(13, &by_id).await;
    assert_eq!(mixed.error_code, 106, "FETCH_SESSION_TOPIC_ID_ERROR");
}

/// (topic, partition, error code, high watermark, values), topic by topic.
fn answered_by_topic(response: &FetchResponse) -> Vec<(String, i32, i16, i64, Vec<String>)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            answered(&FetchResponse::default().with_responses(vec![t.clone()]))
                .into_iter()
                .zip(&t.partitions)
                .map(|((p, high, values), data)| {
                    (t.topic.to_string(), p, data.error_code, high, values)
                })
        })
        .collect()
}

#[tokio::test]
async fn a_fetch_of_several_topics_answers_each_partition_under_its_own_topic() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let broker = start_broker().await;
    let (a, b) = (unique_topic("several-a"), unique_topic("several-b"));
    let missing = unique_topic("several-missing");
    create_topic(&broker.bootstrap(), &a, 3, &[]).await;
    create_topic(&broker.bootstrap(), &b, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut raw, 9, &a, 1, one("a1")).await, (0, 0));
    assert_eq!(produce(&mut raw, 9, &b, 0, one("b0")).await, (0, 0));

    // A topic of three partitions, one that does not exist, one of one;
    // opening a session (epoch 0), then incremental answers.
    let mut request = session_fetch(&a, 0, 0, &[(0, 0), (1, 0), (2, 0)]);
    for topic in [&missing, &b] {
        let mut more = session_fetch(topic, 0, 0, &[(0, 0)]);
        request.topics.append(&mut more.topics);
    }
    let full = raw.call(12, &request).await;
    assert_eq!(
        answered_by_topic(&full),
        vec![
            (a.clone(), 0, 0, 0, values(&[])),
            (a.clone(), 1, 0, 1, values(&["a1"])),
            (a.clone(), 2, 0, 0, values(&[])),
            (
                missing.clone(),
                0,
                UNKNOWN_TOPIC_OR_PARTITION,
                -1,
                values(&[])
            ),
            (b.clone(), 0, 0, 1, values(&["b0"])),
        ]
    );

    // Past those records, news in the last partition of `a` and in `b`:
    // an incremental answer names only them, each under its topic.
    let id = full.session_id;
    let mut moved = session_fetch(&a, id, 1, &[(1, 1)]);
    moved
        .topics
        .append(&mut session_fetch(&b, id, 1, &[(0, 1)]).topics);
    let quiet = raw.call(12, &moved).await;
    assert_eq!(
        answered_by_topic(&quiet),
        vec![(
            missing.clone(),
            0,
            UNKNOWN_TOPIC_OR_PARTITION,
            -1,
            values(&[])
        )],
        "only the error is answered again"
    );
    assert_eq!(produce(&mut raw, 9, &a, 2, one("a2")).await, (0, 0));
    assert_eq!(produce(&mut raw, 9, &b, 0, one("b1")).await, (0, 1));
    let news = raw.call(12, &session_fetch(&a, id, 2, &[])).await;
    assert_eq!(
        answered_by_topic(&news),
        vec![
            (a.clone(), 2, 0, 1, values(&["a2"])),
            (
                missing.clone(),
                0,
                UNKNOWN_TOPIC_OR_PARTITION,
                -1,
                values(&[])
            ),
            (b.clone(), 0, 0, 2, values(&["b1"])),
        ]
    );
}

#[tokio::test]
async fn a_session_that_forgets_all_its_partitions_is_closed() {
    let broker = start_broker().await;
    let topic = unique_topic("sessions-emptied");
    create_topic(&broker.bootstrap(), &topic, 1, &[]).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut raw, 9, &topic, 0, one("a")).await, (0, 0));
    let full = raw.call(12, &session_fetch(&topic, 0, 0, &[(0, 0)])).await;
    let id = full.session_id;
    assert_ne!(id, 0, "a session was opened");
    assert_eq!(answered(&full), vec![(0, 1, values(&["a"]))]);

    // Forgetting its one partition: an answer without a session, as Kafka gives.
    let mut forget = session_fetch(&topic, id, 1, &[]);
    forget.forgotten_topics_data = vec![
        ForgottenTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
            .with_partitions(vec![0]),
    ];
    let emptied = raw.call(12, &forget).await;
    assert_eq!(
        (emptied.error_code, emptied.session_id, answered(&emptied)),
        (0, 0, vec![])
    );
    let gone = raw.call(12, &session_fetch(&topic, id, 2, &[])).await;
    assert_eq!(gone.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

use bytes::BytesMut;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::protocol::Encodable;
use proptest::prelude::*;

use super::*;

/// A topic: name, id, and (index, offset, max bytes, leader epoch) per partition.
type Topic = (String, [u8; 16], Vec<(i32, i64, i32, i32)>);
/// The request's numbers, its partitions, and those it forgets.
type Read = (Vec<i64>, Wants, Vec<(TopicRef, Vec<i32>)>);

fn request(
    topics: &[Topic],
    forgotten: &[(String, Vec<i32>)],
    (wait, min, max, isolation, id, epoch): (i32, i32, i32, i8, i32, i32),
    version: i16,
) -> FetchRequest {
    // kafka-protocol refuses to encode a field its version lacks.
    let forgotten = if version >= 7 { forgotten } else { &[] };
    let topics = topics
        .iter()
        .map(|(name, id, partitions)| {
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name.clone())))
                .with_topic_id(Uuid::from_bytes(*id))
                .with_unknown_tagged_fields([(7, Bytes::from_static(b"xy"))].into())
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&(index, offset, max_bytes, epoch)| {
                            FetchPartition::default()
                                .with_partition(index)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(max_bytes)
                                .with_current_leader_epoch(epoch)
                                .with_log_start_offset(offset / 2)
                                // Tagged fields (v17, v18): to be skipped.
                                .with_replica_directory_id(Uuid::from_bytes([3; 16]))
                                .with_high_watermark(offset)
                                .with_last_fetched_epoch(if version >= 12 {
                                    epoch.wrapping_sub(1)
                                } else {
                                    -1
                                })
                        })
                        .collect(),
                )
        })
        .collect();
    let forgotten = forgotten
        .iter()
        .map(|(name, partitions)| {
            ForgottenTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name.clone())))
                .with_topic_id(Uuid::from_bytes([7; 16]))
                .with_partitions(partitions.clone())
        })
        .collect();
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(wait)
        .with_min_bytes(min)
        .with_max_bytes(max)
        .with_isolation_level(isolation)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
        .with_rack_id(StrBytes::from_static_str("rack-1"))
        .with_cluster_id(Some(StrBytes::from_static_str("cluster")))
        .with_replica_state(ReplicaState::default().with_replica_epoch(4))
}

fn encoded(req: &FetchRequest, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// What the handler read from kafka-protocol's decoding of the same bytes.
fn theirs(body: &Bytes, version: i16) -> Read {
    use kafka_protocol::protocol::Decodable;
    let req = FetchRequest::decode(&mut body.clone(), version).unwrap();
    let topic = |name: &TopicName, id: Uuid| {
        if version >= 13 {
            TopicRef::Id(id)
        } else {
            TopicRef::Name(name.clone())
        }
    };
    let scalars = vec![
        req.max_wait_ms.into(),
        req.min_bytes.into(),
        req.max_bytes.into(),
        req.isolation_level.into(),
        req.session_id.into(),
        req.session_epoch.into(),
    ];
    let wants = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let asked = Asked {
                        offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes,
                        leader_epoch: p.current_leader_epoch,
                    };
                    (p.partition, asked)
                })
                .collect();
            (topic(&t.topic, t.topic_id), partitions)
        })
        .collect();
    let forgotten = req
        .forgotten_topics_data
        .iter()
        .map(|t| (topic(&t.topic, t.topic_id), t.partitions.clone()))
        .collect();
    (scalars, wants, forgotten)
}

fn ours(body: &Bytes, version: i16) -> Read {
    let f = decode(body, version).unwrap();
    assert_eq!(f.uses_ids, version >= 13);
    let scalars = vec![
        f.max_wait_ms.into(),
        f.min_bytes.into(),
        f.max_bytes.into(),
        f.isolation_level.into(),
        f.session_id.into(),
        f.session_epoch.into(),
    ];
    (scalars, f.topics, f.forgotten)
}

proptest! {
    #[test]
    fn reads_what_kafka_protocol_reads_at_every_version(
        topics in prop::collection::vec(
            ("[a-z0-9._-]{1,20}", any::<[u8; 16]>(), prop::collection::vec(any::<(i32, i64, i32, i32)>(), 0..4)),
            0..4,
        ),
        forgotten in prop::collection::vec(("[a-z]{1,8}", prop::collection::vec(any::<i32>(), 0..3)), 0..3),
        scalars in any::<(i32, i32, i32, i8, i32, i32)>(),
    ) {
        for version in 4..=18 {
            let req = request(&topics, &forgotten, scalars, version);
            let body = encoded(&req, version);
            prop_assert_eq!(ours(&body, version), theirs(&body, version), "v{}", version);
        }
    }

    #[test]
    fn a_cut_request_is_an_error_not_a_panic(
        topics in prop::collection::vec(
            ("[a-z]{1,5}", any::<[u8; 16]>(), prop::collection::vec(any::<(i32, i64, i32, i32)>(), 0..3)),
            1..3,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        for version in 4..=18 {
            let req = request(&topics, &[("gone".into(), vec![1])], (500, 1, 1 << 20, 0, 5, 2), version);
            let body = encoded(&req, version);
            let short = body.slice(..cut.index(body.len()));
            prop_assert!(decode(&short, version).is_err(), "v{} cut at {}", version, short.len());
        }
    }
}

#[test]
fn a_count_larger_than_the_request_is_an_error() {
    // v4: replica, wait, min, max, isolation, then 2^31-1 topics and nothing more.
    let mut body = BytesMut::new();
    for field in [-1i32, 500, 1, 1 << 20] {
        body.extend_from_slice(&field.to_be_bytes());
    }
    body.extend_from_slice(&[0]);
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode(&body.freeze(), 4).is_err());
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let mut req = request(
        &[("t".into(), [1; 16], vec![(0, 5, 100, 3)])],
        &[],
        (500, 1, 9, 0, 0, -1),
        16,
    );
    req.replica_state = ReplicaState::default();
    let body = encoded(&req, 16);
    // The body ends with its tag section: [cluster id]. Add an unknown tag 9 of 3 bytes.
    let mut with = BytesMut::from(&body[..body.len() - 11]);
    let cluster = &body[body.len() - 10..];
    with.extend_from_slice(&[2]);
    with.extend_from_slice(cluster);
    with.extend_from_slice(&[9, 3, 1, 2, 3]);
    let f = decode(&with.freeze(), 16).unwrap();
    assert_eq!(f.topics.len(), 1);
    assert_eq!(
        f.topics[0].1,
        vec![(
            0,
            Asked {
                offset: 5,
                max_bytes: 100,
                leader_epoch: 3
            }
        )]
    );
}

//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the inputs of fixed
//! crashes (`fuzz/regressions/<target>/`) through `sluice::fuzzing`, the same
//! functions the cargo-fuzz targets call. Regenerate the seeds with
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` (see fuzz/README.md).

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice::fuzzing;
use sluice::storage::testing;

// As in the broker: kafka-protocol reserves claimed array lengths up front.
#[global_allocator]
static A: sluice::alloc::Guarded = sluice::alloc::Guarded;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Runs every file of the target's corpus and regressions; returns how many.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("read corpus file");
            eprintln!("{}", path.display());
            run(&data);
            count += 1;
        }
    }
    fuzzing::cleanup();
    count
}

#[test]
fn request_corpus() {
    assert!(replay("request", fuzzing::request) > 0, "empty corpus");
}

#[test]
fn record_batch_corpus() {
    assert!(
        replay("record_batch", fuzzing::record_batch) > 0,
        "empty corpus"
    );
}

#[test]
fn recovery_corpus() {
    assert!(replay("recovery", fuzzing::recovery) > 0, "empty corpus");
}

// ---------------------------------------------------------------- seeds

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str(fuzzing::TOPIC))
}

fn group() -> GroupId {
    GroupId(StrBytes::from_static_str("g"))
}

/// A body that reaches past the decoder for the APIs where an empty one would not.
fn body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    let batch = Bytes::from(testing::batch(&[(b"k", b"v")], 1_700_000_000_000));
    match key {
        ApiKey::Produce => enc(
            version,
            &ProduceRequest::default().with_acks(1).with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(topic())
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default().with_records(Some(batch)),
                    ]),
            ]),
        ),
        ApiKey::Fetch => enc(
            version,
            &FetchRequest::default()
                .with_max_bytes(1 << 20)
                .with_topics(vec![
                    fetch_request::FetchTopic::default()
                        .with_topic(topic())
                        .with_partitions(vec![
                            fetch_request::FetchPartition::default()
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]),
        ),
        ApiKey::ListOffsets => enc(
            version,
            &ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                    ]),
            ]),
        ),
        ApiKey::Metadata => enc(
            version,
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
            ])),
        ),
        ApiKey::CreateTopics => enc(
            version,
            &CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("u")))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        ),
        ApiKey::JoinGroup => enc(
            version,
            &JoinGroupRequest::default()
                .with_group_id(group())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range")),
                ]),
        ),
        ApiKey::OffsetCommit => enc(
            version,
            &OffsetCommitRequest::default()
                .with_group_id(group())
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(1),
                        ]),
                ]),
        ),
        ApiKey::OffsetFetch => enc(
            version,
            &OffsetFetchRequest::default().with_group_id(group()),
        ),
        ApiKey::DescribeGroups => enc(
            version,
            &DescribeGroupsRequest::default().with_groups(vec![group()]),
        ),
        ApiKey::DescribeConfigs => enc(
            version,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str(fuzzing::TOPIC)),
            ]),
        ),
        ApiKey::DeleteRecords => enc(
            version,
            &DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default().with_offset(1),
                    ]),
            ]),
        ),
        other => default_body(other, version),
    }
}

fn default_body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    match key {
        ApiKey::Produce => enc(version, &ProduceRequest::default()),
        ApiKey::Fetch => enc(version, &FetchRequest::default()),
        ApiKey::ListOffsets => enc(version, &ListOffsetsRequest::default()),
        ApiKey::Metadata => enc(version, &MetadataRequest::default()),
        ApiKey::ApiVersions => enc(version, &ApiVersionsRequest::default()),
        ApiKey::CreateTopics => enc(version, &CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => enc(version, &DeleteTopicsRequest::default()),
        ApiKey::DeleteRecords => enc(version, &DeleteRecordsRequest::default()),
        ApiKey::InitProducerId => enc(version, &InitProducerIdRequest::default()),
        ApiKey::OffsetForLeaderEpoch => enc(version, &OffsetForLeaderEpochRequest::default()),
        ApiKey::DescribeConfigs => enc(version, &DescribeConfigsRequest::default()),
        ApiKey::AlterConfigs => enc(version, &AlterConfigsRequest::default()),
        ApiKey::DescribeLogDirs => enc(version, &DescribeLogDirsRequest::default()),
        ApiKey::CreatePartitions => enc(version, &CreatePartitionsRequest::default()),
        ApiKey::IncrementalAlterConfigs => enc(version, &IncrementalAlterConfigsRequest::default()),
        ApiKey::DescribeCluster => enc(version, &DescribeClusterRequest::default()),
        ApiKey::FindCoordinator => enc(version, &FindCoordinatorRequest::default()),
        ApiKey::JoinGroup => enc(version, &JoinGroupRequest::default()),
        ApiKey::SyncGroup => enc(version, &SyncGroupRequest::default()),
        ApiKey::Heartbeat => enc(version, &HeartbeatRequest::default()),
        ApiKey::LeaveGroup => enc(version, &LeaveGroupRequest::default()),
        ApiKey::OffsetCommit => enc(version, &OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => enc(version, &OffsetFetchRequest::default()),
        ApiKey::OffsetDelete => enc(version, &OffsetDeleteRequest::default()),
        ApiKey::ListGroups => enc(version, &ListGroupsRequest::default()),
        ApiKey::DescribeGroups => enc(version, &DescribeGroupsRequest::default()),
        ApiKey::DeleteGroups => enc(version, &DeleteGroupsRequest::default()),
        ApiKey::AddPartitionsToTxn => enc(version, &AddPartitionsToTxnRequest::default()),
        ApiKey::AddOffsetsToTxn => enc(version, &AddOffsetsToTxnRequest::default()),
        ApiKey::EndTxn => enc(version, &EndTxnRequest::default()),
        ApiKey::TxnOffsetCommit => enc(version, &TxnOffsetCommitRequest::default()),
        ApiKey::DescribeTransactions => enc(version, &DescribeTransactionsRequest::default()),
        ApiKey::ListTransactions => enc(version, &ListTransactionsRequest::default()),
        other => panic!("{other:?} is not served"),
    }
}

fn enc<T: Encodable>(version: i16, body: &T) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

/// Header and body of one request, without the size prefix; `None` when the
/// body has fields this version cannot carry.
fn frame(key: ApiKey, version: i16, body: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    buf.extend_from_slice(&body?);
    Some(buf.to_vec())
}

fn write_seed(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), data).expect("write seed");
}

/// u16 BE length prefix, as `fuzzing::recovery` splits its input.
fn part(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus"]
fn write_seeds() {
    for &(key, min, max) in sluice::handler::SUPPORTED {
        for version in min..=max {
            let data = frame(key, version, body(key, version))
                .or_else(|| frame(key, version, default_body(key, version)))
                .expect("a default body encodes");
            write_seed("request", &format!("seed-{key:?}-v{version}"), &data);
        }
    }
    let one = testing::batch(&[(b"k", b"v")], 1_700_000_000_000);
    let three = testing::batch(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], 5);
    let producer = testing::batch_with_producer(1000, 0, 0, 2, 7);
    write_seed("record_batch", "seed-one", &one);
    write_seed(
        "record_batch",
        "seed-two-batches",
        &[one.clone(), three.clone()].concat(),
    );
    write_seed("record_batch", "seed-producer", &producer);
    // What transactions and compaction add: a transactional batch, a
    // COMMIT marker, and records with a null value (a tombstone) or no key.
    write_seed(
        "record_batch",
        "seed-transactional",
        &testing::transactional_batch(2000, 1, 0, 3, 9),
    );
    write_seed(
        "record_batch",
        "seed-commit-marker",
        &testing::control_batch(2000, 1, true, 9),
    );
    write_seed(
        "record_batch",
        "seed-tombstone-and-keyless",
        &testing::keyed_batch(&[(Some(&b"k"[..]), None), (None, Some(&b"v"[..]))], 9),
    );
    // A segment of three batches at offsets 0, 1 and 4, with no index files.
    let mut log = Vec::new();
    for (batch, base) in [(&one, 0i64), (&three, 1), (&producer, 4)] {
        let mut b = batch.clone();
        b[..8].copy_from_slice(&base.to_be_bytes());
        log.extend_from_slice(&b);
    }
    let mut one_segment = vec![0u8];
    part(&mut one_segment, &log);
    write_seed("recovery", "seed-one-segment", &one_segment);
    let mut two_segments = vec![1u8];
    two_segments.extend_from_slice(&6u32.to_be_bytes());
    part(&mut two_segments, &log);
    part(&mut two_segments, &[0, 0, 0, 1, 0, 0, 0, 0]);
    part(&mut two_segments, &[]);
    let mut second = three.clone();
    second[..8].copy_from_slice(&6i64.to_be_bytes());
    part(&mut two_segments, &second);
    write_seed("recovery", "seed-two-segments", &two_segments);
    // Four segments of the log above, at 0, 6, 12 and 18; the second is torn
    // in its second batch and the third has a flipped CRC byte.
    let mut four = vec![3u8];
    for _ in 0..3 {
        four.extend_from_slice(&6u32.to_be_bytes());
    }
    for (i, base) in [0i64, 6, 12, 18].into_iter().enumerate() {
        let mut segment = log.clone();
        let mut at = 0;
        for (batch_base, size) in [(0i64, one.len()), (1, three.len()), (4, producer.len())] {
            segment[at..at + 8].copy_from_slice(&(base + batch_base).to_be_bytes());
            at += size;
        }
        match i {
            1 => segment.truncate(one.len() + three.len() / 2),
            2 => *segment.last_mut().expect("bytes") ^= 0x40,
            _ => {}
        }
        part(&mut four, &segment);
        part(&mut four, &[]);
        part(&mut four, &[]);
    }
    write_seed("recovery", "seed-four-segments-damaged", &four);
    // A compacted log: gaps between batches inside a segment (0, 5, 9) and
    // between segments (the second starts at 20), ending in a transaction
    // and its marker.
    let mut compacted = vec![1u8 | 4];
    compacted.extend_from_slice(&20u32.to_be_bytes());
    let mut first = Vec::new();
    for (batch, base) in [(&one, 0i64), (&three, 5), (&one, 9)] {
        let mut b = batch.clone();
        b[..8].copy_from_slice(&base.to_be_bytes());
        first.extend_from_slice(&b);
    }
    part(&mut compacted, &first);
    part(&mut compacted, &[]);
    part(&mut compacted, &[]);
    let mut second = testing::transactional_batch(2000, 1, 0, 3, 9);
    second[..8].copy_from_slice(&20i64.to_be_bytes());
    let mut marker = testing::control_batch(2000, 1, false, 9);
    marker[..8].copy_from_slice(&23i64.to_be_bytes());
    second.extend_from_slice(&marker);
    part(&mut compacted, &second);
    write_seed("recovery", "seed-compacted-with-gaps", &compacted);
}

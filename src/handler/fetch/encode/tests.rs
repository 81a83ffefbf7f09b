use std::io::Write;
use std::sync::Arc;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::protocol::encode_response;

fn partition(index: i32, records: Records) -> PartitionAnswer {
    PartitionAnswer {
        index,
        error_code: 0,
        high_watermark: 1 << 40,
        last_stable: 77,
        log_start: 3,
        aborted: None,
        records,
    }
}

/// The same answer as kafka-protocol's `FetchResponse` at `version`, with
/// file ranges read.
fn theirs(answer: &Answer, version: i16) -> FetchResponse {
    let mut response = FetchResponse::default();
    if version >= 7 {
        response.error_code = answer.error_code;
        response.session_id = answer.session_id;
    }
    for topic in &answer.topics {
        let mut out = FetchableTopicResponse::default();
        match &topic.topic {
            TopicRef::Name(name) => out.topic = name.clone(),
            TopicRef::Id(id) => out.topic_id = *id,
        }
        for p in &topic.partitions {
            let mut data = PartitionData::default();
            data.partition_index = p.index;
            data.error_code = p.error_code;
            data.high_watermark = p.high_watermark;
            data.last_stable_offset = p.last_stable;
            if version >= 5 {
                data.log_start_offset = p.log_start;
            }
            data.aborted_transactions = p.aborted.as_ref().map(|aborted| {
                aborted
                    .iter()
                    .map(|&(id, first)| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(id))
                            .with_first_offset(first)
                    })
                    .collect()
            });
            data.records = Some(match &p.records {
                Records::Bytes(bytes) => bytes.clone(),
                Records::File(range) => Chunk::File(range.clone()).to_bytes().unwrap(),
            });
            out.partitions.push(data);
        }
        response.responses.push(out);
    }
    response
}

fn frame(chunks: &[Chunk]) -> Vec<u8> {
    chunks
        .iter()
        .map(|c| c.to_bytes().unwrap())
        .collect::<Vec<_>>()
        .concat()
}

#[test]
fn the_frame_is_the_one_kafka_protocol_encodes_at_every_version() {
    let mut file = tempfile::tempfile().unwrap();
    let on_disk: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    file.write_all(&on_disk).unwrap();
    let range = FileRange {
        file: Arc::new(file),
        position: 100,
        len: 12_345,
    };
    let large = Bytes::from(vec![9u8; 10_000]);
    let answer = |version: i16| {
        let topic = |name: &'static str, id: u128| {
            if version <= 12 {
                TopicRef::Name(TopicName(StrBytes::from_static_str(name)))
            } else {
                TopicRef::Id(uuid::Uuid::from_u128(id))
            }
        };
        let partitions = vec![
            partition(0, Records::File(range.clone())),
            PartitionAnswer {
                aborted: Some(vec![(42, 7)]),
                ..partition(1, Records::Bytes(Bytes::from_static(b"small records")))
            },
            partition(2, Records::Bytes(large.clone())),
            PartitionAnswer {
                error_code: 56,
                ..partition(3, Records::Bytes(Bytes::new()))
            },
        ];
        Answer {
            error_code: 0,
            session_id: if version >= 7 { 99 } else { 0 },
            topics: vec![
                TopicAnswer {
                    topic: topic("orders", 0x1234_5678_9abc_def0_1122_3344_5566_7788),
                    partitions,
                },
                TopicAnswer {
                    topic: topic("empty", 5),
                    partitions: Vec::new(),
                },
            ],
        }
    };

    for version in 4..=16 {
        let mut answer = answer(version);
        let chunks = encode(version, 31, &answer);
        assert!(
            chunks
                .iter()
                .any(|c| matches!(c, Chunk::File(r) if r.len == range.len)),
            "the file range stays a chunk"
        );
        let expected = encode_response(ApiKey::Fetch, version, 31, &theirs(&answer, version));
        assert_eq!(
            frame(&chunks),
            expected.unwrap().to_vec(),
            "version {version}"
        );

        // Without a file range or large records, the frame is one chunk.
        // (Partitions 0 and 2 have records of 12 KB and 10 KB.)
        answer.topics[0].partitions.retain(|p| p.index % 2 == 1);
        let chunks = encode(version, 32, &answer);
        assert_eq!(chunks.len(), 1, "version {version}");
        let expected = encode_response(ApiKey::Fetch, version, 32, &theirs(&answer, version));
        assert_eq!(
            frame(&chunks),
            expected.unwrap().to_vec(),
            "version {version}"
        );
    }

    // A refusal: the error and nothing else.
    let refused = Answer {
        error_code: 70,
        ..Answer::default()
    };
    for version in 7..=16 {
        let expected = encode_response(ApiKey::Fetch, version, 33, &theirs(&refused, version));
        let chunks = encode(version, 33, &refused);
        assert_eq!(
            frame(&chunks),
            expected.unwrap().to_vec(),
            "version {version}"
        );
    }
}

//! The Fetch response, written by hand from the handler's own [`Answer`]:
//! a partition's records can be a range of a segment file, which the
//! connection sends with `sendfile`, instead of bytes copied into the frame,
//! and no kafka-protocol `FetchResponse` (a struct and a tag map for each
//! topic and partition) is built only to be encoded and dropped. The fields
//! are laid out as kafka-protocol's encoder lays them out (a test compares
//! the two at every version). No tagged field is set, so each tag section is
//! empty; the throttle time is 0 and there is no preferred read replica.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::session::TopicRef;
use crate::connection::{Chunk, FileRange};

/// Record bytes at least this long become their own chunk instead of being
/// copied into the frame's buffer.
const OWN_CHUNK_BYTES: usize = 8 * 1024;

/// What a Fetch answers.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub error_code: i16,
    /// 0: no session (always 0 before v7, which has no such field).
    pub session_id: i32,
    pub topics: Vec<TopicAnswer>,
}

/// The partitions of one topic in an [`Answer`].
#[derive(Debug)]
pub(super) struct TopicAnswer {
    pub topic: TopicRef,
    pub partitions: Vec<PartitionAnswer>,
}

/// One partition of an [`Answer`].
#[derive(Debug)]
pub(super) struct PartitionAnswer {
    pub index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable: i64,
    /// Sent from v5 on.
    pub log_start: i64,
    /// Aborted transactions (producer id, first offset), for `read_committed`.
    pub aborted: Option<Vec<(i64, i64)>>,
    pub records: Records,
}

/// A partition's record bytes: read, or left in their file to be sent from there.
#[derive(Debug)]
pub(super) enum Records {
    Bytes(Bytes),
    File(FileRange),
}

impl Records {
    pub(super) fn len(&self) -> usize {
        match self {
            Records::Bytes(bytes) => bytes.len(),
            Records::File(range) => range.len,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The frame of `answer` at `version`.
pub(super) fn encode(version: i16, correlation_id: i32, answer: &Answer) -> Vec<Chunk> {
    let mut w = Writer {
        flexible: version >= 12,
        buf: BytesMut::with_capacity(512),
        chunks: Vec::new(),
    };
    // The frame's size, once known (see `Writer::finish`).
    w.buf.put_i32(0);
    w.buf.put_i32(correlation_id);
    if ApiKey::Fetch.response_header_version(version) >= 1 {
        w.no_tags();
    }
    w.buf.put_i32(0); // throttle time
    if version >= 7 {
        w.buf.put_i16(answer.error_code);
        w.buf.put_i32(answer.session_id);
    }
    w.count(answer.topics.len());
    for topic in &answer.topics {
        // (A request names topics by name up to v12 and by id after, and its
        // answer as it asked.)
        match (&topic.topic, version <= 12) {
            (TopicRef::Name(name), true) => w.string(name.as_bytes()),
            (TopicRef::Id(_), true) => w.string(b""),
            (TopicRef::Id(id), false) => w.buf.put_slice(id.as_bytes()),
            (TopicRef::Name(_), false) => w.buf.put_slice(uuid::Uuid::nil().as_bytes()),
        }
        w.count(topic.partitions.len());
        for partition in &topic.partitions {
            w.buf.put_i32(partition.index);
            w.buf.put_i16(partition.error_code);
            w.buf.put_i64(partition.high_watermark);
            w.buf.put_i64(partition.last_stable);
            if version >= 5 {
                w.buf.put_i64(partition.log_start);
            }
            match &partition.aborted {
                None => w.null(),
                Some(aborted) => {
                    w.count(aborted.len());
                    for &(producer_id, first_offset) in aborted {
                        w.buf.put_i64(producer_id);
                        w.buf.put_i64(first_offset);
                        if w.flexible {
                            w.no_tags();
                        }
                    }
                }
            }
            if version >= 11 {
                w.buf.put_i32(-1); // preferred read replica: none
            }
            match &partition.records {
                Records::File(range) => {
                    w.size(range.len);
                    w.chunk(Chunk::File(range.clone()));
                }
                Records::Bytes(records) => {
                    w.size(records.len());
                    w.bytes(records);
                }
            }
            if w.flexible {
                w.no_tags();
            }
        }
        if w.flexible {
            w.no_tags();
        }
    }
    if w.flexible {
        w.no_tags();
    }
    w.finish()
}

/// Writes fields into `buf`, cutting it into a chunk before each chunk of its own.
struct Writer {
    flexible: bool,
    buf: BytesMut,
    chunks: Vec<Chunk>,
}

impl Writer {
    fn uvarint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.buf.put_u8((n as u8) | 0x80);
            n >>= 7;
        }
        self.buf.put_u8(n as u8);
    }

    /// The length of an array.
    fn count(&mut self, n: usize) {
        self.size(n);
    }

    /// The length of an array or of bytes (they are written alike).
    fn size(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    /// A null array or null bytes.
    fn null(&mut self) {
        if self.flexible {
            self.uvarint(0);
        } else {
            self.buf.put_i32(-1);
        }
    }

    fn string(&mut self, s: &[u8]) {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s);
    }

    /// An empty tagged-field section.
    fn no_tags(&mut self) {
        self.uvarint(0);
    }

    fn bytes(&mut self, bytes: &Bytes) {
        if bytes.len() >= OWN_CHUNK_BYTES {
            self.chunk(Chunk::Bytes(bytes.clone()));
        } else {
            self.buf.put_slice(bytes);
        }
    }

    fn chunk(&mut self, chunk: Chunk) {
        if !self.buf.is_empty() {
            self.chunks.push(Chunk::Bytes(self.buf.split().freeze()));
        }
        self.chunks.push(chunk);
    }

    /// The frame's chunks. Its first four bytes, set aside by [`encode`], become
    /// the frame's size: in place when the frame is one chunk (most answers,
    /// and every empty one), else as a chunk of their own.
    fn finish(mut self) -> Vec<Chunk> {
        if self.chunks.is_empty() {
            let size = (self.buf.len() - 4) as i32;
            self.buf[..4].copy_from_slice(&size.to_be_bytes());
            return vec![Chunk::Bytes(self.buf.freeze())];
        }
        if !self.buf.is_empty() {
            self.chunks.push(Chunk::Bytes(self.buf.split().freeze()));
        }
        let size = self.chunks.iter().map(Chunk::len).sum::<usize>() - 4;
        let mut frame = Vec::with_capacity(self.chunks.len() + 1);
        frame.push(Chunk::Bytes(Bytes::copy_from_slice(
            &(size as i32).to_be_bytes(),
        )));
        let mut chunks = self.chunks.into_iter();
        // The first chunk is the buffer's (the header is written before any
        // chunk of its own), and starts with the four bytes set aside.
        match chunks.next() {
            Some(Chunk::Bytes(head)) => frame.push(Chunk::Bytes(head.slice(4..))),
            _ => unreachable!("a fetch frame starts with its header"),
        }
        frame.extend(chunks);
        frame
    }
}

#[cfg(test)]
mod tests {
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
}

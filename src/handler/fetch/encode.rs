//! The Fetch response, written by hand so that a partition's records can be
//! a range of a segment file, which the connection sends with `sendfile`,
//! instead of bytes copied into the frame. Every other field comes from
//! kafka-protocol's `FetchResponse` and is laid out as its encoder lays it
//! out (a test compares the two at every version). The handler sets none
//! of the tagged fields, so each tag section is empty.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse};

use crate::connection::{Chunk, FileRange};

/// Record bytes at least this long become their own chunk instead of being
/// copied into the frame's buffer.
const OWN_CHUNK_BYTES: usize = 8 * 1024;

/// The frame of `response` at `version`. Where `files[t][p]` is set, it is
/// the records of partition `p` of topic `t` (whose `records` are ignored).
pub(super) fn encode(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
    files: &[Vec<Option<FileRange>>],
) -> Vec<Chunk> {
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
    w.buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(response.error_code);
        w.buf.put_i32(response.session_id);
    }
    w.count(response.responses.len());
    for (t, topic) in response.responses.iter().enumerate() {
        if version <= 12 {
            w.string(topic.topic.as_bytes());
        } else {
            w.buf.put_slice(topic.topic_id.as_bytes());
        }
        w.count(topic.partitions.len());
        for (p, partition) in topic.partitions.iter().enumerate() {
            w.buf.put_i32(partition.partition_index);
            w.buf.put_i16(partition.error_code);
            w.buf.put_i64(partition.high_watermark);
            w.buf.put_i64(partition.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(partition.log_start_offset);
            }
            match &partition.aborted_transactions {
                None => w.null(),
                Some(aborted) => {
                    w.count(aborted.len());
                    for txn in aborted {
                        w.buf.put_i64(txn.producer_id.0);
                        w.buf.put_i64(txn.first_offset);
                        if w.flexible {
                            w.no_tags();
                        }
                    }
                }
            }
            if version >= 11 {
                w.buf.put_i32(partition.preferred_read_replica.0);
            }
            match (files.get(t).and_then(|f| f.get(p)), &partition.records) {
                (Some(Some(range)), _) => {
                    w.size(range.len);
                    w.chunk(Chunk::File(range.clone()));
                }
                (_, Some(records)) => {
                    w.size(records.len());
                    w.bytes(records);
                }
                (_, None) => w.null(),
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
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::protocol::encode_response;

    fn partition(index: i32, records: Option<Bytes>) -> PartitionData {
        let mut p = PartitionData::default();
        p.partition_index = index;
        p.high_watermark = 1 << 40;
        p.last_stable_offset = 77;
        p.log_start_offset = 3;
        p.records = records;
        p
    }

    #[test]
    fn the_frame_is_the_one_kafka_protocol_encodes_at_every_version() {
        let mut file = tempfile::tempfile().unwrap();
        let on_disk: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        file.write_all(&on_disk).unwrap();
        let file = Arc::new(file);
        let range = FileRange {
            file,
            position: 100,
            len: 12_345,
        };
        let large = Bytes::from(vec![9u8; 10_000]);
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("orders"));
        topic.topic_id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        let mut aborted = partition(1, Some(Bytes::from_static(b"small records")));
        aborted.aborted_transactions = Some(vec![
            AbortedTransaction::default()
                .with_producer_id(ProducerId(42))
                .with_first_offset(7),
        ]);
        aborted.error_code = 0;
        let mut failed = partition(3, Some(Bytes::new()));
        failed.error_code = 56;
        topic.partitions = vec![
            partition(0, None),
            aborted,
            partition(2, Some(large)),
            failed,
        ];
        let mut other = FetchableTopicResponse::default();
        other.topic = TopicName(StrBytes::from_static_str("empty"));
        let mut response = FetchResponse::default();
        response.throttle_time_ms = 5;
        response.session_id = 99;
        response.responses = vec![topic, other];
        let files = vec![vec![Some(range.clone()), None, None, None]];

        for version in 4..=16 {
            let mut expected = response.clone();
            if version < 7 {
                expected.session_id = 0;
            }
            let chunks = encode(version, 31, &expected, &files);
            assert!(
                chunks
                    .iter()
                    .any(|c| matches!(c, Chunk::File(r) if r.len == range.len)),
                "the file range stays a chunk"
            );
            let ours: Vec<u8> = chunks
                .iter()
                .map(|c| c.to_bytes().unwrap())
                .collect::<Vec<_>>()
                .concat();
            expected.responses[0].partitions[0].records =
                Some(Bytes::copy_from_slice(&on_disk[100..100 + range.len]));
            let theirs = encode_response(ApiKey::Fetch, version, 31, &expected).unwrap();
            assert_eq!(ours, theirs.to_vec(), "version {version}");

            // Without a file range or large records, the frame is one chunk.
            let mut small = expected.clone();
            // (Partitions 0 and 2 have records of 12 KB and 10 KB.)
            small.responses[0]
                .partitions
                .retain(|p| p.partition_index % 2 == 1);
            let chunks = encode(version, 32, &small, &[]);
            assert_eq!(chunks.len(), 1, "version {version}");
            let theirs = encode_response(ApiKey::Fetch, version, 32, &small).unwrap();
            assert_eq!(chunks[0].to_bytes().unwrap(), theirs, "version {version}");
        }
    }
}

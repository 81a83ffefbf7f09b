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
            w.partition(version, partition);
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
    /// One partition's answer at `version`.
    fn partition(&mut self, version: i16, partition: &PartitionAnswer) {
        self.buf.put_i32(partition.index);
        self.buf.put_i16(partition.error_code);
        self.buf.put_i64(partition.high_watermark);
        self.buf.put_i64(partition.last_stable);
        if version >= 5 {
            self.buf.put_i64(partition.log_start);
        }
        match &partition.aborted {
            None => self.null(),
            Some(aborted) => {
                self.count(aborted.len());
                for &(producer_id, first_offset) in aborted {
                    self.buf.put_i64(producer_id);
                    self.buf.put_i64(first_offset);
                    if self.flexible {
                        self.no_tags();
                    }
                }
            }
        }
        if version >= 11 {
            self.buf.put_i32(-1); // preferred read replica: none
        }
        match &partition.records {
            Records::File(range) => {
                self.size(range.len);
                self.chunk(Chunk::File(range.clone()));
            }
            Records::Bytes(records) => {
                self.size(records.len());
                self.bytes(records);
            }
        }
        if self.flexible {
            self.no_tags();
        }
    }

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
mod tests;

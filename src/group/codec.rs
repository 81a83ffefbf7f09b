//! Keys and values of the internal offsets log (Kafka's `__consumer_offsets`
//! schemas, non-flexible versions) and the uncompressed RecordBatch v2 that
//! carries them. See the module docs of [`crate::group`] for the table.

use bytes::Bytes;

use super::consumer::records::Record;
use crate::internal_log::{get_i16, get_i32, get_i64};

/// One entry of the internal log: a key and its value, or a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        value: Option<GroupValue>,
    },
    /// A record of a consumer group of the KIP-848 protocol.
    Consumer { group: String, record: Record },
}

/// OffsetCommitValue v3.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OffsetValue {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp: i64,
    /// The offset of its record in the offsets log (not encoded; -1 until
    /// written): of two commits of one partition, the later record wins,
    /// as compaction keeps it.
    pub(crate) record: i64,
}

impl OffsetValue {
    /// Whether `staged`, a transaction's commit, replaces `current` when
    /// the transaction commits: only if its record is the later one (Kafka
    /// does the same), so what compaction keeps is what counts.
    pub(crate) fn replaced_by(current: Option<&OffsetValue>, staged: &OffsetValue) -> bool {
        current.is_none_or(|c| c.record < staged.record)
    }
}

/// GroupMetadataValue v3.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct GroupValue {
    pub(crate) protocol_type: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) state_timestamp: i64,
    pub(crate) members: Vec<MemberValue>,
}

/// MemberMetadata v3 inside a [`GroupValue`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MemberValue {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) subscription: Bytes,
    pub(crate) assignment: Bytes,
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

impl Entry {
    /// The record key and value (`None` for a tombstone).
    pub(crate) fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut key = Vec::new();
        match self {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                put_i16(&mut key, OFFSET_KEY_VERSION);
                put_str(&mut key, group);
                put_str(&mut key, topic);
                key.extend_from_slice(&partition.to_be_bytes());
                (key, value.as_ref().map(OffsetValue::encode))
            }
            Entry::Group { group, value } => {
                put_i16(&mut key, GROUP_KEY_VERSION);
                put_str(&mut key, group);
                (key, value.as_ref().map(GroupValue::encode))
            }
            Entry::Consumer { group, record } => record.encode(group),
        }
    }

    /// Parses a record; `None` for keys of an unknown type or malformed bytes.
    pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Entry> {
        let mut k = key;
        match get_i16(&mut k)? {
            0 | 1 => {
                let (group, topic) = (get_str(&mut k)?, get_str(&mut k)?);
                let partition = get_i32(&mut k)?;
                let value = match value {
                    Some(v) => Some(OffsetValue::decode(v)?),
                    None => None,
                };
                Some(Entry::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = get_str(&mut k)?;
                let value = match value {
                    Some(v) => Some(GroupValue::decode(v)?),
                    None => None,
                };
                Some(Entry::Group { group, value })
            }
            version => {
                let group = get_str(&mut k)?;
                let record = Record::decode(version, &mut k, value)?;
                Some(Entry::Consumer { group, record })
            }
        }
    }
}

impl OffsetValue {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.metadata.len());
        put_i16(&mut out, OFFSET_VALUE_VERSION);
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.leader_epoch.to_be_bytes());
        put_str(&mut out, &self.metadata);
        out.extend_from_slice(&self.commit_timestamp.to_be_bytes());
        out
    }

    fn decode(mut v: &[u8]) -> Option<OffsetValue> {
        let version = get_i16(&mut v)?;
        let offset = get_i64(&mut v)?;
        let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
        let metadata = get_str(&mut v)?;
        let commit_timestamp = get_i64(&mut v)?;
        Some(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            record: -1,
        })
    }
}

impl GroupValue {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_i16(&mut out, GROUP_VALUE_VERSION);
        put_str(&mut out, &self.protocol_type);
        out.extend_from_slice(&self.generation.to_be_bytes());
        put_opt_str(&mut out, self.protocol.as_deref());
        put_opt_str(&mut out, self.leader.as_deref());
        out.extend_from_slice(&self.state_timestamp.to_be_bytes());
        out.extend_from_slice(&(self.members.len() as i32).to_be_bytes());
        for m in &self.members {
            put_str(&mut out, &m.member_id);
            put_opt_str(&mut out, m.instance_id.as_deref());
            put_str(&mut out, &m.client_id);
            put_str(&mut out, &m.client_host);
            out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
            out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out
    }

    fn decode(mut v: &[u8]) -> Option<GroupValue> {
        if get_i16(&mut v)? != GROUP_VALUE_VERSION {
            return None;
        }
        let protocol_type = get_str(&mut v)?;
        let generation = get_i32(&mut v)?;
        let protocol = get_opt_str(&mut v)?;
        let leader = get_opt_str(&mut v)?;
        let state_timestamp = get_i64(&mut v)?;
        let count = get_i32(&mut v)?;
        let mut members = Vec::new();
        for _ in 0..count.max(0) {
            members.push(MemberValue {
                member_id: get_str(&mut v)?,
                instance_id: get_opt_str(&mut v)?,
                client_id: get_str(&mut v)?,
                client_host: get_str(&mut v)?,
                rebalance_timeout_ms: get_i32(&mut v)?,
                session_timeout_ms: get_i32(&mut v)?,
                subscription: get_bytes(&mut v)?,
                assignment: get_bytes(&mut v)?,
            });
        }
        Some(GroupValue {
            protocol_type,
            generation,
            protocol,
            leader,
            state_timestamp,
            members,
        })
    }
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    put_i16(out, len as i16);
    out.extend_from_slice(s.as_bytes().get(..len).unwrap_or_default());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => put_i16(out, -1),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

fn take<'a>(b: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, tail) = (b.get(..len)?, b.get(len..)?);
    *b = tail;
    Some(head)
}

fn get_opt_str(b: &mut &[u8]) -> Option<Option<String>> {
    let len = get_i16(b)?;
    if len < 0 {
        return Some(None);
    }
    let raw = take(b, len as usize)?;
    Some(Some(String::from_utf8_lossy(raw).into_owned()))
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    get_opt_str(b).map(Option::unwrap_or_default)
}

fn get_bytes(b: &mut &[u8]) -> Option<Bytes> {
    let len = get_i32(b)?;
    let raw = take(b, usize::try_from(len).unwrap_or(0))?;
    Some(Bytes::copy_from_slice(raw))
}

/// Encodes `entries` as one uncompressed RecordBatch v2 (base offset 0, no producer).
#[cfg(test)]
pub(crate) fn batch(entries: &[Entry], timestamp: i64) -> Vec<u8> {
    let records: Vec<crate::internal_log::KeyValue> = entries.iter().map(Entry::encode).collect();
    crate::internal_log::batch(&records, timestamp)
}

/// Walks whole batches in `bytes`, calling `f(offset, entry)` for every
/// entry at or above `from` (records of unknown key versions are skipped).
/// Stops at the first malformed batch and returns the next offset after the
/// last batch walked.
#[cfg(test)]
pub(crate) fn replay(bytes: &[u8], from: i64, mut f: impl FnMut(i64, Entry)) -> Option<i64> {
    crate::internal_log::replay(bytes, from, |_, offset, key, value| {
        if let Some(entry) = Entry::decode(key, value) {
            f(offset, entry);
        }
    })
}

#[cfg(test)]
mod tests;

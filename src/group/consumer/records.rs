//! The records of a consumer group (KIP-848) in the internal offsets log, in
//! Kafka's `__consumer_offsets` schemas: keys are non-flexible (an i16
//! version, then i16-length strings), values are flexible version 0 (compact
//! strings and arrays, tagged fields; unknown tags are skipped on read).
//!
//! | key version | key | value |
//! |---|---|---|
//! | 3 | group | ConsumerGroupMetadataValue `epoch i32` |
//! | 4 | group | ConsumerGroupPartitionMetadataValue `[topic_id, topic_name, partitions, []]` |
//! | 5 | group, member | ConsumerGroupMemberMetadataValue |
//! | 6 | group | ConsumerGroupTargetAssignmentMetadataValue `assignment_epoch i32` |
//! | 7 | group, member | ConsumerGroupTargetAssignmentMemberValue `[topic_id, [partition]]` |
//! | 8 | group, member | ConsumerGroupCurrentMemberAssignmentValue |

use uuid::Uuid;

use super::Assignment;
use crate::internal_log::{get_i16, get_i32};

pub(crate) const GROUP_EPOCH_KEY: i16 = 3;
pub(crate) const TOPICS_KEY: i16 = 4;
pub(crate) const MEMBER_KEY: i16 = 5;
pub(crate) const TARGET_EPOCH_KEY: i16 = 6;
pub(crate) const TARGET_MEMBER_KEY: i16 = 7;
pub(crate) const CURRENT_KEY: i16 = 8;

/// One consumer-group record of the internal log (`None` values are tombstones).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    GroupEpoch(Option<i32>),
    /// What the subscriptions resolved to: topic name → (id, partitions).
    Topics(Option<Topics>),
    Member(String, Option<MemberValue>),
    TargetEpoch(Option<i32>),
    Target(String, Option<Assignment>),
    Current(String, Option<CurrentValue>),
}

/// Topic name → (topic id, partition count).
pub(crate) type Topics = std::collections::BTreeMap<String, (Uuid, i32)>;

/// ConsumerGroupMemberMetadataValue v0.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct MemberValue {
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) topic_names: Vec<String>,
    pub(crate) topic_regex: Option<String>,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignmentValue v0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CurrentValue {
    pub(crate) epoch: i32,
    pub(crate) previous_epoch: i32,
    pub(crate) state: i8,
    pub(crate) assigned: Assignment,
    pub(crate) revoking: Assignment,
}

impl Record {
    /// Key and value bytes of this record for group `group`.
    pub(crate) fn encode(&self, group: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut key = Vec::new();
        let (version, member) = match self {
            Record::GroupEpoch(_) => (GROUP_EPOCH_KEY, None),
            Record::Topics(_) => (TOPICS_KEY, None),
            Record::Member(m, _) => (MEMBER_KEY, Some(m)),
            Record::TargetEpoch(_) => (TARGET_EPOCH_KEY, None),
            Record::Target(m, _) => (TARGET_MEMBER_KEY, Some(m)),
            Record::Current(m, _) => (CURRENT_KEY, Some(m)),
        };
        key.extend_from_slice(&version.to_be_bytes());
        put_key_str(&mut key, group);
        if let Some(m) = member {
            put_key_str(&mut key, m);
        }
        let value = match self {
            Record::GroupEpoch(v) | Record::TargetEpoch(v) => v.map(|epoch| {
                let mut out = value_header();
                out.extend_from_slice(&epoch.to_be_bytes());
                out.push(0);
                out
            }),
            Record::Topics(v) => v.as_ref().map(encode_topics),
            Record::Member(_, v) => v.as_ref().map(MemberValue::encode),
            Record::Target(_, v) => v.as_ref().map(|a| {
                let mut out = value_header();
                put_assignment(&mut out, a);
                out.push(0);
                out
            }),
            Record::Current(_, v) => v.as_ref().map(CurrentValue::encode),
        };
        (key, value)
    }

    /// Parses a record whose key version is `version` and whose key has been
    /// read up to (not including) the member id; `None` if malformed.
    pub(crate) fn decode(version: i16, key: &mut &[u8], value: Option<&[u8]>) -> Option<Record> {
        let mut member = || get_key_str(key);
        Some(match version {
            GROUP_EPOCH_KEY => Record::GroupEpoch(tombstone_or(value, decode_epoch)?),
            TARGET_EPOCH_KEY => Record::TargetEpoch(tombstone_or(value, decode_epoch)?),
            TOPICS_KEY => Record::Topics(tombstone_or(value, decode_topics)?),
            MEMBER_KEY => Record::Member(member()?, tombstone_or(value, MemberValue::decode)?),
            TARGET_MEMBER_KEY => {
                let id = member()?;
                let value = match value {
                    Some(mut v) => {
                        value_version(&mut v)?;
                        let a = get_assignment(&mut v)?;
                        skip_tags(&mut v)?;
                        Some(a)
                    }
                    None => None,
                };
                Record::Target(id, value)
            }
            CURRENT_KEY => Record::Current(member()?, tombstone_or(value, CurrentValue::decode)?),
            _ => return None,
        })
    }
}

impl MemberValue {
    fn encode(&self) -> Vec<u8> {
        let mut out = value_header();
        put_compact_str(&mut out, self.instance_id.as_deref());
        put_compact_str(&mut out, self.rack_id.as_deref());
        put_compact_str(&mut out, Some(&self.client_id));
        put_compact_str(&mut out, Some(&self.client_host));
        put_uvarint(&mut out, self.topic_names.len() as u64 + 1);
        for name in &self.topic_names {
            put_compact_str(&mut out, Some(name));
        }
        put_compact_str(&mut out, self.topic_regex.as_deref());
        out.extend_from_slice(&self.rebalance_timeout_ms.to_be_bytes());
        put_compact_str(&mut out, self.assignor.as_deref());
        out.push(0);
        out
    }

    fn decode(mut v: &[u8]) -> Option<MemberValue> {
        value_version(&mut v)?;
        let instance_id = get_compact_str(&mut v)?;
        let rack_id = get_compact_str(&mut v)?;
        let client_id = get_compact_str(&mut v)?.unwrap_or_default();
        let client_host = get_compact_str(&mut v)?.unwrap_or_default();
        let n = get_uvarint(&mut v)?.checked_sub(1)?;
        let mut topic_names = Vec::new();
        for _ in 0..n {
            topic_names.push(get_compact_str(&mut v)?.unwrap_or_default());
        }
        let topic_regex = get_compact_str(&mut v)?;
        let rebalance_timeout_ms = get_i32(&mut v)?;
        let assignor = get_compact_str(&mut v)?;
        skip_tags(&mut v)?;
        Some(MemberValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            topic_names,
            topic_regex,
            rebalance_timeout_ms,
            assignor,
        })
    }
}

impl CurrentValue {
    fn encode(&self) -> Vec<u8> {
        let mut out = value_header();
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.previous_epoch.to_be_bytes());
        out.push(self.state as u8);
        put_assignment(&mut out, &self.assigned);
        put_assignment(&mut out, &self.revoking);
        out.push(0);
        out
    }

    fn decode(mut v: &[u8]) -> Option<CurrentValue> {
        value_version(&mut v)?;
        let epoch = get_i32(&mut v)?;
        let previous_epoch = get_i32(&mut v)?;
        let (&state, rest) = v.split_first()?;
        v = rest;
        let assigned = get_assignment(&mut v)?;
        let revoking = get_assignment(&mut v)?;
        skip_tags(&mut v)?;
        Some(CurrentValue {
            epoch,
            previous_epoch,
            state: state as i8,
            assigned,
            revoking,
        })
    }
}

/// `Some(None)` for a tombstone, `Some(Some(v))` for a value that parses, `None` otherwise.
fn tombstone_or<T>(value: Option<&[u8]>, parse: impl Fn(&[u8]) -> Option<T>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(v) => parse(v).map(Some),
    }
}

/// ConsumerGroupPartitionMetadataValue v0 (no rack metadata: empty lists).
fn encode_topics(topics: &Topics) -> Vec<u8> {
    let mut out = value_header();
    put_uvarint(&mut out, topics.len() as u64 + 1);
    for (name, (id, partitions)) in topics {
        out.extend_from_slice(id.as_bytes());
        put_compact_str(&mut out, Some(name));
        out.extend_from_slice(&partitions.to_be_bytes());
        put_uvarint(&mut out, 1);
        out.push(0);
    }
    out.push(0);
    out
}

fn decode_topics(mut v: &[u8]) -> Option<Topics> {
    value_version(&mut v)?;
    let n = get_uvarint(&mut v)?.checked_sub(1)?;
    let mut topics = Topics::new();
    for _ in 0..n {
        let id = Uuid::from_slice(take(&mut v, 16)?).ok()?;
        let name = get_compact_str(&mut v)?.unwrap_or_default();
        let partitions = get_i32(&mut v)?;
        for _ in 0..get_uvarint(&mut v)?.checked_sub(1)? {
            get_i32(&mut v)?;
            for _ in 0..get_uvarint(&mut v)?.checked_sub(1)? {
                get_compact_str(&mut v)?;
            }
            skip_tags(&mut v)?;
        }
        skip_tags(&mut v)?;
        topics.insert(name, (id, partitions));
    }
    skip_tags(&mut v)?;
    Some(topics)
}

fn value_header() -> Vec<u8> {
    0i16.to_be_bytes().to_vec()
}

fn value_version(v: &mut &[u8]) -> Option<()> {
    (get_i16(v)? == 0).then_some(())
}

fn decode_epoch(mut v: &[u8]) -> Option<i32> {
    value_version(&mut v)?;
    let epoch = get_i32(&mut v)?;
    skip_tags(&mut v)?;
    Some(epoch)
}

fn put_key_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes().get(..len).unwrap_or_default());
}

fn get_key_str(b: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(get_i16(b)?).ok()?;
    let raw = take(b, len)?;
    Some(String::from_utf8_lossy(raw).into_owned())
}

fn take<'a>(b: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, tail) = (b.get(..len)?, b.get(len..)?);
    *b = tail;
    Some(head)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_uvarint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

fn put_compact_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            put_uvarint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn get_compact_str(b: &mut &[u8]) -> Option<Option<String>> {
    let n = get_uvarint(b)?;
    if n == 0 {
        return Some(None);
    }
    let raw = take(b, usize::try_from(n - 1).ok()?)?;
    Some(Some(String::from_utf8_lossy(raw).into_owned()))
}

/// `[TopicPartitions]`: compact array of (uuid, compact [i32], tags).
fn put_assignment(out: &mut Vec<u8>, a: &Assignment) {
    put_uvarint(out, a.len() as u64 + 1);
    for (topic, ps) in a {
        out.extend_from_slice(topic.as_bytes());
        put_uvarint(out, ps.len() as u64 + 1);
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out.push(0);
    }
}

fn get_assignment(b: &mut &[u8]) -> Option<Assignment> {
    let topics = get_uvarint(b)?.checked_sub(1)?;
    let mut a = Assignment::new();
    for _ in 0..topics {
        let id = Uuid::from_slice(take(b, 16)?).ok()?;
        let n = get_uvarint(b)?.checked_sub(1)?;
        let ps = a.entry(id).or_default();
        for _ in 0..n {
            ps.insert(get_i32(b)?);
        }
        skip_tags(b)?;
    }
    Some(a)
}

fn skip_tags(b: &mut &[u8]) -> Option<()> {
    for _ in 0..get_uvarint(b)? {
        get_uvarint(b)?;
        let size = usize::try_from(get_uvarint(b)?).ok()?;
        take(b, size)?;
    }
    Some(())
}

//! `<data_dir>/__transaction_state-0`: the transaction coordinator's
//! internal log, a compacted log (see [`crate::internal_log`]) of Kafka's
//! TransactionLogKey v0 (`transactional_id`) and TransactionLogValue v0:
//!
//! `producer_id i64, producer_epoch i16, transaction_timeout_ms i32,
//! transaction_status i8, transaction_partitions [topic string,
//! partition_ids [i32]], transaction_last_update_timestamp_ms i64,
//! transaction_start_timestamp_ms i64`
//!
//! with Kafka's status codes. The coordinator appends a record before it
//! acts on it (and, with `flush = "always"`, fsyncs it before answering
//! whenever a crash would otherwise lose something a client was told).

use std::collections::BTreeSet;

use bytes::Buf;

use crate::internal_log::{get_i16, get_i32, get_i64};

/// Directory of the internal log under the data directory.
pub(crate) const STATE_DIR: &str = "__transaction_state-0";
const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// A transaction's state, with Kafka's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl Status {
    fn from_code(code: i8) -> Option<Status> {
        Some(match code {
            0 => Status::Empty,
            1 => Status::Ongoing,
            2 => Status::PrepareCommit,
            3 => Status::PrepareAbort,
            4 => Status::CompleteCommit,
            5 => Status::CompleteAbort,
            6 => Status::Dead,
            7 => Status::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Empty => "Empty",
            Status::Ongoing => "Ongoing",
            Status::PrepareCommit => "PrepareCommit",
            Status::PrepareAbort => "PrepareAbort",
            Status::CompleteCommit => "CompleteCommit",
            Status::CompleteAbort => "CompleteAbort",
            Status::Dead => "Dead",
            Status::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// One TransactionLogValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnRecord {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) status: Status,
    pub(crate) partitions: BTreeSet<(String, i32)>,
    pub(crate) last_update_ms: i64,
    /// -1 when no transaction is open.
    pub(crate) start_ms: i64,
}

/// TransactionLogKey v0 of `transactional_id`.
pub(crate) fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_str(&mut out, transactional_id);
    out
}

/// The transactional id of a TransactionLogKey (v0 only).
pub(crate) fn decode_key(mut key: &[u8]) -> Option<String> {
    if key.len() < 2 || key.get_i16() != KEY_VERSION {
        return None;
    }
    get_str(&mut key)
}

pub(crate) fn encode_value(r: &TxnRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&r.producer_id.to_be_bytes());
    out.extend_from_slice(&r.epoch.to_be_bytes());
    out.extend_from_slice(&r.timeout_ms.to_be_bytes());
    out.push(r.status as u8);
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &r.partitions {
        match topics.last_mut() {
            Some((t, ps)) if *t == topic.as_str() => ps.push(*partition),
            _ => topics.push((topic, vec![*partition])),
        }
    }
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for (topic, partitions) in topics {
        put_str(&mut out, topic);
        out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&r.last_update_ms.to_be_bytes());
    out.extend_from_slice(&r.start_ms.to_be_bytes());
    out
}

/// A TransactionLogValue v0 (`None` for another version or damaged bytes).
pub(crate) fn decode_value(mut v: &[u8]) -> Option<TxnRecord> {
    if get_i16(&mut v)? != VALUE_VERSION {
        return None;
    }
    let producer_id = get_i64(&mut v)?;
    let epoch = get_i16(&mut v)?;
    let timeout_ms = get_i32(&mut v)?;
    let status = Status::from_code(*v.first()? as i8)?;
    v.advance(1);
    let mut partitions = BTreeSet::new();
    let topics = get_i32(&mut v)?;
    for _ in 0..topics.max(0) {
        let topic = get_str(&mut v)?;
        for _ in 0..get_i32(&mut v)?.max(0) {
            partitions.insert((topic.clone(), get_i32(&mut v)?));
        }
    }
    Some(TxnRecord {
        producer_id,
        epoch,
        timeout_ms,
        status,
        partitions,
        last_update_ms: get_i64(&mut v)?,
        start_ms: get_i64(&mut v)?,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes().get(..len).unwrap_or_default());
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(get_i16(b)?).ok()?;
    let raw = b.get(..len)?;
    let s = String::from_utf8(raw.to_vec()).ok()?;
    b.advance(len);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip_in_kafkas_layout() {
        let record = TxnRecord {
            producer_id: 42,
            epoch: 3,
            timeout_ms: 60_000,
            status: Status::PrepareCommit,
            partitions: [
                ("a".to_string(), 1),
                ("a".to_string(), 0),
                ("b".to_string(), 7),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 1_700_000_000_001,
            start_ms: 1_700_000_000_000,
        };
        let value = encode_value(&record);
        // version, producer id, epoch, timeout, status, then 2 topics.
        assert_eq!(&value[..2], &[0, 0]);
        assert_eq!(&value[2..10], &42i64.to_be_bytes());
        assert_eq!(value[16], 2);
        assert_eq!(&value[17..21], &2i32.to_be_bytes());
        assert_eq!(decode_value(&value), Some(record));
        assert_eq!(encode_key("app"), vec![0, 0, 0, 3, b'a', b'p', b'p']);
        assert_eq!(decode_key(&encode_key("app")).as_deref(), Some("app"));
        assert_eq!(decode_value(&value[..value.len() - 1]), None);
    }
}

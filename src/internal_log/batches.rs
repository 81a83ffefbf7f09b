//! The record batches of an internal log: encoding keyed records as
//! Kafka's RecordBatch v2 (plain or transactional) and walking them back at
//! replay, with the few readers of Kafka's key and value schemas.

use bytes::Buf;

/// One record: its key, and its value or `None` (a tombstone).
pub(crate) type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Where a replayed record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A plain batch: the record counts as it is read.
    Plain,
    /// A transactional batch of this producer: the record counts once a
    /// COMMIT marker of the producer follows, and never after an ABORT.
    Transaction(i64),
    /// The COMMIT (`true`) or ABORT marker of this producer's transaction.
    Marker(i64, bool),
}

/// Encodes `records` as one uncompressed RecordBatch v2 (base offset 0, no producer).
pub(crate) fn batch(records: &[KeyValue], timestamp: i64) -> Vec<u8> {
    encode(records, timestamp, None)
}

/// [`batch`], transactional when `producer` (id, epoch, base sequence) is given.
pub(super) fn encode(
    records: &[KeyValue],
    timestamp: i64,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let (producer_id, epoch, sequence) = producer.unwrap_or((-1, -1, -1));
    let attributes: i16 = if producer.is_some() { TRANSACTIONAL } else { 0 };
    let mut out = Vec::with_capacity(61 + 64 * records.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset, assigned by the log
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, patched below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    out.extend_from_slice(&attributes.to_be_bytes()); // no compression, CreateTime
    out.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&(records.len() as i32).to_be_bytes());
    for (delta, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0u8]; // record attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64);
        put_varint(&mut body, key.len() as i64);
        body.extend_from_slice(key);
        match value {
            Some(v) => {
                put_varint(&mut body, v.len() as i64);
                body.extend_from_slice(v);
            }
            None => put_varint(&mut body, -1),
        }
        put_varint(&mut body, 0); // headers
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crate::storage::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Batch attribute bits (Kafka's).
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

/// Walks whole batches in `bytes`, calling `f(origin, offset, key, value)`
/// for every record at or above `from`. Stops at the first malformed batch
/// and returns the next offset after the last batch walked.
pub(crate) fn replay(
    mut bytes: &[u8],
    from: i64,
    mut f: impl FnMut(Origin, i64, &[u8], Option<&[u8]>),
) -> Option<i64> {
    let mut next = None;
    while bytes.len() >= 61 {
        let base = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let len = usize::try_from(i32::from_be_bytes(bytes[8..12].try_into().ok()?)).ok()?;
        if len < 49 {
            return None;
        }
        let batch = bytes.get(..12 + len)?;
        let attributes = i16::from_be_bytes(batch[21..23].try_into().ok()?);
        let last_delta = i32::from_be_bytes(batch[23..27].try_into().ok()?);
        let producer_id = i64::from_be_bytes(batch[43..51].try_into().ok()?);
        if attributes & 0x07 != 0 {
            tracing::warn!(base, "skipping a compressed batch in an internal log");
        } else {
            let mut records = batch.get(61..)?;
            while !records.is_empty() {
                let (offset, key, value) = record(&mut records, base)?;
                let origin = if attributes & CONTROL != 0 {
                    // The control record's key: version, then type (1: COMMIT).
                    Origin::Marker(producer_id, key.get(2..4) == Some(&[0, 1]))
                } else if attributes & TRANSACTIONAL != 0 {
                    Origin::Transaction(producer_id)
                } else {
                    Origin::Plain
                };
                if offset >= from {
                    f(origin, offset, key, value);
                }
            }
        }
        next = Some(base + i64::from(last_delta) + 1);
        bytes = bytes.get(12 + len..)?;
    }
    next
}

type Record<'a> = (i64, &'a [u8], Option<&'a [u8]>);

fn record<'a>(b: &mut &'a [u8], base: i64) -> Option<Record<'a>> {
    let len = usize::try_from(get_varint(b)?).ok()?;
    let mut r = take(b, len)?;
    take(&mut r, 1)?; // attributes
    get_varint(&mut r)?; // timestamp delta
    let offset = base + get_varint(&mut r)?;
    let key_len = usize::try_from(get_varint(&mut r)?).ok()?;
    let key = take(&mut r, key_len)?;
    let value_len = get_varint(&mut r)?;
    let value = if value_len < 0 {
        None
    } else {
        Some(take(&mut r, value_len as usize)?)
    };
    Some((offset, key, value))
}

/// Big-endian integers of Kafka's key and value schemas, advancing `b`;
/// `None` when too few bytes are left.
pub(crate) fn get_i16(b: &mut &[u8]) -> Option<i16> {
    (b.len() >= 2).then(|| b.get_i16())
}

pub(crate) fn get_i32(b: &mut &[u8]) -> Option<i32> {
    (b.len() >= 4).then(|| b.get_i32())
}

pub(crate) fn get_i64(b: &mut &[u8]) -> Option<i64> {
    (b.len() >= 8).then(|| b.get_i64())
}

fn take<'a>(b: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, tail) = (b.get(..len)?, b.get(len..)?);
    *b = tail;
    Some(head)
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    crate::storage::put_varint(out, value);
}

fn get_varint(b: &mut &[u8]) -> Option<i64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *take(b, 1)?.first()?;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&mut out.as_slice()), Some(v));
        }
    }

    #[test]
    fn records_round_trip_through_a_batch_and_a_replay() {
        let records: Vec<KeyValue> = vec![
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), None),
            (b"c".to_vec(), Some(Vec::new())),
        ];
        let mut bytes = batch(&records, 7);
        bytes[0..8].copy_from_slice(&10i64.to_be_bytes());
        let mut seen = Vec::new();
        let next = replay(&bytes, 11, |_, o, k, v| {
            seen.push((o, k.to_vec(), v.map(<[u8]>::to_vec)))
        });
        assert_eq!(next, Some(13));
        assert_eq!(
            seen,
            vec![
                (11, b"b".to_vec(), None),
                (12, b"c".to_vec(), Some(Vec::new()))
            ]
        );
    }
}

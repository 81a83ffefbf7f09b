//! Builders of valid RecordBatch v2 bytes, for tests and benches of any layer.
//! Not for production use: the records are encoded the simple way.

use super::RecordBatch;
use super::log::LEADER_EPOCH;

/// Appends `value` as a zigzag varint (Kafka's record field encoding).
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    super::record::put_varint(out, value);
}

/// A record's key and value; `None` is null (a null value is a tombstone).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn record(out: &mut Vec<u8>, offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
    let mut body = Vec::with_capacity(8);
    body.push(0); // attributes
    put_varint(&mut body, 0); // timestamp delta
    put_varint(&mut body, offset_delta);
    for field in [key, value] {
        match field {
            Some(bytes) => {
                put_varint(&mut body, bytes.len() as i64);
                body.extend_from_slice(bytes);
            }
            None => put_varint(&mut body, -1),
        }
    }
    put_varint(&mut body, 0); // header count
    put_varint(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// Builds a complete batch (base offset 0) with the given producer fields and attributes.
fn build_with(
    records: &[KeyValue<'_>],
    timestamp: i64,
    producer: (i64, i16, i32),
    attributes: i16,
) -> Vec<u8> {
    let count = records.len() as i32;
    let mut out = Vec::with_capacity(
        61 + records
            .iter()
            .map(|(k, v)| k.map_or(0, <[u8]>::len) + v.map_or(0, <[u8]>::len) + 10)
            .sum::<usize>(),
    );
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&0i32.to_be_bytes()); // length, patched below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer.0.to_be_bytes());
    out.extend_from_slice(&producer.1.to_be_bytes());
    out.extend_from_slice(&producer.2.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for (i, (key, value)) in records.iter().enumerate() {
        record(&mut out, i as i64, *key, *value);
    }
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crate::storage::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A valid uncompressed v2 batch of `records` (key, value), all stamped `timestamp`,
/// from no producer (producer id -1). `records` must not be empty.
pub fn batch(records: &[(&[u8], &[u8])], timestamp: i64) -> Vec<u8> {
    let records: Vec<_> = records.iter().map(|(k, v)| (Some(*k), Some(*v))).collect();
    build_with(&records, timestamp, (-1, -1, -1), 0)
}

/// A valid uncompressed v2 batch whose records may lack a key or a value
/// (a tombstone), all stamped `timestamp`, from no producer.
pub fn keyed_batch(records: &[KeyValue<'_>], timestamp: i64) -> Vec<u8> {
    build_with(records, timestamp, (-1, -1, -1), 0)
}

/// A COMMIT (`commit`) or ABORT marker of `producer_id` at `epoch` (base offset 0).
pub fn control_batch(producer_id: i64, epoch: i16, commit: bool, timestamp: i64) -> Vec<u8> {
    super::txn::control_batch(producer_id, epoch, commit, 0, timestamp)
}

/// A transactional batch of `n` small records from `producer_id`, first sequence `sequence`.
pub fn transactional_batch(
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    n: usize,
    timestamp: i64,
) -> Vec<u8> {
    from_producer((producer_id, epoch, sequence), n, timestamp, 0x10)
}

/// A batch of `n` small records from idempotent producer `producer_id`, first sequence `sequence`.
pub fn batch_with_producer(
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    n: usize,
    timestamp: i64,
) -> Vec<u8> {
    from_producer((producer_id, epoch, sequence), n, timestamp, 0)
}

/// `n` records `key` -> `value-{i}` from `producer` (id, epoch, first sequence).
fn from_producer(producer: (i64, i16, i32), n: usize, timestamp: i64, attributes: i16) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("value-{i}").into_bytes()).collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(&b"key"[..]), Some(v.as_slice())))
        .collect();
    build_with(&records, timestamp, producer, attributes)
}

mod faulty_disk;
pub use faulty_disk::{DiskOp, FaultyDisk};

/// Names of the files in `dir` ending with `suffix`, sorted.
pub fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// `batches` as a log stores them from `base_offset` on: each batch's base
/// offset and leader epoch set, and stamped `log_append_time` if given, as
/// [`RecordBatch::stored_header`] does.
pub fn as_stored(batches: &[u8], mut base_offset: i64, log_append_time: Option<i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(batches.len());
    let mut rest = batches;
    while let Ok(b) = RecordBatch::parse(rest) {
        let head =
            RecordBatch::stored_header(rest, base_offset, LEADER_EPOCH, log_append_time).unwrap();
        out.extend_from_slice(&head);
        out.extend_from_slice(b.records());
        base_offset += i64::from(b.last_offset_delta()) + 1;
        rest = &rest[b.size()..];
    }
    out
}

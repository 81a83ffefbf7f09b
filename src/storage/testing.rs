//! Builders of valid RecordBatch v2 bytes for tests and benches (not for production use).

/// A valid uncompressed v2 batch of `records` (key, value), all stamped `timestamp`.
pub fn batch(records: &[(&[u8], &[u8])], timestamp: i64) -> Vec<u8> {
    let _ = (records, timestamp);
    todo!()
}

/// A batch of `n` records from an idempotent producer.
pub fn batch_with_producer(
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    n: usize,
    timestamp: i64,
) -> Vec<u8> {
    let _ = (producer_id, epoch, sequence, n, timestamp);
    todo!()
}

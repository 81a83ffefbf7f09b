//! Transactions in the log: control batches (COMMIT/ABORT markers) and the
//! aborted-transaction index of a segment, both in Kafka's formats.
//!
//! A control batch is transactional and control (attributes 0x30), from the
//! transaction's producer id and epoch, base sequence -1, holding one record
//! whose key is `version i16 = 0, type i16` (0 ABORT, 1 COMMIT) and whose
//! value is `version i16 = 0, coordinator epoch i32`.
//!
//! `{base:020}.txnindex` holds one 34-byte entry per aborted transaction
//! whose ABORT marker is in the segment: `version i16 = 0, producer id i64,
//! first offset i64, last offset i64 (the marker's), last stable offset
//! i64`, big-endian. It is rebuilt from the `.log` by recovery.

use std::io;
use std::path::{Path, PathBuf};

use super::disk::{Disk, fsync_dir, rename_durably};
use super::record::{BatchHeader, HEADER_BYTES, read_varint};

/// Attributes of a control batch: transactional and control.
const CONTROL_ATTRIBUTES: i16 = 0x30;
/// Bytes of one `.txnindex` entry.
pub(crate) const ENTRY_BYTES: usize = 34;

/// One aborted transaction: its producer and the offsets it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first record.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The log's last stable offset once the transaction was aborted.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub(crate) fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Every whole entry of a `.txnindex` file; a torn tail is ignored.
    pub(crate) fn decode_all(bytes: &[u8]) -> Vec<AbortedTxn> {
        let field =
            |e: &[u8], at: usize| i64::from_be_bytes(e[at..at + 8].try_into().unwrap_or_default());
        bytes
            .chunks_exact(ENTRY_BYTES)
            .filter(|e| e[..2] == [0, 0])
            // A zeroed block a crash left reads as version 0 too; a real
            // transaction's marker comes after its first record.
            .filter(|e| field(e, 10) < field(e, 18))
            .map(|e| AbortedTxn {
                producer_id: field(e, 2),
                first_offset: field(e, 10),
                last_offset: field(e, 18),
                last_stable_offset: field(e, 26),
            })
            .collect()
    }
}

/// A COMMIT (`commit`) or ABORT marker from producer `producer_id` at
/// `epoch`, with base offset 0 (the log assigns it).
pub(crate) fn control_batch(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut record = vec![0u8]; // attributes
    record.push(0); // timestamp delta 0 (zigzag)
    record.push(0); // offset delta 0
    record.push(8); // key length 4 (zigzag)
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&i16::from(commit).to_be_bytes());
    record.push(12); // value length 6 (zigzag)
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut out = Vec::with_capacity(HEADER_BYTES + record.len() + 1);
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // length, below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // leader epoch
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.extend_from_slice(&CONTROL_ATTRIBUTES.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&1i32.to_be_bytes()); // record count
    out.push((record.len() as u8) << 1); // record length (zigzag), < 64
    out.extend_from_slice(&record);
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crate::storage::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// True for a COMMIT marker, false for ABORT, reading the control record of
/// the batch at the start of `batch` (header included). `None` if unreadable.
pub(crate) fn is_commit(header: &BatchHeader, batch: &[u8]) -> Option<bool> {
    if !header.is_control() {
        return None;
    }
    let mut rest = batch.get(HEADER_BYTES..)?;
    let _length = read_varint(&mut rest, 5).ok()?;
    let (_attributes, tail) = rest.split_first()?;
    rest = tail;
    let _ts = read_varint(&mut rest, 10).ok()?;
    let _offset = read_varint(&mut rest, 5).ok()?;
    let key_len = read_varint(&mut rest, 5).ok()?;
    if key_len < 4 {
        return None;
    }
    let kind = i16::from_be_bytes(rest.get(2..4)?.try_into().ok()?);
    match kind {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Appends `entry` to the `.txnindex` at `path`, durably: aborts are rare,
/// and an entry lost below the recovery point would not be rebuilt. Safe to
/// call again after it failed: a torn entry at the end is written over, and
/// an entry already there (the write went through, the fsync did not) is
/// written again in its place, not after it. Written again, not just
/// fsynced: after a failed fsync the page may be clean and yet not on disk.
pub(crate) fn append_entry(disk: &dyn Disk, path: &Path, entry: &AbortedTxn) -> io::Result<()> {
    const ENTRY: u64 = ENTRY_BYTES as u64;
    let file = disk.open(path)?;
    let len = file.metadata()?.len();
    let whole = len - len % ENTRY;
    let encoded = entry.encode();
    let mut last = [0u8; ENTRY_BYTES];
    let there = whole >= ENTRY
        && disk.read_at(path, &file, &mut last, whole - ENTRY).is_ok()
        && last == encoded;
    let at = if there { whole - ENTRY } else { whole };
    // A torn tail is shorter than an entry: this write covers all of it.
    disk.write_at(path, &file, &[io::IoSlice::new(&encoded)], at)?;
    // DURABILITY: the entry, and the file's name when it is the first, survive a power loss.
    disk.sync(path, &file)?;
    if at == 0
        && let Some(dir) = path.parent()
    {
        fsync_dir(disk, dir)?;
    }
    Ok(())
}

/// Replaces the `.txnindex` at `path` with `entries` (encoded), durably: they
/// are written to `{path}.rewritten`, fsynced, renamed over it and the
/// directory fsynced, so a crash leaves the old file or the new one.
pub(crate) fn rewrite(disk: &dyn Disk, path: &Path, entries: &[u8]) -> io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".rewritten");
    let new = PathBuf::from(name);
    let file = disk.open(&new)?;
    // A `.rewritten` left by a crash or a failed rewrite may hold more.
    disk.set_len(&new, &file, 0)?;
    disk.write_at(&new, &file, &[io::IoSlice::new(entries)], 0)?;
    disk.sync(&new, &file)?;
    // DURABILITY: after a clean stop nothing corrects an entry that came back.
    rename_durably(disk, &new, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::RecordBatch;

    #[test]
    fn markers_are_valid_control_batches_that_say_what_they_are() {
        for commit in [true, false] {
            let b = control_batch(42, 3, commit, 7, 1_000);
            let batch = RecordBatch::parse(&b).unwrap();
            batch.validate().unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!((batch.producer_id(), batch.producer_epoch()), (42, 3));
            let header = BatchHeader::parse(&b).unwrap();
            assert_eq!(is_commit(&header, &b), Some(commit));
        }
    }

    #[test]
    fn index_entries_round_trip_in_kafkas_34_bytes() {
        let e = AbortedTxn {
            producer_id: 9,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        let mut bytes = e.encode().to_vec();
        assert_eq!(bytes.len(), 34);
        bytes.extend_from_slice(&[0; 34]); // a zeroed block
        bytes.extend_from_slice(&[0; 10]); // a torn tail
        assert_eq!(AbortedTxn::decode_all(&bytes), vec![e]);
    }
}

//! Idempotent-producer state: per producer id, its epoch and its last five
//! batches' sequence ranges and offsets, to reject gaps and to answer retries
//! with the original offsets.
//!
//! Snapshot file `{offset:020}.sluice-producers` holds the state as of `offset` (all
//! batches below it applied), big-endian: magic `SLPS`, version u16 = 1,
//! producer count u32, then per producer: id i64, epoch i16, batch count u8,
//! batches (first seq i32, last seq i32, base offset i64, last offset i64);
//! then (version 2) the first offset of its open transaction i64 (-1: none);
//! then CRC32C u32 of everything before it. Version 1 files (no transactions)
//! are still read. A snapshot that fails its CRC is
//! ignored (the log replays from an older one or from its start).
//!
//! The format is Sluice's own, so the file is not named `.snapshot`: Kafka's
//! tools would read that as Kafka's producer snapshot. Earlier versions of
//! Sluice did use that name; such files are still read, and removed once a
//! snapshot under the new name is written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use super::record::BatchHeader;
use super::segment::file_name;
use super::{Error, Result};

/// Extension of a producer snapshot.
pub(crate) const SNAPSHOT_EXT: &str = "sluice-producers";
const SNAPSHOT_TMP_EXT: &str = "sluice-producers.tmp";
/// Extension Sluice used before, read for compatibility.
pub(crate) const LEGACY_SNAPSHOT_EXT: &str = "snapshot";

/// Batches remembered per producer, as in Kafka.
const BATCHES_KEPT: usize = 5;
const MAGIC: &[u8; 4] = b"SLPS";
/// Version 2 adds each producer's open transaction (first offset, -1: none).
const VERSION: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchEntry {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchEntry>,
    /// First offset of the producer's open transaction in this partition.
    txn_first_offset: Option<i64>,
}

/// Kafka's sequence arithmetic: sequences wrap from `i32::MAX` to 0.
fn add_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

fn entry_of(header: &BatchHeader) -> BatchEntry {
    BatchEntry {
        first_seq: header.base_sequence,
        last_seq: add_sequence(header.base_sequence, header.last_offset_delta.max(0)),
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
    }
}

/// State of every idempotent producer that wrote to the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStates {
    /// (epoch, last sequence) of `producer_id`.
    pub(crate) fn get(&self, producer_id: i64) -> Option<(i16, i32)> {
        let p = self.producers.get(&producer_id)?;
        Some((p.epoch, p.batches.back().map_or(-1, |b| b.last_seq)))
    }

    /// Checks the batches of one append (offsets already assigned) in order.
    /// `Ok(Some((base, last)))` when every batch is a retry of a stored one.
    pub(crate) fn check(&self, batches: &[BatchHeader]) -> Result<Option<(i64, i64)>> {
        let mut overlay: HashMap<i64, ProducerEntry> = HashMap::new();
        let mut duplicates = Vec::new();
        // Markers come from the transaction coordinator and carry no sequence.
        for header in batches
            .iter()
            .filter(|h| h.producer_id >= 0 && !h.is_control())
        {
            let pid = header.producer_id;
            let current = overlay.get(&pid).or_else(|| self.producers.get(&pid));
            match check_one(current, header)? {
                Some(original) => duplicates.push(original),
                None => {
                    let mut next = current.cloned().unwrap_or_default();
                    apply(&mut next, header);
                    overlay.insert(pid, next);
                }
            }
        }
        match (duplicates.first(), duplicates.last()) {
            (Some(first), Some(last)) if duplicates.len() == batches.len() => {
                Ok(Some((first.base_offset, last.last_offset)))
            }
            (Some(first), _) => Err(Error::OutOfOrderSequence {
                producer_id: batches.first().map_or(-1, |h| h.producer_id),
                expected: add_sequence(first.last_seq, 1),
                got: first.first_seq,
            }),
            _ => Ok(None),
        }
    }

    /// Records an appended (or replayed) batch. For a transaction marker,
    /// returns the first offset of the transaction it ended, if one was open.
    pub(crate) fn update(&mut self, header: &BatchHeader) -> Option<i64> {
        if header.producer_id < 0 {
            return None;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.is_control() {
            entry.epoch = entry.epoch.max(header.producer_epoch);
            let first = entry.txn_first_offset.take()?;
            self.ongoing.remove(&first);
            return Some(first);
        }
        apply(entry, header);
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(header.base_offset);
            self.ongoing.insert(header.base_offset, header.producer_id);
        }
        None
    }

    /// Every open transaction: (producer id, epoch, first offset).
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.ongoing
            .iter()
            .map(|(first, pid)| {
                let epoch = self.producers.get(pid).map_or(0, |p| p.epoch);
                (*pid, epoch, *first)
            })
            .collect()
    }

    /// Every producer known here: (producer id, epoch, last sequence, first
    /// offset of its open transaction), by producer id.
    pub(crate) fn active(&self) -> Vec<(i64, i16, i32, Option<i64>)> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(pid, p)| {
                let last = p.batches.back().map_or(-1, |b| b.last_seq);
                (*pid, p.epoch, last, p.txn_first_offset)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The first offset of the earliest open transaction, if any: the last
    /// stable offset is this, else the log end offset.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.producers.len() * 40);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        for (id, p) in ids
            .into_iter()
            .filter_map(|id| Some((id, self.producers.get(id)?)))
        {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&p.epoch.to_be_bytes());
            out.push(p.batches.len() as u8);
            for b in &p.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
            out.extend_from_slice(&p.txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crate::storage::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a snapshot; `None` if it is damaged in any way.
    pub(crate) fn decode(bytes: &[u8]) -> Option<ProducerStates> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crate::storage::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        if r.take::<4>()? != *MAGIC {
            return None;
        }
        let version = u16::from_be_bytes(r.take()?);
        if !(1..=VERSION).contains(&version) {
            return None;
        }
        let count = u32::from_be_bytes(r.take()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let [n] = r.take::<1>()?;
            let mut batches = VecDeque::with_capacity(usize::from(n).min(BATCHES_KEPT));
            for _ in 0..n {
                batches.push_back(BatchEntry {
                    first_seq: i32::from_be_bytes(r.take()?),
                    last_seq: i32::from_be_bytes(r.take()?),
                    base_offset: i64::from_be_bytes(r.take()?),
                    last_offset: i64::from_be_bytes(r.take()?),
                });
            }
            let txn_first_offset = match version {
                1 => None,
                _ => Some(i64::from_be_bytes(r.take()?)).filter(|o| *o >= 0),
            };
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    txn_first_offset,
                },
            );
        }
        let ongoing = producers
            .iter()
            .filter_map(|(id, p)| Some((p.txn_first_offset?, *id)))
            .collect();
        r.0.is_empty()
            .then_some(ProducerStates { producers, ongoing })
    }

    /// Writes the snapshot for `offset` atomically: a temp file renamed into
    /// place. With `durable` (a clean close, whose directory fsync follows)
    /// the temp file is fsynced first, so that a power loss after the close
    /// leaves the whole file, not an empty one: an older snapshot would then
    /// be used, losing the producers whose records were deleted since. A
    /// roll's snapshot is not (a torn one fails its CRC, and the unclean
    /// open replays from an older one).
    pub(crate) fn write_snapshot(&self, dir: &Path, offset: i64, durable: bool) -> Result<()> {
        let path = dir.join(file_name(offset, SNAPSHOT_EXT));
        let tmp = dir.join(file_name(offset, SNAPSHOT_TMP_EXT));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &self.encode())?;
            if durable {
                file.sync_data()?;
            }
            Ok(())
        };
        write().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
}

/// `Ok(Some(original))` for a retry of a cached batch, `Ok(None)` for a new one in order.
fn check_one(current: Option<&ProducerEntry>, header: &BatchHeader) -> Result<Option<BatchEntry>> {
    let Some(current) = current else {
        return Ok(None);
    };
    let (pid, epoch, seq) = (
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
    );
    if epoch < current.epoch {
        return Err(Error::InvalidProducerEpoch {
            producer_id: pid,
            current: current.epoch,
            got: epoch,
        });
    }
    let expected = if epoch > current.epoch {
        0
    } else {
        let new = entry_of(header);
        if let Some(original) = current
            .batches
            .iter()
            .find(|b| (b.first_seq, b.last_seq) == (new.first_seq, new.last_seq))
        {
            return Ok(Some(*original));
        }
        match current.batches.back() {
            Some(last) => add_sequence(last.last_seq, 1),
            None => return Ok(None),
        }
    };
    if seq != expected {
        return Err(Error::OutOfOrderSequence {
            producer_id: pid,
            expected,
            got: seq,
        });
    }
    Ok(None)
}

fn apply(entry: &mut ProducerEntry, header: &BatchHeader) {
    if header.producer_epoch != entry.epoch {
        entry.epoch = header.producer_epoch;
        entry.batches.clear();
    }
    entry.batches.push_back(entry_of(header));
    while entry.batches.len() > BATCHES_KEPT {
        entry.batches.pop_front();
    }
}

#[cfg(test)]
mod tests;

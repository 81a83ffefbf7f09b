//! The internal offsets log `<data_dir>/__consumer_offsets-0`: append entries
//! and replay them at start-up. It is a compacted log (Kafka's key and value
//! schemas, tombstones for deletions): the log cleaner keeps the latest
//! entry of each key, as for any compacted topic. Offsets of a transaction
//! are in transactional batches of its producer and count at its COMMIT
//! marker, as in Kafka.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::codec::{Entry, GroupValue, OffsetValue};
use super::consumer::records::Record;
use crate::internal_log::{InternalLog, Origin};
use crate::storage::LogFiles;

/// Directory name of the internal partition.
pub(crate) const OFFSETS_DIR: &str = "__consumer_offsets-0";

/// What replaying the log yields: the latest value of every live key.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) groups: HashMap<String, GroupValue>,
    pub(crate) offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>>,
    /// The records of consumer groups (KIP-848), in log order.
    pub(crate) consumer: HashMap<String, Vec<Record>>,
    /// Offsets of transactions without a marker yet (TxnOffsetCommit), by
    /// producer id, in log order: the transaction coordinator decides them.
    pub(crate) staged: HashMap<i64, Vec<Entry>>,
}

impl Restored {
    fn replay(&mut self, origin: Origin, entry: Option<Entry>) {
        match (origin, entry) {
            (Origin::Plain, Some(entry)) => self.apply(entry),
            (Origin::Transaction(producer), Some(entry)) => {
                self.staged.entry(producer).or_default().push(entry)
            }
            (Origin::Marker(producer, commit), _) => {
                // Committed offsets count at the marker, as in Kafka.
                let staged = self.staged.remove(&producer).unwrap_or_default();
                if commit {
                    staged.into_iter().for_each(|e| self.apply(e));
                }
            }
            (_, None) => {}
        }
    }

    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                let offsets = self.offsets.entry(group).or_default();
                match value {
                    Some(v) => offsets.insert((topic, partition), v),
                    None => offsets.remove(&(topic, partition)),
                };
            }
            Entry::Group {
                group,
                value: Some(v),
            } => {
                self.groups.insert(group, v);
            }
            Entry::Group { group, value: None } => {
                self.groups.remove(&group);
            }
            Entry::Consumer {
                group,
                record: Record::GroupEpoch(None),
            } => {
                self.consumer.remove(&group);
            }
            Entry::Consumer { group, record } => {
                self.consumer.entry(group).or_default().push(record);
            }
        }
    }
}

/// Opens (creating if needed) the internal log under `data_dir`, on
/// `files`, and replays it.
pub(crate) fn open(
    at: (&Path, LogFiles),
    segment_bytes: u64,
) -> crate::Result<(InternalLog, Restored)> {
    let mut restored = Restored::default();
    let log = InternalLog::open(at, OFFSETS_DIR, segment_bytes, |origin, key, value| {
        let entry = match origin {
            Origin::Marker(..) => None,
            _ => Entry::decode(key, value),
        };
        restored.replay(origin, entry);
    })?;
    Ok((log, restored))
}

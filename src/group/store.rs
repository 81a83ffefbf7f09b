//! The internal offsets log `<data_dir>/__consumer_offsets-0`: append entries
//! and replay them at start-up. It is a compacted log (Kafka's key and value
//! schemas, tombstones for deletions): the log cleaner keeps the latest
//! entry of each key, as for any compacted topic. Offsets of a transaction
//! are in transactional batches of its producer and count at its COMMIT
//! marker, as in Kafka.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Offsets of transactions without a marker yet: the transaction
    /// coordinator decides them.
    pub(crate) staged: Staged,
}

/// A transaction's commit of one partition's offset (TxnOffsetCommit),
/// waiting for the transaction's marker.
#[derive(Debug, Clone)]
pub(crate) struct StagedOffset {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) value: OffsetValue,
}

/// Staged offsets by producer id, in log order.
#[derive(Debug, Default)]
pub(crate) struct Staged(HashMap<i64, Vec<StagedOffset>>);

impl Staged {
    pub(crate) fn add(&mut self, producer_id: i64, staged: impl IntoIterator<Item = StagedOffset>) {
        self.0.entry(producer_id).or_default().extend(staged);
    }

    pub(crate) fn take(&mut self, producer_id: i64) -> Vec<StagedOffset> {
        self.0.remove(&producer_id).unwrap_or_default()
    }

    /// Drops the staged commits of `group`'s partition: a tombstone written
    /// after them removes them, as compaction does (and Kafka).
    pub(crate) fn drop_partition(&mut self, group: &str, topic: &str, partition: i32) {
        for staged in self.0.values_mut() {
            staged.retain(|s| !(s.group == group && s.topic == topic && s.partition == partition));
        }
    }

    /// The partitions of `group` with a commit waiting for its transaction's marker.
    pub(crate) fn partitions_of(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.0
            .values()
            .flatten()
            .filter(|s| s.group == group)
            .map(|s| (s.topic.clone(), s.partition))
            .collect()
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// Offsets by partition.
pub(crate) type Offsets = BTreeMap<(String, i32), OffsetValue>;

impl StagedOffset {
    /// The commit `entry` makes in a transaction, written at offset
    /// `record`; `None` for anything but an offset commit.
    pub(crate) fn at(record: i64, entry: Entry) -> Option<StagedOffset> {
        match entry {
            Entry::Offset {
                group,
                topic,
                partition,
                value: Some(mut value),
            } => {
                value.record = record;
                Some(StagedOffset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            _ => None,
        }
    }

    /// Counts this commit of a committed transaction in `offsets` (its
    /// group's), unless a later record holds the partition already.
    pub(crate) fn commit_into(self, offsets: &mut Offsets) {
        let key = (self.topic, self.partition);
        if OffsetValue::replaced_by(offsets.get(&key), &self.value) {
            offsets.insert(key, self.value);
        }
    }
}

impl Restored {
    fn replay(&mut self, origin: Origin, record: i64, entry: Option<Entry>) {
        match (origin, entry) {
            (Origin::Plain, Some(entry)) => self.apply(entry, record),
            (Origin::Transaction(producer_id), Some(entry)) => {
                self.staged
                    .add(producer_id, StagedOffset::at(record, entry));
            }
            (Origin::Marker(producer_id, commit), _) => {
                // Committed offsets count at the marker, as in Kafka.
                for staged in self.staged.take(producer_id) {
                    if commit {
                        let offsets = self.offsets.entry(staged.group.clone()).or_default();
                        staged.commit_into(offsets);
                    }
                }
            }
            _ => {}
        }
    }

    fn apply(&mut self, entry: Entry, record: i64) {
        match entry {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                let offsets = self.offsets.entry(group.clone()).or_default();
                match value {
                    Some(mut v) => {
                        v.record = record;
                        offsets.insert((topic, partition), v);
                    }
                    None => {
                        self.staged.drop_partition(&group, &topic, partition);
                        offsets.remove(&(topic, partition));
                    }
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
    let log = InternalLog::open(
        at,
        OFFSETS_DIR,
        segment_bytes,
        |origin, record, key, value| {
            let entry = match origin {
                Origin::Marker(..) => None,
                _ => Entry::decode(key, value),
            };
            restored.replay(origin, record, entry);
        },
    )?;
    Ok((log, restored))
}

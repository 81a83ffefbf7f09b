//! The catalog ("the logs"): every topic, its partitions and their logs.
//!
//! Topic metadata (name, id, partition count, config overrides) lives in
//! `<data_dir>/topics.toml`, rewritten atomically on every change, so it
//! survives restarts. Each partition is a [`Partition`], the only way to its
//! log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::{Error, Result, io_err};
use crate::storage::{self, LogFiles};
use crate::topic_config;
use crate::util::{now_ms, write_atomically};

mod admin;
mod cleaner;
mod defaults;
mod index;
mod names;
mod partition;
mod recovery_point;
mod topic;

pub use crate::storage::{AbortedTxn, AppendInfo, LogConfig};
pub use cleaner::CleanStats;
pub use names::validate_topic_name;
pub use partition::{FetchSpec, Located, Offsets, Partition};
pub use topic::Topic;
use topic::TopicState;

const TOPICS_FILE: &str = "topics.toml";
/// Held by the coordinators' own logs (`<data_dir>/__consumer_offsets-0`,
/// `<data_dir>/__transaction_state-0`); a user topic of either name would
/// share its directory.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];
const PRODUCER_IDS_FILE: &str = "producer-ids";
const PRODUCER_ID_BLOCK: i64 = 1000;

/// What `topics.toml` holds for one topic.
#[derive(Debug, Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    id: Uuid,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    #[serde(default)]
    topic: Vec<TopicRecord>,
}

/// All topics of the broker.
#[derive(Debug)]
pub struct Catalog {
    data_dir: PathBuf,
    /// The topic defaults in force (the `[log]` table under dynamic broker
    /// configs), and the generation of dynamic configs they come from.
    defaults: RwLock<(u64, LogConfig)>,
    topics: RwLock<index::Topics>,
    /// Serialises metadata changes so `topics.toml` is written in order.
    admin: Mutex<()>,
    producer_ids: Mutex<(i64, i64)>,
    /// Recovery points read at open, for partitions opened later in the same run.
    recovery_points: recovery_point::RecoveryPoints,
    /// Held from reading the recovery points to replacing their file: the
    /// flusher, an admin change and close all write it, through one
    /// temporary file, and the last to write must have read last.
    checkpoint: Mutex<()>,
    /// Notified when a partition rolled and its sealed segment waits for an fsync.
    flush_wanted: Arc<Notify>,
    /// Set when logs opened from now on abort the transactions a previous
    /// run left open in them.
    abort_leftovers: Arc<AtomicBool>,
    /// Set under `flush = "always"`: see [`Catalog::read_only_synced`].
    synced_reads: Arc<AtomicBool>,
    /// Where the partition logs' files live, and the bound on sealed
    /// segment files they hold open.
    files: LogFiles,
    /// The cleaner's first dirty offset of each partition.
    cleaner: cleaner::CleanerOffsets,
    /// Goes up whenever a topic is created or deleted or grows partitions.
    generation: AtomicU64,
    /// The topic image of the current generation, built on first use.
    image: Mutex<Option<Arc<TopicImage>>>,
}

/// The topics as the group coordinator sees them: name → (id, partition
/// count), at one catalog generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicImage {
    pub generation: u64,
    pub topics: BTreeMap<String, (Uuid, i32)>,
}

impl Catalog {
    /// Opens (creating if needed) the data directory and every partition log in it.
    pub fn open(data_dir: &Path, defaults: LogConfig) -> Result<Catalog> {
        Catalog::open_on(data_dir, defaults, storage::real_unbounded())
    }

    /// [`Catalog::open`] with the partition logs' file operations on `disk`
    /// (a test's fault-injecting disk) and at most what `open` allows of
    /// their sealed segment files open at once.
    pub fn open_on(data_dir: &Path, defaults: LogConfig, files: LogFiles) -> Result<Catalog> {
        std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        let path = data_dir.join(TOPICS_FILE);
        let file: TopicsFile = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TopicsFile::default(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let catalog = Catalog {
            data_dir: data_dir.to_path_buf(),
            defaults: RwLock::new((0, defaults)),
            topics: RwLock::new(index::Topics::default()),
            admin: Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
            recovery_points: recovery_point::read(data_dir),
            checkpoint: Mutex::new(()),
            flush_wanted: Arc::new(Notify::new()),
            abort_leftovers: Arc::new(AtomicBool::new(false)),
            synced_reads: Arc::new(AtomicBool::new(false)),
            files,
            generation: AtomicU64::new(0),
            image: Mutex::new(None),
            cleaner: cleaner::CleanerOffsets::open(data_dir),
        };
        for record in file.topic {
            let cfg = Arc::new(
                topic_config::apply(&catalog.defaults(), &record.configs).map_err(Error::Config)?,
            );
            let mut partitions = Vec::new();
            for index in 0..record.partitions {
                partitions.push(catalog.open_partition(
                    (&record.name, index),
                    cfg.clone(),
                    true,
                )?);
            }
            let topic = Topic {
                name: record.name.clone(),
                id: record.id,
                state: RwLock::new(TopicState {
                    partitions,
                    overrides: record.configs,
                }),
            };
            catalog.topics_mut().insert(Arc::new(topic));
        }
        Ok(catalog)
    }

    /// The partition `index` of `topic`, its log opened now (a new one) or,
    /// `at_start`, on first use if it was closed cleanly: a start reads
    /// nothing of it but its marker. One that needs recovery opens at start,
    /// so no request waits on a scan of its segments.
    fn open_partition(
        &self,
        (topic, index): (&str, i32),
        cfg: Arc<LogConfig>,
        at_start: bool,
    ) -> Result<Arc<Partition>> {
        let dir = self.partition_dir(topic, index);
        let lazily = at_start && crate::storage::closed_cleanly(&dir);
        let recovery_point = self
            .recovery_points
            .get(&(topic.to_string(), index))
            .copied()
            .unwrap_or(0);
        let flush_wanted = self.flush_wanted.clone();
        Ok(Arc::new(Partition::open(
            &dir,
            (topic, index),
            cfg,
            (recovery_point, self.files.clone(), lazily),
            (
                flush_wanted,
                self.abort_leftovers.clone(),
                self.synced_reads.clone(),
            ),
        )?))
    }

    /// Where partition `index` of `topic` lives.
    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{index}"))
    }

    /// From now on, readers of every log see only what is fsynced (`flush =
    /// "always"`, whose producers are answered only then).
    pub(crate) fn read_only_synced(&self) {
        self.synced_reads.store(true, Ordering::Release);
    }

    /// From now on, every log aborts the transactions a previous run left
    /// open in it: those open now at once, the others as they open. For the
    /// transaction coordinator, once it has finished the transactions its
    /// state says were prepared.
    pub(crate) fn abort_leftover_transactions(&self) -> Result<()> {
        self.abort_leftovers.store(true, Ordering::Release);
        for topic in self.topics() {
            for partition in topic.partitions() {
                partition.abort_leftover_transactions()?;
            }
        }
        Ok(())
    }

    /// Where the partition logs' files live: the internal logs share them.
    pub(crate) fn files(&self) -> LogFiles {
        self.files.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn topics_mut(&self) -> std::sync::RwLockWriteGuard<'_, index::Topics> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, index::Topics> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every topic, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics_read().values().cloned().collect()
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics_read().get(name).cloned()
    }

    /// The topic called `name`, or UNKNOWN_TOPIC_OR_PARTITION.
    fn existing(&self, name: &str) -> Result<Arc<Topic>> {
        self.topic(name).ok_or_else(|| {
            Error::api(
                ResponseError::UnknownTopicOrPartition,
                format!("no topic {name:?}"),
            )
        })
    }

    /// Every topic's id and partition count, rebuilt only after a change.
    pub fn image(&self) -> Arc<TopicImage> {
        let mut cached = self.image.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(image) = cached.as_ref().filter(|i| i.generation == generation) {
            return image.clone();
        }
        let topics = self
            .topics()
            .iter()
            .map(|t| (t.name.clone(), (t.id, t.partitions().len() as i32)))
            .collect();
        let image = Arc::new(TopicImage { generation, topics });
        *cached = Some(image.clone());
        image
    }

    /// A topic was created or deleted or grew: group subscriptions are resolved again.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics_read().by_id(id).cloned()
    }

    /// Partition `index` of `topic`, or UNKNOWN_TOPIC_OR_PARTITION.
    pub fn partition(&self, topic: &str, index: i32) -> Result<Arc<Partition>> {
        self.topic(topic)
            .and_then(|t| t.partition(index))
            .ok_or_else(|| {
                Error::api(
                    ResponseError::UnknownTopicOrPartition,
                    "unknown topic or partition",
                )
            })
    }

    /// A producer id never handed out before, even across restarts.
    pub fn next_producer_id(&self) -> Result<i64> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
        let (next, limit) = &mut *ids;
        if *next >= *limit {
            let path = self.data_dir.join(PRODUCER_IDS_FILE);
            // Only a missing file starts from 0: one that cannot be read
            // would hand out ids again.
            let stored = match std::fs::read_to_string(&path) {
                Ok(text) => text.trim().parse::<i64>().map_err(|_| {
                    let damaged = std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not a producer id: {text:?}"),
                    );
                    io_err(&path)(damaged)
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(io_err(&path)(e)),
            };
            let start = stored.max(*limit);
            // DURABILITY: reserve the block on disk before handing out any id from it.
            write_atomically(&path, (start + PRODUCER_ID_BLOCK).to_string().as_bytes())??;
            (*next, *limit) = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = *next;
        *next += 1;
        Ok(id)
    }

    /// Applies retention (and time-based rolling) to every partition.
    pub fn apply_retention(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for partition in topic.partitions() {
                if let Err(e) = partition.apply_retention(now) {
                    tracing::warn!(topic = %topic.name, partition = partition.index, error = %e, "retention failed");
                }
            }
        }
    }

    /// Closes every log cleanly (fsync, trim indexes, clean-shutdown marker).
    pub fn close(&self) -> Result<()> {
        let _checkpoint = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
        let topics = std::mem::take(&mut *self.topics_mut());
        let mut result = Ok(());
        let mut points = Vec::new();
        for topic in topics.into_values() {
            let partitions = std::mem::take(&mut topic.write().partitions);
            for partition in partitions {
                let (index, recovery_point) = (partition.index, partition.recovery_point());
                let Ok(partition) = Arc::try_unwrap(partition) else {
                    tracing::warn!(topic = %topic.name, "partition still in use at close; left for recovery");
                    points.push((topic.name.clone(), index, recovery_point));
                    continue;
                };
                match partition.close() {
                    // Closing fsynced everything.
                    Ok(end) => points.push((topic.name.clone(), index, end)),
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = index, error = %e, "close failed");
                        points.push((topic.name.clone(), index, recovery_point));
                        result = Err(e.into());
                    }
                }
            }
        }
        let points: Vec<(&str, i32, i64)> = points
            .iter()
            .map(|(t, i, o)| (t.as_str(), *i, *o))
            .collect();
        result.and(recovery_point::write(&self.data_dir, &points))
    }
}

#[cfg(test)]
mod tests;

//! Topic administration: creating and deleting topics, adding partitions,
//! changing configs. Each change is in `topics.toml` before it takes
//! effect (a delete: before it is answered); one that is in the file but
//! whose directory's fsync failed is made and answered with the error, as
//! memory must agree with the file a restart reads. The directories of a
//! topic or partitions that fail to be created are removed again.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, RwLock};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::names::collides;
use super::{
    Catalog, INTERNAL_TOPICS, LogConfig, Partition, TOPICS_FILE, Topic, TopicRecord, TopicState,
    TopicsFile, validate_topic_name,
};
use crate::error::{Error, Result, io_err};
use crate::topic_config;
use crate::util::{Durable, write_atomically_on};

impl Catalog {
    /// Creates a topic. With `validate_only` checks everything and changes nothing.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>> {
        validate_topic_name(name)?;
        if !(1..=100_000).contains(&partitions) {
            return Err(Error::api(
                ResponseError::InvalidPartitions,
                "partition count must be 1..=100000",
            ));
        }
        // Under the admin lock, as set_defaults is: a topic's partitions
        // all take the defaults in force when it is created.
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = topic_config::apply(&self.defaults(), &overrides)
            .map_err(|m| Error::api(ResponseError::InvalidConfig, m))?;
        if self.topic(name).is_some() || INTERNAL_TOPICS.contains(&name) {
            return Err(Error::api(
                ResponseError::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        if let Some(other) = self.topics().iter().find(|t| collides(&t.name, name)) {
            return Err(Error::api(
                ResponseError::InvalidTopicException,
                format!("topic {name:?} collides with {:?}", other.name),
            ));
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            state: RwLock::new(TopicState {
                partitions: Vec::new(),
                overrides,
            }),
        });
        if validate_only {
            return Ok(topic);
        }
        topic.write().partitions = self.open_partitions(name, 0..partitions, Arc::new(cfg))?;
        // In `topics.toml` before anyone can see it: a producer could
        // otherwise write (and be answered) to a topic that a failed write
        // of the file then removes, directories and all.
        let durable = match self.persist(|records| records.push(TopicRecord::of(&topic))) {
            Ok(durable) => durable,
            Err(e) => {
                discard(std::mem::take(&mut topic.write().partitions));
                return Err(e);
            }
        };
        self.topics_mut().insert(topic.clone());
        self.changed();
        durable.map(|()| topic)
    }

    /// Opens partitions `indexes` of topic `name`, all or none: when one
    /// fails (out of descriptors, a full disk), the ones opened are removed
    /// again, directories and all, and the error is returned.
    fn open_partitions(
        &self,
        name: &str,
        indexes: Range<i32>,
        cfg: Arc<LogConfig>,
    ) -> Result<Vec<Arc<Partition>>> {
        let mut opened = Vec::with_capacity(indexes.len());
        for index in indexes {
            let dir = self.partition_dir(name, index);
            let partition = clear_leftover(&dir)
                .and_then(|()| self.open_partition((name, index), cfg.clone(), false));
            match partition {
                Ok(partition) => opened.push(partition),
                Err(e) => {
                    discard(opened);
                    remove_partition_dir(&dir);
                    return Err(e);
                }
            }
        }
        Ok(opened)
    }

    /// Deletes a topic and all its data.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.topics_mut().remove(name).ok_or_else(|| {
            Error::api(
                ResponseError::UnknownTopicOrPartition,
                format!("no topic {name:?}"),
            )
        })?;
        self.changed();
        // IMPORTANT: the metadata goes first, so a crash cannot resurrect the topic.
        let durable = match self.persist(|_| {}) {
            Ok(durable) => durable,
            Err(e) => {
                // Refused: the topic stays, as `topics.toml` still has it.
                self.topics_mut().insert(topic);
                self.changed();
                return Err(e);
            }
        };
        // Out of the file at once: a restart must not hand the checkpoint
        // to a topic created again under this name.
        if self.cleaner.forget_topic(name)
            && let Err(e) = self.write_cleaner_offsets()
        {
            tracing::warn!(error = %e, "cannot write the cleaner offset checkpoint");
        }
        let partitions = std::mem::take(&mut topic.write().partitions);
        discard(partitions);
        durable.map(|()| topic)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<()> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.existing(name)?;
        let current = topic.partitions().len() as i32;
        if count <= current || count > 100_000 {
            return Err(Error::api(
                ResponseError::InvalidPartitions,
                format!(
                    "topic has {current} partitions; the new count must be larger (and at most 100000), got {count}"
                ),
            ));
        }
        if validate_only {
            return Ok(());
        }
        // One copy of the topic's settings, shared by its partitions old and new.
        let cfg = match topic.partition(0) {
            Some(first) => first.shared_config(),
            None => Arc::new(
                topic_config::apply(&self.defaults(), &topic.overrides()).map_err(Error::Config)?,
            ),
        };
        let added = self.open_partitions(name, current..count, cfg)?;
        // Written before the new partitions can take records, as a new topic is.
        let grown = |records: &mut Vec<TopicRecord>| {
            if let Some(record) = records.iter_mut().find(|r| r.name == name) {
                record.partitions = count;
            }
        };
        let durable = match self.persist(grown) {
            Ok(durable) => durable,
            Err(e) => {
                discard(added);
                return Err(e);
            }
        };
        topic.write().partitions.extend(added);
        self.changed();
        durable
    }

    /// Changes a topic's overrides with `change`; nothing changes if it or validation fails.
    pub fn alter_configs(
        &self,
        name: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<()>,
        validate_only: bool,
    ) -> Result<()> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.existing(name)?;
        let mut overrides = topic.overrides();
        change(&mut overrides)?;
        let cfg = topic_config::apply(&self.defaults(), &overrides)
            .map_err(|m| Error::api(ResponseError::InvalidConfig, m))?;
        if validate_only {
            return Ok(());
        }
        // Written first, so the topic takes the change only once it will last.
        let durable = self.persist(|records| {
            if let Some(record) = records.iter_mut().find(|r| r.name == name) {
                record.configs = overrides.clone();
            }
        })?;
        topic.write().overrides = overrides;
        let cfg = Arc::new(cfg);
        for partition in topic.partitions() {
            partition.set_config(cfg.clone());
        }
        durable
    }

    /// Writes `topics.toml`: the topics there are, with the change being
    /// made (`pending`) applied to their records. `Err`: the file is as it
    /// was, and the change is refused. `Ok(Err)`: the file has the change
    /// but may lose it in a crash; the change is made (a restart reads the
    /// file) and answered with the error.
    fn persist(&self, pending: impl FnOnce(&mut Vec<TopicRecord>)) -> Result<Durable> {
        let mut file = TopicsFile {
            topic: self.topics().iter().map(|t| TopicRecord::of(t)).collect(),
        };
        pending(&mut file.topic);
        let text = toml::to_string(&file).map_err(|e| Error::Config(e.to_string()))?;
        // A topic deleted and created again must not inherit the old
        // recovery points. They go first: if `topics.toml` then fails, the
        // change is refused whole (a point for a topic that is not there does
        // no harm; one missing only means a longer recovery), where the
        // other order left a refused create named in `topics.toml`.
        self.write_recovery_points()?;
        write_atomically_on(
            &*self.files.0,
            &self.data_dir.join(TOPICS_FILE),
            text.as_bytes(),
        )
    }
}

impl TopicRecord {
    /// `topic` as `topics.toml` records it.
    fn of(topic: &Topic) -> TopicRecord {
        TopicRecord {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions().len() as i32,
            configs: topic.overrides(),
        }
    }
}

/// Removes partitions no longer in any topic, directories and all.
fn discard(partitions: Vec<Arc<Partition>>) {
    for partition in partitions {
        partition.mark_deleted();
        remove_partition_dir(&partition.dir());
    }
}

/// Removes a partition directory that no topic owns: one a delete could
/// not remove, or left by a crash between a delete's metadata and its
/// directories. A new partition must never take over its records.
fn clear_leftover(dir: &Path) -> Result<()> {
    if remove_dir(dir).map_err(io_err(dir))? {
        tracing::warn!(dir = %dir.display(), "removed a partition directory left by a deleted topic");
    }
    Ok(())
}

fn remove_partition_dir(dir: &Path) {
    if let Err(e) = remove_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a partition directory");
    }
}

/// Removes `dir` and all it holds; `false` when there was none.
fn remove_dir(dir: &Path) -> std::io::Result<bool> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

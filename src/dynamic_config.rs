//! Dynamic configs: broker settings changed at run time (IncrementalAlterConfigs
//! or AlterConfigs on the BROKER resource, for this broker or as the cluster
//! default) and per-group settings of the consumer group protocol (the GROUP
//! resource). They are stored in `<data_dir>/dynamic-configs.toml` and
//! survive restarts.
//!
//! Broker settings Sluice acts on are the broker-level defaults of topic
//! settings (`log.retention.ms`, `compression.type`, …): a change applies at
//! once to every topic that does not override it. A few more of Kafka's
//! dynamic broker settings are checked and kept ([`KEPT`]). Group settings
//! are `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::storage::LogConfig;
use crate::topic_config::{self, ConfigType};
use crate::util::Durable;

const FILE: &str = "dynamic-configs.toml";

/// Kafka's dynamic broker settings that Sluice checks and keeps but does
/// not act on, with their type and Kafka's default.
pub(crate) const KEPT: &[(&str, ConfigType, &str)] = &[
    ("background.threads", ConfigType::Int, "10"),
    ("num.io.threads", ConfigType::Int, "8"),
    ("num.network.threads", ConfigType::Int, "3"),
    ("num.replica.fetchers", ConfigType::Int, "1"),
    ("max.connections", ConfigType::Int, "2147483647"),
    ("max.connections.per.ip", ConfigType::Int, "2147483647"),
    (
        "log.cleaner.io.max.bytes.per.second",
        ConfigType::Double,
        "1.7976931348623157E308",
    ),
    (
        "sasl.kerberos.min.time.before.relogin",
        ConfigType::Long,
        "60000",
    ),
];

/// The group settings of the consumer group protocol.
pub(crate) const GROUP_SESSION_TIMEOUT: &str = "consumer.session.timeout.ms";
pub(crate) const GROUP_HEARTBEAT_INTERVAL: &str = "consumer.heartbeat.interval.ms";

/// Where a broker setting's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Set for this broker (resource name = its node id).
    Broker,
    /// Set as the cluster-wide default (resource name "").
    Cluster,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    broker: BTreeMap<String, String>,
    #[serde(default)]
    cluster: BTreeMap<String, String>,
    #[serde(default)]
    group: BTreeMap<String, BTreeMap<String, String>>,
    /// Broker setting changes this process made: orders the defaults they
    /// give, which two changes at once may apply in either order.
    #[serde(skip)]
    generation: u64,
}

/// Topic defaults, with the generation of the broker-config changes they
/// come from (see [`Catalog::set_defaults`]).
///
/// [`Catalog::set_defaults`]: crate::catalog::Catalog::set_defaults
pub(crate) type Versioned = (u64, LogConfig);

/// The dynamic configs of the broker.
#[derive(Debug)]
pub(crate) struct DynamicConfigs {
    path: PathBuf,
    /// The `[log]` defaults of the configuration file, under the dynamic ones.
    static_log: LogConfig,
    stored: Mutex<Stored>,
}

impl DynamicConfigs {
    /// Reads `<data_dir>/dynamic-configs.toml` (none yet: nothing dynamic).
    pub(crate) fn open(data_dir: &Path, static_log: LogConfig) -> Result<DynamicConfigs> {
        let path = data_dir.join(FILE);
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(DynamicConfigs {
            path,
            static_log,
            stored: Mutex::new(stored),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Stored> {
        self.stored.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The topic defaults in force: the file's `[log]` table under the
    /// cluster's dynamic defaults under this broker's.
    pub(crate) fn log_defaults(&self) -> LogConfig {
        let stored = self.lock();
        effective(&self.static_log, &stored).unwrap_or_else(|_| self.static_log.clone())
    }

    /// A broker setting's dynamic value and scope, if it has one.
    pub(crate) fn broker_value(&self, name: &str) -> Option<(String, Scope)> {
        let stored = self.lock();
        if let Some(v) = stored.broker.get(name) {
            return Some((v.clone(), Scope::Broker));
        }
        stored
            .cluster
            .get(name)
            .map(|v| (v.clone(), Scope::Cluster))
    }

    /// Changes the dynamic settings of `scope` with `change`, which is
    /// given the topic defaults the scope's settings lie over (for APPEND
    /// and SUBTRACT, read under the same lock as the change); checks every
    /// name and value; with `validate_only` nothing changes. Returns the
    /// topic defaults now in force, with their generation ([`Versioned`]),
    /// and whether the change is durable (see
    /// [`Durable`]: it is made either way). The outer error is a failed
    /// write (nothing changed), the inner one an invalid change.
    pub(crate) fn alter_broker(
        &self,
        scope: Scope,
        change: impl FnOnce(
            &mut BTreeMap<String, String>,
            &LogConfig,
        ) -> std::result::Result<(), String>,
        validate_only: bool,
    ) -> Result<std::result::Result<(Versioned, Durable), String>> {
        let mut stored = self.lock();
        // What the scope's own settings lie over: the cluster's over the
        // file's; a broker's over both.
        let under = match scope {
            Scope::Broker => stored.clone(),
            Scope::Cluster => Stored {
                cluster: stored.cluster.clone(),
                ..Stored::default()
            },
        };
        let in_force =
            effective(&self.static_log, &under).unwrap_or_else(|_| self.static_log.clone());
        let mut next = stored.clone();
        let map = match scope {
            Scope::Broker => &mut next.broker,
            Scope::Cluster => &mut next.cluster,
        };
        let checked = change(map, &in_force)
            .and_then(|()| {
                map.iter()
                    .try_for_each(|(name, value)| check_broker(name, value))
            })
            .and_then(|()| effective(&self.static_log, &next));
        let defaults = match checked {
            Ok(defaults) => defaults,
            Err(invalid) => return Ok(Err(invalid)),
        };
        if validate_only || next == *stored {
            return Ok(Ok(((stored.generation, defaults), Ok(()))));
        }
        let durable = self.write(&next)?;
        next.generation += 1;
        *stored = next;
        Ok(Ok(((stored.generation, defaults), durable)))
    }

    /// The settings set on group `group`.
    pub(crate) fn group(&self, group: &str) -> BTreeMap<String, String> {
        self.lock().group.get(group).cloned().unwrap_or_default()
    }

    /// Changes group `group`'s settings with `change`; `check` judges each
    /// name and value. Errors as [`DynamicConfigs::alter_broker`]'s.
    pub(crate) fn alter_group(
        &self,
        group: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> std::result::Result<(), String>,
        check: impl Fn(&str, &str) -> std::result::Result<(), String>,
        validate_only: bool,
    ) -> Result<std::result::Result<Durable, String>> {
        let mut stored = self.lock();
        let mut next = stored.clone();
        let map = next.group.entry(group.to_string()).or_default();
        let checked =
            change(map).and_then(|()| map.iter().try_for_each(|(name, value)| check(name, value)));
        if let Err(invalid) = checked {
            return Ok(Err(invalid));
        }
        if map.is_empty() {
            next.group.remove(group);
        }
        if validate_only || next == *stored {
            return Ok(Ok(Ok(())));
        }
        let durable = self.write(&next)?;
        *stored = next;
        Ok(Ok(durable))
    }

    fn write(&self, stored: &Stored) -> Result<Durable> {
        let text = toml::to_string(stored).map_err(|e| Error::Config(e.to_string()))?;
        crate::util::write_atomically(&self.path, text.as_bytes())
    }
}

/// Whether `name` is a broker setting Sluice accepts at run time.
pub(crate) fn is_dynamic(name: &str) -> bool {
    topic_row(name).is_some() || KEPT.iter().any(|(n, ..)| *n == name)
}

/// The topic setting whose broker-level default `name` is.
fn topic_row(name: &str) -> Option<&'static topic_config::TopicSetting> {
    topic_config::SETTINGS
        .iter()
        .find(|row| row.broker_name == Some(name))
}

fn check_broker(name: &str, value: &str) -> std::result::Result<(), String> {
    if topic_row(name).is_some() {
        return Ok(());
    }
    let Some((_, kind, _)) = KEPT.iter().find(|(n, ..)| *n == name) else {
        return Err(format!(
            "{name} is not a dynamic broker config Sluice supports"
        ));
    };
    let valid = match kind {
        ConfigType::Int => value.parse::<i32>().is_ok_and(|v| v >= 0),
        ConfigType::Long => value.parse::<i64>().is_ok_and(|v| v >= 0),
        ConfigType::Double => value.parse::<f64>().is_ok_and(|v| v >= 0.0),
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(format!("invalid value {value:?} for {name}"))
    }
}

/// The topic defaults with the dynamic broker-level ones applied.
fn effective(static_log: &LogConfig, stored: &Stored) -> std::result::Result<LogConfig, String> {
    let mut as_topic = BTreeMap::new();
    for (name, value) in stored.cluster.iter().chain(&stored.broker) {
        if let Some(row) = topic_row(name) {
            as_topic.insert(row.name.to_string(), value.clone());
        }
    }
    topic_config::apply(static_log, &as_topic).map_err(|e| {
        // Name the broker setting, not the topic one it stands for.
        topic_config::SETTINGS
            .iter()
            .filter_map(|r| Some((r.name, r.broker_name?)))
            .fold(e, |msg, (topic, broker)| {
                msg.replace(&format!("\"{topic}\""), &format!("\"{broker}\""))
            })
    })
}

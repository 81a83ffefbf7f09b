//! The BROKER and GROUP resources of the config APIs: Kafka's dynamic broker
//! configs (for this broker, or as the cluster default) and the consumer
//! group protocol's group configs, over [`crate::dynamic_config`].

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::{DEFAULT_CONFIG, Entry, STATIC_BROKER_CONFIG};
use crate::config::Config;
use crate::dynamic_config::{
    GROUP_HEARTBEAT_INTERVAL, GROUP_SESSION_TIMEOUT, KEPT, Scope, is_dynamic,
};
use crate::error::{Error, Result};
use crate::handler::Context;
use crate::storage::LogConfig;
use crate::topic_config::{self, ConfigType};

/// Kafka's ConfigSource values of dynamic settings.
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const GROUP_CONFIG: i8 = 8;

/// Which broker settings a BROKER resource name addresses: "" is the
/// cluster default, this broker's node id the broker itself.
pub(super) fn scope(ctx: &Context, name: &str) -> Result<Scope> {
    if name.is_empty() {
        Ok(Scope::Cluster)
    } else if name == ctx.node.to_string() {
        Ok(Scope::Broker)
    } else {
        Err(Error::api(
            ResponseError::InvalidRequest,
            format!("unexpected broker id {name:?}: this is broker {}", ctx.node),
        ))
    }
}

fn source(scope: Scope) -> i8 {
    match scope {
        Scope::Broker => DYNAMIC_BROKER_CONFIG,
        Scope::Cluster => DYNAMIC_DEFAULT_BROKER_CONFIG,
    }
}

/// DescribeConfigs of the broker: fixed settings (read-only), the topic
/// defaults and the other dynamic settings, each with where its value comes from.
pub(super) fn broker_entries(ctx: &Context, name: &str) -> Result<Vec<Entry>> {
    scope(ctx, name)?;
    let mut entries = fixed_entries(&ctx.config);
    for row in topic_config::SETTINGS {
        let Some(name) = row.broker_name else {
            continue;
        };
        if entries.iter().any(|e| e.name == name) {
            continue;
        }
        let fallback = (row.value(&ctx.config.log), STATIC_BROKER_CONFIG);
        entries.push(dynamic_entry(ctx, name, fallback, row.kind));
    }
    for &(name, kind, default) in KEPT {
        let fallback = (default.to_string(), DEFAULT_CONFIG);
        entries.push(dynamic_entry(ctx, name, fallback, kind));
    }
    Ok(entries)
}

/// The settings only the configuration file sets.
fn fixed_entries(c: &Config) -> Vec<Entry> {
    let fixed = [
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            ConfigType::Boolean,
        ),
        (
            "num.partitions",
            c.num_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "fetch.max.bytes",
            c.fetch_max_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "log.dirs",
            c.data_dir.display().to_string(),
            ConfigType::String,
        ),
    ];
    fixed
        .into_iter()
        .map(|(name, value, kind)| Entry {
            name,
            synonyms: vec![(name, value.clone(), STATIC_BROKER_CONFIG)],
            value,
            source: STATIC_BROKER_CONFIG,
            read_only: true,
            kind,
            doc: None,
        })
        .collect()
}

/// A setting AlterConfigs may change: its dynamic value if one is set,
/// else `fallback` (a value and its source), which is listed as a synonym.
fn dynamic_entry(
    ctx: &Context,
    name: &'static str,
    (fallback, fallback_source): (String, i8),
    kind: ConfigType,
) -> Entry {
    let mut synonyms = Vec::new();
    let (value, source) = match ctx.dynamic.broker_value(name) {
        Some((v, s)) => {
            synonyms.push((name, v.clone(), source(s)));
            (v, source(s))
        }
        None => (fallback.clone(), fallback_source),
    };
    synonyms.push((name, fallback, fallback_source));
    Entry {
        name,
        value,
        source,
        read_only: false,
        kind,
        doc: None,
        synonyms,
    }
}

/// Changes dynamic broker settings (`change` is given the value each list
/// setting has under the scope's own, read with the change); the topic
/// defaults follow at once.
pub(super) fn alter_broker(
    ctx: &Context,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>, &dyn Fn(&str) -> Option<String>) -> Result<()>,
) -> Result<()> {
    let scope = scope(ctx, name)?;
    let mut failed = None;
    let (defaults, durable) = ctx
        .dynamic
        .alter_broker(
            scope,
            |map, in_force| {
                change(map, &|n| list_value(in_force, n)).map_err(|e| {
                    let message = e.message();
                    failed = Some(e);
                    message
                })?;
                match map.keys().find(|k| !is_dynamic(k)) {
                    Some(k) => Err(format!(
                        "{k} is not a dynamic broker config Sluice supports"
                    )),
                    None => Ok(()),
                }
            },
            validate_only,
        )?
        .map_err(|m| {
            failed
                .take()
                .unwrap_or_else(|| Error::api(ResponseError::InvalidConfig, m))
        })?;
    if !validate_only {
        // Another change may have been applied since: the catalog keeps
        // the later of the two.
        ctx.catalog.set_defaults(defaults);
    }
    durable
}

/// The value of list broker setting `name` under `defaults`, for APPEND
/// and SUBTRACT.
fn list_value(defaults: &LogConfig, name: &str) -> Option<String> {
    let row = topic_config::SETTINGS
        .iter()
        .find(|r| r.broker_name == Some(name))?;
    (row.kind == ConfigType::List).then(|| row.value(defaults))
}

/// DescribeConfigs of a group: its consumer group protocol settings.
pub(super) fn group_entries(ctx: &Context, group: &str) -> Vec<Entry> {
    let set = ctx.dynamic.group(group);
    let g = &ctx.config.group;
    [
        (
            GROUP_SESSION_TIMEOUT,
            g.consumer_session_timeout_ms,
            "group.consumer.session.timeout.ms",
        ),
        (
            GROUP_HEARTBEAT_INTERVAL,
            g.consumer_heartbeat_interval_ms,
            "group.consumer.heartbeat.interval.ms",
        ),
    ]
    .into_iter()
    .map(|(name, default, broker_name)| {
        let mut synonyms = Vec::new();
        let (value, source) = match set.get(name) {
            Some(v) => {
                synonyms.push((name, v.clone(), GROUP_CONFIG));
                (v.clone(), GROUP_CONFIG)
            }
            None => (default.to_string(), DEFAULT_CONFIG),
        };
        synonyms.push((broker_name, default.to_string(), DEFAULT_CONFIG));
        Entry {
            name,
            value,
            source,
            read_only: false,
            kind: ConfigType::Int,
            doc: None,
            synonyms,
        }
    })
    .collect()
}

/// Changes a group's settings, checked against the broker's bounds.
pub(super) fn alter_group(
    ctx: &Context,
    group: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<()>,
) -> Result<()> {
    if group.is_empty() {
        return Err(Error::api(
            ResponseError::InvalidRequest,
            "the group name is empty",
        ));
    }
    let g = ctx.config.group.clone();
    let check = |name: &str, value: &str| {
        let v: i32 = value
            .parse()
            .map_err(|_| format!("invalid value {value:?} for {name}: not an integer"))?;
        let (min, max) = match name {
            GROUP_SESSION_TIMEOUT => (
                g.consumer_min_session_timeout_ms,
                g.consumer_max_session_timeout_ms,
            ),
            GROUP_HEARTBEAT_INTERVAL => (1, g.consumer_max_session_timeout_ms - 1),
            other => return Err(format!("{other} is not a group config Sluice supports")),
        };
        if (min..=max).contains(&v) {
            Ok(())
        } else {
            Err(format!("{name} must be in [{min}, {max}], got {v}"))
        }
    };
    let mut failed = None;
    ctx.dynamic
        .alter_group(
            group,
            |map| {
                change(map).map_err(|e| {
                    let message = e.message();
                    failed = Some(e);
                    message
                })
            },
            check,
            validate_only,
        )?
        .map_err(|m| {
            failed
                .take()
                .unwrap_or_else(|| Error::api(ResponseError::InvalidConfig, m))
        })?
}

//! The topic settings Sluice honours: one row of [`SETTINGS`] each.
//!
//! A row holds everything about a setting — Kafka's topic and broker names,
//! the key of its default under `[log]` in the TOML file, its type, how its
//! text is parsed onto a [`LogConfig`] and rendered back — so that applying
//! overrides, DescribeConfigs, the broker defaults, `config/sluice.toml` and
//! the README all derive from the same table. A new setting is one row.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::storage::{CleanupPolicy, LogConfig, TimestampType};

/// Kafka's `ConfigType` of a setting, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// One topic setting.
#[derive(Debug)]
pub(crate) struct TopicSetting {
    /// Kafka's topic-level name (`retention.ms`).
    pub name: &'static str,
    /// Kafka's broker-level name of the default (`log.retention.ms`).
    pub broker_name: &'static str,
    /// The key of the default under `[log]` in the TOML file.
    pub toml_key: &'static str,
    /// The type DescribeConfigs reports.
    pub kind: ConfigType,
    /// Parses Kafka's text form onto the config, checking its range.
    set: fn(&mut LogConfig, &str) -> Result<(), String>,
    /// Renders the config's value in Kafka's text form.
    get: fn(&LogConfig) -> String,
}

impl TopicSetting {
    /// The value of this setting in `config`, as Kafka writes it.
    pub(crate) fn value(&self, config: &LogConfig) -> String {
        (self.get)(config)
    }
}

/// A numeric setting stored in the `LogConfig` field of the same name as its TOML key.
macro_rules! number {
    ($name:literal, $broker:literal, $field:ident, $kind:ident, min $min:expr) => {
        TopicSetting {
            name: $name,
            broker_name: $broker,
            toml_key: stringify!($field),
            kind: ConfigType::$kind,
            set: |c, v| {
                c.$field = parse_num($name, v, $min)?;
                Ok(())
            },
            get: |c| c.$field.to_string(),
        }
    };
}

/// Every topic-level setting accepted by CreateTopics and the AlterConfigs APIs.
pub(crate) const SETTINGS: &[TopicSetting] = &[
    TopicSetting {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        toml_key: "cleanup_policy",
        kind: ConfigType::List,
        set: |c, v| {
            c.cleanup_policy = CleanupPolicy::parse(v)?;
            Ok(())
        },
        get: |c| c.cleanup_policy.as_str().to_string(),
    },
    number!("max.message.bytes", "message.max.bytes", max_message_bytes, Int, min 0),
    TopicSetting {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        toml_key: "message_timestamp_type",
        kind: ConfigType::String,
        set: |c, v| {
            c.message_timestamp_type = TimestampType::parse(v)?;
            Ok(())
        },
        get: |c| c.message_timestamp_type.as_str().to_string(),
    },
    number!(
        "retention.bytes",
        "log.retention.bytes",
        retention_bytes,
        Long,
        min - 1
    ),
    number!(
        "retention.ms",
        "log.retention.ms",
        retention_ms,
        Long,
        min - 1
    ),
    number!("segment.bytes", "log.segment.bytes", segment_bytes, Int, min 14),
    number!("segment.index.bytes", "log.index.size.max.bytes", segment_index_bytes, Int, min 4),
    number!("segment.ms", "log.roll.ms", segment_ms, Long, min 1),
    number!("index.interval.bytes", "log.index.interval.bytes", index_interval_bytes, Int, min 0),
];

/// The row of the topic-level setting `name`.
pub(crate) fn setting(name: &str) -> Option<&'static TopicSetting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Applies `overrides` onto `defaults`, refusing unknown keys and bad values.
pub(crate) fn apply(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    let mut cfg = defaults.clone();
    for (key, value) in overrides {
        let row =
            setting(key).ok_or_else(|| format!("unknown or unsupported topic config {key:?}"))?;
        (row.set)(&mut cfg, value)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Every setting for DescribeConfigs: the value set on the topic, else the
/// broker default from `defaults`.
pub(crate) fn describe(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    SETTINGS
        .iter()
        .map(|row| match overrides.get(row.name) {
            Some(value) => (row.name, value.clone()),
            None => (row.name, row.value(defaults)),
        })
        .collect()
}

/// Reads the `[log]` table of the TOML file: each key is a row's `toml_key`,
/// its value what Kafka's text form would be (numbers as numbers).
pub(crate) fn deserialize_defaults<'de, D>(deserializer: D) -> Result<LogConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let table = BTreeMap::<String, toml::Value>::deserialize(deserializer)?;
    let mut cfg = LogConfig::default();
    for (key, value) in table {
        let row = SETTINGS
            .iter()
            .find(|s| s.toml_key == key)
            .ok_or_else(|| D::Error::custom(format!("unknown [log] setting {key:?}")))?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => return Err(D::Error::custom(format!("[log] {key}: unexpected {other}"))),
        };
        (row.set)(&mut cfg, &text).map_err(D::Error::custom)?;
    }
    Ok(cfg)
}

fn parse_num<T>(key: &str, value: &str, min: i64) -> Result<T, String>
where
    T: TryFrom<i64>,
{
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{key} = {value:?}: not a number"))?;
    if n < min {
        return Err(format!("{key} = {n}: must be >= {min}"));
    }
    T::try_from(n).map_err(|_| format!("{key} = {n}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_apply_and_bad_ones_are_refused() {
        let d = LogConfig::default();
        let cfg = apply(
            &d,
            &map(&[("retention.ms", "1000"), ("segment.bytes", "4096")]),
        )
        .unwrap();
        assert_eq!((cfg.retention_ms, cfg.segment_bytes), (1000, 4096));
        assert!(apply(&d, &map(&[("min.insync.replicas", "2")])).is_err());
        assert!(apply(&d, &map(&[("retention.ms", "soon")])).is_err());
        assert!(apply(&d, &map(&[("cleanup.policy", "shred")])).is_err());
    }

    #[test]
    fn cleanup_policy_is_a_real_setting() {
        let d = LogConfig::default();
        for (text, policy) in [
            ("delete", CleanupPolicy::Delete),
            ("compact", CleanupPolicy::Compact),
            ("compact,delete", CleanupPolicy::CompactDelete),
            ("delete, compact", CleanupPolicy::CompactDelete),
        ] {
            let cfg = apply(&d, &map(&[("cleanup.policy", text)])).unwrap();
            assert_eq!(cfg.cleanup_policy, policy, "{text}");
        }
        let set = map(&[("cleanup.policy", "compact"), ("retention.ms", "1000")]);
        let described = describe(&d, &set);
        assert!(described.contains(&("cleanup.policy", "compact".to_string())));
        assert!(described.contains(&("retention.ms", "1000".to_string())));
        assert!(describe(&d, &BTreeMap::new()).contains(&("cleanup.policy", "delete".into())));
    }

    #[test]
    fn every_row_round_trips_its_default_and_is_documented() {
        let d = LogConfig::default();
        let toml = include_str!("../config/sluice.toml");
        let readme = include_str!("../README.md");
        for row in SETTINGS {
            let mut cfg = d.clone();
            (row.set)(&mut cfg, &row.value(&d)).unwrap();
            assert_eq!(cfg, d, "{} does not parse its own rendering", row.name);
            assert!(
                toml.contains(&format!("\n{} = ", row.toml_key)),
                "config/sluice.toml lacks [log] {}",
                row.toml_key
            );
            assert!(
                readme.contains(&format!("`{}`", row.name)),
                "README lacks {}",
                row.name
            );
        }
    }
}

//! Kafka's topic settings: one row of [`SETTINGS`] each, all of Kafka 4.0's.
//!
//! A row holds everything about a setting — Kafka's topic and broker names,
//! the key of its default under `[log]` in the TOML file, its type, its
//! documentation line, whether Sluice acts on it, how its text is checked and
//! parsed onto a [`LogConfig`] and rendered back — so that applying
//! overrides, DescribeConfigs, the broker defaults, `config/sluice.toml` and
//! the README all derive from the same table. A new setting is one row.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::storage::LogConfig;

mod table;

pub(crate) use table::SETTINGS;

/// Kafka's `ConfigType` of a setting, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One topic setting.
#[derive(Debug)]
pub(crate) struct TopicSetting {
    /// Kafka's topic-level name (`retention.ms`).
    pub name: &'static str,
    /// Kafka's broker-level name of the default (`log.retention.ms`), if any.
    pub broker_name: Option<&'static str>,
    /// The key of the default under `[log]` in the TOML file, for the
    /// settings Sluice acts on; the others keep Kafka's default.
    pub toml_key: Option<&'static str>,
    /// The type DescribeConfigs reports.
    pub kind: ConfigType,
    /// One line for DescribeConfigs' documentation field.
    pub doc: &'static str,
    /// True when Sluice acts on the value; false when it only checks,
    /// stores and reports it (a single broker without tiered storage,
    /// replication or a cleaner has nothing to do with it).
    pub acted_on: bool,
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

/// How the value of a setting Sluice only keeps is checked, as Kafka does.
#[derive(Debug, Clone, Copy)]
enum Valid {
    AtLeast(i64),
    Range(i64, i64),
    /// A range, or one special value.
    RangeOr(i64, i64, i64),
    Bool,
    /// A double in [0, 1].
    Ratio,
    /// `*` or `partition:broker` pairs, comma-separated (throttled replicas).
    Replicas,
    /// Only this value: the feature does not exist in Sluice.
    Only(&'static str),
}

impl Valid {
    fn check(self, name: &str, value: &str) -> Result<(), String> {
        let v = value.trim();
        let bad = |why: String| Err(format!("{name} = {value:?}: {why}"));
        let number = || {
            v.parse::<i64>()
                .map_err(|_| format!("{name} = {value:?}: not a number"))
        };
        match self {
            Valid::AtLeast(min) if number()? < min => bad(format!("must be >= {min}")),
            Valid::Range(lo, hi) if !(lo..=hi).contains(&number()?) => {
                bad(format!("must be in [{lo}, {hi}]"))
            }
            Valid::RangeOr(lo, hi, or) => {
                let n = number()?;
                if (lo..=hi).contains(&n) || n == or {
                    Ok(())
                } else {
                    bad(format!("must be in [{lo}, {hi}] or {or}"))
                }
            }
            Valid::Bool if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
                bad("must be true or false".into())
            }
            Valid::Ratio => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(()),
                _ => bad("must be a number in [0, 1]".into()),
            },
            Valid::Replicas if v != "*" && !v.is_empty() && !v.split(',').all(replica_pair) => {
                bad("must be '*' or partition:broker pairs separated by commas".into())
            }
            Valid::Only(only) if !v.eq_ignore_ascii_case(only) => {
                bad(format!("Sluice supports only {only}"))
            }
            _ => Ok(()),
        }
    }
}

fn replica_pair(pair: &str) -> bool {
    pair.trim()
        .split_once(':')
        .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
}

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
            .find(|s| s.toml_key == Some(key.as_str()))
            .ok_or_else(|| D::Error::custom(format!("unknown [log] setting {key:?}")))?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => return Err(D::Error::custom(format!("[log] {key}: unexpected {other}"))),
        };
        (row.set)(&mut cfg, &text).map_err(D::Error::custom)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests;

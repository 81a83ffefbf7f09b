//! The topic settings Sluice honours, by their Kafka names: parse overrides
//! onto the broker defaults, and list them for DescribeConfigs.

use std::collections::BTreeMap;

use crate::config::parse_timestamp_type;
use crate::storage::{LogConfig, TimestampType};

/// Every topic-level key accepted by CreateTopics and the AlterConfigs APIs.
pub const KEYS: &[&str] = &[
    "cleanup.policy",
    "max.message.bytes",
    "message.timestamp.type",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
    "index.interval.bytes",
];

/// Applies `overrides` onto `defaults`, refusing unknown keys and bad values.
pub fn apply(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    let mut cfg = defaults.clone();
    let mut compact = false;
    for (key, value) in overrides {
        match key.as_str() {
            "cleanup.policy" => compact = parse_cleanup_policy(value)?,
            "max.message.bytes" => cfg.max_message_bytes = parse_num(key, value, 0)?,
            "message.timestamp.type" => cfg.message_timestamp_type = parse_timestamp_type(value)?,
            "retention.bytes" => cfg.retention_bytes = parse_num(key, value, -1)?,
            "retention.ms" => cfg.retention_ms = parse_num(key, value, -1)?,
            "segment.bytes" => cfg.segment_bytes = parse_num(key, value, 14)?,
            "segment.index.bytes" => cfg.segment_index_bytes = parse_num(key, value, 4)?,
            "segment.ms" => cfg.segment_ms = parse_num(key, value, 1)?,
            "index.interval.bytes" => cfg.index_interval_bytes = parse_num(key, value, 0)?,
            other => return Err(format!("unknown or unsupported topic config {other:?}")),
        }
    }
    if compact {
        // Compaction is not implemented: a compacted topic keeps every record,
        // which is what a consumer of a not-yet-compacted Kafka topic also sees.
        cfg.retention_ms = -1;
        cfg.retention_bytes = -1;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn parse_cleanup_policy(value: &str) -> Result<bool, String> {
    let mut compact = false;
    for part in value.split(',').map(str::trim) {
        match part {
            "delete" => {}
            "compact" => compact = true,
            other => {
                return Err(format!(
                    "cleanup.policy {other:?}: expected delete or compact"
                ));
            }
        }
    }
    Ok(compact && !value.contains("delete"))
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

/// Every key in [`KEYS`] for DescribeConfigs: the value set on the topic,
/// else the broker default from `defaults`, as Kafka describes them.
pub fn describe(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    let cfg = defaults;
    KEYS.iter()
        .map(|&key| {
            if let Some(value) = overrides.get(key) {
                return (key, value.clone());
            }
            let value = match key {
                "cleanup.policy" => overrides
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| "delete".into()),
                "max.message.bytes" => cfg.max_message_bytes.to_string(),
                "message.timestamp.type" => match cfg.message_timestamp_type {
                    TimestampType::CreateTime => "CreateTime".into(),
                    TimestampType::LogAppendTime => "LogAppendTime".into(),
                },
                "retention.bytes" => cfg.retention_bytes.to_string(),
                "retention.ms" => cfg.retention_ms.to_string(),
                "segment.bytes" => cfg.segment_bytes.to_string(),
                "segment.index.bytes" => cfg.segment_index_bytes.to_string(),
                "segment.ms" => cfg.segment_ms.to_string(),
                _ => cfg.index_interval_bytes.to_string(),
            };
            (key, value)
        })
        .collect()
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
    fn compact_keeps_everything() {
        let cfg = apply(
            &LogConfig::default(),
            &map(&[("cleanup.policy", "compact")]),
        )
        .unwrap();
        assert_eq!((cfg.retention_ms, cfg.retention_bytes), (-1, -1));
        let set = map(&[("cleanup.policy", "compact"), ("retention.ms", "1000")]);
        let described = describe(&LogConfig::default(), &set);
        assert!(described.contains(&("cleanup.policy", "compact".to_string())));
        assert!(described.contains(&("retention.ms", "1000".to_string())));
    }
}

//! The table of Kafka 4.0's topic settings: one [`TopicSetting`] row each.

use super::{ConfigType, TopicSetting, Valid};
use crate::storage::{CleanupPolicy, CompressionType, TimestampType};

/// A numeric setting Sluice acts on, stored in the `LogConfig` field of the
/// same name as its TOML key.
macro_rules! number {
    ($name:literal, $broker:literal, $field:ident, $kind:ident, min $min:expr, $doc:literal) => {
        TopicSetting {
            name: $name,
            broker_name: Some($broker),
            toml_key: Some(stringify!($field)),
            kind: ConfigType::$kind,
            doc: $doc,
            acted_on: true,
            set: |c, v| {
                c.$field = parse_num($name, v, $min)?;
                Ok(())
            },
            get: |c| c.$field.to_string(),
        }
    };
}

/// A setting Sluice checks, stores and reports with Kafka's default.
macro_rules! kept {
    ($name:literal, $broker:expr, $kind:ident, $default:literal, $valid:expr, $doc:literal) => {
        TopicSetting {
            name: $name,
            broker_name: $broker,
            toml_key: None,
            kind: ConfigType::$kind,
            doc: $doc,
            acted_on: false,
            set: |_, v| $valid.check($name, v),
            get: |_| $default.to_string(),
        }
    };
}

/// Every topic-level setting of Kafka 4.0, accepted by CreateTopics and the
/// AlterConfigs APIs.
pub(crate) const SETTINGS: &[TopicSetting] = &[
    TopicSetting {
        name: "cleanup.policy",
        broker_name: Some("log.cleanup.policy"),
        toml_key: Some("cleanup_policy"),
        kind: ConfigType::List,
        doc: "delete: retention removes old segments; compact: keep the latest record per key (retention then removes nothing).",
        acted_on: true,
        set: |c, v| {
            c.cleanup_policy = CleanupPolicy::parse(v)?;
            Ok(())
        },
        get: |c| c.cleanup_policy.as_str().to_string(),
    },
    kept!(
        "compression.gzip.level",
        Some("compression.gzip.level"),
        Int,
        "-1",
        Valid::RangeOr(1, 9, -1),
        "gzip level used when the topic recompresses to gzip."
    ),
    kept!(
        "compression.lz4.level",
        Some("compression.lz4.level"),
        Int,
        "9",
        Valid::Range(1, 17),
        "lz4 level used when the topic recompresses to lz4."
    ),
    TopicSetting {
        name: "compression.type",
        broker_name: Some("compression.type"),
        toml_key: Some("compression_type"),
        kind: ConfigType::String,
        doc: "The codec batches are stored with: producer keeps the producer's; any other is applied on append.",
        acted_on: true,
        set: |c, v| {
            c.compression_type = CompressionType::parse(v)?;
            Ok(())
        },
        get: |c| c.compression_type.as_str().to_string(),
    },
    kept!(
        "compression.zstd.level",
        Some("compression.zstd.level"),
        Int,
        "3",
        Valid::Range(-131_072, 22),
        "zstd level used when the topic recompresses to zstd."
    ),
    number!("delete.retention.ms", "log.cleaner.delete.retention.ms", delete_retention_ms, Long, min 0, "How long a compacted topic keeps tombstones and transaction markers after the cleaning that first kept them."),
    kept!(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        Long,
        "60000",
        Valid::AtLeast(0),
        "Delay before a deleted segment's files are removed."
    ),
    kept!(
        "flush.messages",
        Some("log.flush.interval.messages"),
        Long,
        "9223372036854775807",
        Valid::AtLeast(1),
        "fsync after this many messages (Sluice: see the broker's flush setting)."
    ),
    kept!(
        "flush.ms",
        Some("log.flush.interval.ms"),
        Long,
        "9223372036854775807",
        Valid::AtLeast(0),
        "fsync after this many ms (Sluice: see the broker's flush setting)."
    ),
    kept!(
        "follower.replication.throttled.replicas",
        None,
        List,
        "",
        Valid::Replicas,
        "Replicas throttled on the follower side."
    ),
    number!("index.interval.bytes", "log.index.interval.bytes", index_interval_bytes, Int, min 0, "Log bytes between two offset index entries."),
    kept!(
        "leader.replication.throttled.replicas",
        None,
        List,
        "",
        Valid::Replicas,
        "Replicas throttled on the leader side."
    ),
    kept!(
        "local.retention.bytes",
        Some("log.local.retention.bytes"),
        Long,
        "-2",
        Valid::AtLeast(-2),
        "Local size limit under tiered storage (-2: retention.bytes)."
    ),
    kept!(
        "local.retention.ms",
        Some("log.local.retention.ms"),
        Long,
        "-2",
        Valid::AtLeast(-2),
        "Local time limit under tiered storage (-2: retention.ms)."
    ),
    number!("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", max_compaction_lag_ms, Long, min 1, "Longest a record stays uncompacted."),
    number!("max.message.bytes", "message.max.bytes", max_message_bytes, Int, min 0, "Largest record batch accepted."),
    kept!(
        "message.downconversion.enable",
        Some("log.message.downconversion.enable"),
        Boolean,
        "true",
        Valid::Bool,
        "No effect since Kafka 4.0 (no down-conversion)."
    ),
    number!("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", message_timestamp_after_max_ms, Long, min 0, "How far ahead of the broker's clock a CreateTime timestamp may be."),
    number!("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", message_timestamp_before_max_ms, Long, min 0, "How far behind the broker's clock a CreateTime timestamp may be."),
    TopicSetting {
        name: "message.timestamp.type",
        broker_name: Some("log.message.timestamp.type"),
        toml_key: Some("message_timestamp_type"),
        kind: ConfigType::String,
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock.",
        acted_on: true,
        set: |c, v| {
            c.message_timestamp_type = TimestampType::parse(v)?;
            Ok(())
        },
        get: |c| c.message_timestamp_type.as_str().to_string(),
    },
    TopicSetting {
        name: "min.cleanable.dirty.ratio",
        broker_name: Some("log.cleaner.min.cleanable.ratio"),
        toml_key: Some("min_cleanable_dirty_ratio"),
        kind: ConfigType::Double,
        doc: "Share of uncleaned log that triggers compaction.",
        acted_on: true,
        set: |c, v| {
            Valid::Ratio.check("min.cleanable.dirty.ratio", v)?;
            c.min_cleanable_dirty_ratio = v
                .trim()
                .parse()
                .map_err(|_| format!("min.cleanable.dirty.ratio = {v:?}: not a number"))?;
            Ok(())
        },
        get: |c| c.min_cleanable_dirty_ratio.to_string(),
    },
    number!("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", min_compaction_lag_ms, Long, min 0, "Shortest time a record stays uncompacted."),
    number!("min.insync.replicas", "min.insync.replicas", min_insync_replicas, Int, min 1, "In-sync replicas an acks=all produce needs; a single broker has one."),
    kept!(
        "preallocate",
        Some("log.preallocate"),
        Boolean,
        "false",
        Valid::Bool,
        "Preallocate new segment files."
    ),
    kept!(
        "remote.log.copy.disable",
        None,
        Boolean,
        "false",
        Valid::Bool,
        "Stop copying segments to tiered storage."
    ),
    kept!(
        "remote.log.delete.on.disable",
        None,
        Boolean,
        "false",
        Valid::Bool,
        "Delete tiered data when tiered storage is turned off."
    ),
    kept!(
        "remote.storage.enable",
        None,
        Boolean,
        "false",
        Valid::Only("false"),
        "Tiered storage (Sluice has none)."
    ),
    number!(
        "retention.bytes",
        "log.retention.bytes",
        retention_bytes,
        Long,
        min - 1,
        "Delete the oldest sealed segments while the partition is larger (-1: no limit)."
    ),
    number!(
        "retention.ms",
        "log.retention.ms",
        retention_ms,
        Long,
        min - 1,
        "Delete sealed segments older than this (-1: keep)."
    ),
    number!("segment.bytes", "log.segment.bytes", segment_bytes, Int, min 14, "Roll to a new segment at this size."),
    number!("segment.index.bytes", "log.index.size.max.bytes", segment_index_bytes, Int, min 4, "Preallocated size of each index file."),
    kept!(
        "segment.jitter.ms",
        Some("log.roll.jitter.ms"),
        Long,
        "0",
        Valid::AtLeast(0),
        "Random jitter subtracted from segment.ms."
    ),
    number!("segment.ms", "log.roll.ms", segment_ms, Long, min 1, "Roll a non-empty segment this long after it was created."),
    kept!(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        Boolean,
        "false",
        Valid::Bool,
        "Elect an out-of-sync replica as a last resort (one broker: no effect)."
    ),
];

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

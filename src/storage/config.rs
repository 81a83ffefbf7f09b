//! Per-partition log settings, mirroring Kafka's topic configs.

/// Default `segment.bytes`: 1 GiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Default `segment.ms` and `retention.ms`: 7 days.
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Default `segment.index.bytes`: 10 MiB.
pub const DEFAULT_SEGMENT_INDEX_BYTES: u32 = 10 * 1024 * 1024;
/// Default `index.interval.bytes`.
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
/// Default `message.timestamp.after.max.ms` (Kafka 4.0's: one hour).
pub(super) const DEFAULT_MESSAGE_TIMESTAMP_AFTER_MAX_MS: i64 = 60 * 60 * 1000;
/// Default `max.message.bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_048_588;

/// Which timestamp a log stores as a batch's max timestamp (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Overwrite the max timestamp with the broker's clock at append.
    LogAppendTime,
}

impl TimestampType {
    /// Parses Kafka's `message.timestamp.type` values.
    pub fn parse(value: &str) -> Result<TimestampType, String> {
        match value {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            other => Err(format!(
                "message.timestamp.type {other:?}: expected CreateTime or LogAppendTime"
            )),
        }
    }

    /// Kafka's name of the value.
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// What happens to old data (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// Retention deletes old segments by age and size.
    #[default]
    Delete,
    /// Keep the latest record per key (the log cleaner); retention deletes
    /// nothing by age or size.
    Compact,
    /// Both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Parses Kafka's list form: `delete`, `compact`, or both, comma-separated.
    pub fn parse(value: &str) -> Result<CleanupPolicy, String> {
        let (mut compact, mut delete) = (false, false);
        for part in value.split(',').map(str::trim) {
            match part {
                "delete" => delete = true,
                "compact" => compact = true,
                other => {
                    return Err(format!(
                        "cleanup.policy {other:?}: expected delete or compact"
                    ));
                }
            }
        }
        Ok(match (compact, delete) {
            (true, true) => CleanupPolicy::CompactDelete,
            (true, false) => CleanupPolicy::Compact,
            _ => CleanupPolicy::Delete,
        })
    }

    /// Kafka's text form.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    /// True when retention deletes old segments.
    pub fn deletes(self) -> bool {
        self != CleanupPolicy::Compact
    }

    /// True when the cleaner keeps only the latest record per key.
    pub fn compacts(self) -> bool {
        self != CleanupPolicy::Delete
    }
}

/// The codec batches are stored with (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// Keep each batch as the producer compressed it.
    #[default]
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    const NAMES: [(CompressionType, &'static str); 6] = [
        (CompressionType::Producer, "producer"),
        (CompressionType::Uncompressed, "uncompressed"),
        (CompressionType::Gzip, "gzip"),
        (CompressionType::Snappy, "snappy"),
        (CompressionType::Lz4, "lz4"),
        (CompressionType::Zstd, "zstd"),
    ];

    /// Parses Kafka's names.
    pub fn parse(value: &str) -> Result<CompressionType, String> {
        Self::NAMES
            .iter()
            .find(|(_, name)| *name == value.trim())
            .map(|(t, _)| *t)
            .ok_or_else(|| {
                format!("compression.type {value:?}: expected uncompressed, zstd, lz4, snappy, gzip or producer")
            })
    }

    /// Kafka's name of the value.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("producer", |(_, name)| name)
    }

    /// The batch codec every stored batch must have, or `None` to keep the producer's.
    pub(crate) fn codec(self) -> Option<i16> {
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(0),
            CompressionType::Gzip => Some(1),
            CompressionType::Snappy => Some(2),
            CompressionType::Lz4 => Some(3),
            CompressionType::Zstd => Some(4),
        }
    }
}

/// Settings of one partition log. Small, `Clone`, validated once by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a non-empty segment this long after it was created.
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each index file.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: log bytes between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete sealed segments older than this; -1 = unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest sealed segments beyond this size; -1 = unlimited.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `message.timestamp.before.max.ms`: under CreateTime, a batch whose
    /// first timestamp is older than the broker's clock by more is refused.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: under CreateTime, a batch whose
    /// max timestamp is ahead of the broker's clock by more is refused.
    pub message_timestamp_after_max_ms: i64,
    /// `min.insync.replicas`: acks=all produce needs this many in-sync
    /// replicas; a single broker has one.
    pub min_insync_replicas: i32,
    /// `compression.type`: batches with another codec are recompressed on append.
    pub compression_type: CompressionType,
    /// `min.cleanable.dirty.ratio`: clean when at least this share of the
    /// cleanable log has not been cleaned yet.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment with records newer than this is not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: clean, whatever the dirty ratio, once the
    /// oldest uncleaned record is older than this.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones and transaction markers
    /// stay after the cleaning that first kept them.
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            segment_index_bytes: DEFAULT_SEGMENT_INDEX_BYTES,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            retention_ms: DEFAULT_SEGMENT_MS,
            retention_bytes: -1,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            message_timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::Delete,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: DEFAULT_MESSAGE_TIMESTAMP_AFTER_MAX_MS,
            min_insync_replicas: 1,
            compression_type: CompressionType::Producer,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}

impl LogConfig {
    /// Refuses a batch whose timestamps are too far from `now_ms` (CreateTime only).
    pub(crate) fn check_timestamps(
        &self,
        first: i64,
        max: i64,
        now_ms: i64,
    ) -> std::result::Result<(), super::Error> {
        let too_old = now_ms.saturating_sub(self.message_timestamp_before_max_ms);
        let too_new = now_ms.saturating_add(self.message_timestamp_after_max_ms);
        let refuse = |timestamp, limit_ms, side| super::Error::InvalidTimestamp {
            timestamp,
            now: now_ms,
            limit_ms,
            side,
        };
        if first >= 0 && first < too_old {
            return Err(refuse(
                first,
                self.message_timestamp_before_max_ms,
                "before",
            ));
        }
        if max > too_new {
            return Err(refuse(max, self.message_timestamp_after_max_ms, "after"));
        }
        Ok(())
    }

    /// Checks the ranges Kafka enforces; the message names the offending setting.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(14..=i32::MAX as u64).contains(&self.segment_bytes) {
            return Err(format!(
                "segment.bytes must be in [14, {}], got {}",
                i32::MAX,
                self.segment_bytes
            ));
        }
        if self.segment_ms < 1 {
            return Err(format!("segment.ms must be >= 1, got {}", self.segment_ms));
        }
        if self.segment_index_bytes < 12 {
            return Err(format!(
                "segment.index.bytes must be >= 12, got {}",
                self.segment_index_bytes
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err("index.interval.bytes must be > 0".to_string());
        }
        if self.retention_ms < -1 {
            return Err(format!(
                "retention.ms must be >= -1, got {}",
                self.retention_ms
            ));
        }
        if self.retention_bytes < -1 {
            return Err(format!(
                "retention.bytes must be >= -1, got {}",
                self.retention_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.segment_index_bytes, 10_485_760);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_out_of_range_settings() {
        let bad = [
            LogConfig {
                segment_bytes: 13,
                ..Default::default()
            },
            LogConfig {
                segment_bytes: 1 << 31,
                ..Default::default()
            },
            LogConfig {
                segment_index_bytes: 11,
                ..Default::default()
            },
            LogConfig {
                index_interval_bytes: 0,
                ..Default::default()
            },
            LogConfig {
                retention_ms: -2,
                ..Default::default()
            },
            LogConfig {
                segment_ms: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}

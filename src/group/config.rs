//! Settings of the group coordinator (the `[group]` table of the configuration file).

use serde::Deserialize;

/// Group coordinator settings. Field comments give Kafka's name for each.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: shortest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: longest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an
    /// empty group waits for more members. Kafka uses 3000; Sluice defaults to 0
    /// because a development broker mostly sees one consumer at a time, and the
    /// delay would hold up every consumer start-up by three seconds.
    pub initial_rebalance_delay_ms: i32,
    /// `offsets.retention.minutes` (in ms): committed offsets of an empty group
    /// are dropped this long after the later of the commit and the group emptying.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`: the longest metadata string of a commit.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.segment.bytes`: segment size of the internal offsets
    /// log (a compacted log: the log cleaner keeps it small).
    pub offsets_segment_bytes: u64,
    /// `group.consumer.session.timeout.ms`: a member of a consumer-protocol
    /// (KIP-848) group that sends no heartbeat for this long is removed.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.min.session.timeout.ms`.
    pub consumer_min_session_timeout_ms: i32,
    /// `group.consumer.max.session.timeout.ms`.
    pub consumer_max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: how often members are told to heartbeat.
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            offsets_segment_bytes: 16 * 1024 * 1024,
            consumer_session_timeout_ms: 45_000,
            consumer_min_session_timeout_ms: 45_000,
            consumer_max_session_timeout_ms: 60_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

impl GroupConfig {
    /// Checks every value; the message names the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_session_timeout_ms < 1
            || self.min_session_timeout_ms > self.max_session_timeout_ms
        {
            return Err(
                "group.min_session_timeout_ms must be >= 1 and <= max_session_timeout_ms".into(),
            );
        }
        if self.initial_rebalance_delay_ms < 0 {
            return Err("group.initial_rebalance_delay_ms must be >= 0".into());
        }
        if self.offsets_retention_ms < 1 || self.offsets_retention_check_interval_ms == 0 {
            return Err(
                "group.offsets_retention_ms and offsets_retention_check_interval_ms must be > 0"
                    .into(),
            );
        }
        if !(4096..=i32::MAX as u64).contains(&self.offsets_segment_bytes) {
            return Err("group.offsets_segment_bytes must be in [4 KiB, 2 GiB)".into());
        }
        if !(self.consumer_min_session_timeout_ms..=self.consumer_max_session_timeout_ms)
            .contains(&self.consumer_session_timeout_ms)
            || self.consumer_min_session_timeout_ms < 1
        {
            return Err("group.consumer_session_timeout_ms must be >= 1 and within \
                 [consumer_min_session_timeout_ms, consumer_max_session_timeout_ms]"
                .into());
        }
        if !(1..self.consumer_session_timeout_ms).contains(&self.consumer_heartbeat_interval_ms) {
            return Err(
                "group.consumer_heartbeat_interval_ms must be >= 1 and below the session timeout"
                    .into(),
            );
        }
        Ok(())
    }
}

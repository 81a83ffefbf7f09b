//! Errors of the storage layer and their Kafka error codes.
//!
//! Every failure of a single partition's log ends as one of these variants;
//! [`Error::error_code`] is the only place that maps them to the wire.

use std::path::PathBuf;

use kafka_protocol::ResponseError;

/// A failed log operation. Variants carry the numbers a log line needs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad length field, magic other than 2, CRC mismatch or truncated batch.
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    /// A well-formed batch the broker refuses (record count, transactional, ...).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// A batch refused for some of its records (KIP-467): their indexes in
    /// the batch, which the Produce response names.
    #[error("{reason} ({} of the batch's records, the first at index {})", records.len(), records.first().copied().unwrap_or(-1))]
    InvalidRecords {
        /// What is wrong with each of them.
        reason: String,
        /// Their indexes in the batch, from 0.
        records: Vec<i32>,
    },
    /// A timestamp outside `message.timestamp.before.max.ms` / `after.max.ms` of the broker's clock.
    #[error("timestamp {timestamp} is more than {limit_ms} ms {side} the broker's clock {now}")]
    InvalidTimestamp {
        timestamp: i64,
        now: i64,
        limit_ms: i64,
        side: &'static str,
    },
    /// A batch larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// The requested offset is outside `[start, end]`.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// Log start offset.
        start: i64,
        /// Log end offset.
        end: i64,
    },
    /// An idempotent producer skipped or repeated a sequence number.
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        /// The producer id of the batch.
        producer_id: i64,
        /// The sequence the log expected next.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// A producer wrote with an epoch older than the current one.
    #[error("producer {producer_id}: epoch {got} is older than current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id of the batch.
        producer_id: i64,
        /// The epoch the log knows.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// An I/O error on a file of the log.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The log was marked failed after an fsync error; reopen it to continue.
    #[error("log is poisoned after a failed fsync")]
    Poisoned,
}

/// Result alias of the storage layer.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The Kafka error code to put in the partition's response.
    pub fn error_code(&self) -> i16 {
        let e = match self {
            Error::CorruptMessage(_) => ResponseError::CorruptMessage,
            Error::InvalidRecord(_) | Error::InvalidRecords { .. } => ResponseError::InvalidRecord,
            Error::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
            Error::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
            Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            Error::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            Error::Io { .. } | Error::Poisoned => ResponseError::KafkaStorageError,
        };
        e.code()
    }

    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_match_kafka() {
        assert_eq!(Error::CorruptMessage(String::new()).error_code(), 2);
        assert_eq!(Error::InvalidRecord(String::new()).error_code(), 87);
        assert_eq!(Error::RecordTooLarge { size: 1, max: 0 }.error_code(), 10);
        let range = Error::OffsetOutOfRange {
            offset: 0,
            start: 0,
            end: 0,
        };
        assert_eq!(range.error_code(), 1);
        let seq = Error::OutOfOrderSequence {
            producer_id: 1,
            expected: 0,
            got: 1,
        };
        assert_eq!(seq.error_code(), 45);
        let epoch = Error::InvalidProducerEpoch {
            producer_id: 1,
            current: 1,
            got: 0,
        };
        assert_eq!(epoch.error_code(), 47);
        assert_eq!(Error::Poisoned.error_code(), 56);
        assert_eq!(Error::io("x", std::io::Error::other("x")).error_code(), 56);
    }
}

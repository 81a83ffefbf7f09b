//! The crate's error type. Kafka error codes are carried by [`Error::Api`] and
//! by storage errors; [`Error::code`] is the one place that turns any error into a code.

use std::path::PathBuf;

use kafka_protocol::ResponseError;

/// Everything that can go wrong above the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A partition log failed; it knows its own Kafka error code.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    /// A request was refused with a Kafka error code.
    #[error("{code:?}: {message}")]
    Api {
        code: ResponseError,
        message: String,
    },
    /// The bytes on the wire were not a valid request.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A file or socket operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A setting was invalid.
    #[error("config: {0}")]
    Config(String),
    /// Another broker holds the data directory's lock.
    #[error(
        "data directory {} is in use by another broker (it holds {}/.lock); stop it or choose another --data-dir",
        .0.display(), .0.display()
    )]
    DataDirInUse(PathBuf),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A refusal with a Kafka code and a message for the client.
    pub fn api(code: ResponseError, message: impl Into<String>) -> Error {
        Error::Api {
            code,
            message: message.into(),
        }
    }

    /// The Kafka error code a client should see for this error.
    pub fn code(&self) -> i16 {
        match self {
            Error::Storage(e) => e.error_code(),
            Error::Api { code, .. } => code.code(),
            Error::Io { .. } => ResponseError::KafkaStorageError.code(),
            Error::Protocol(_) => ResponseError::InvalidRequest.code(),
            Error::Config(_) => ResponseError::InvalidConfig.code(),
            Error::DataDirInUse(_) => ResponseError::KafkaStorageError.code(),
        }
    }

    /// Whether a client sees `code` for this error.
    pub fn is(&self, code: ResponseError) -> bool {
        self.code() == code.code()
    }

    /// The indexes in its batch of each record a Produce was refused for,
    /// and why (KIP-467's `record_errors`); `None` when the refusal is not
    /// per record.
    pub fn record_errors(&self) -> Option<(&[i32], &str)> {
        match self {
            Error::Storage(crate::storage::Error::InvalidRecords { records, reason }) => {
                Some((records, reason))
            }
            _ => None,
        }
    }

    /// The text for a response's `error_message` field.
    pub fn message(&self) -> String {
        match self {
            Error::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// Attaches a path to an I/O error.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

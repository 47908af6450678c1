//! [`ServiceError`], every way a request can fail, and the one place that
//! maps it to a [`tonic::Status`] (and, for BatchLookup items, to a
//! per-item [`pb::ItemError`]).

use std::fmt;

use portolan::{STATE_ID_METADATA, pb};
use portolan_registry::ContentId;
use tonic::{Code, Status};

/// Why a request (or one BatchLookup item) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// A request field holds a value the contract forbids.
    InvalidArgument {
        /// The field, as named in the proto (`port`, `query`, `id`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A lookup found nothing, e.g. "no record for port 4/tcp", in the
    /// registry state `state_id` (sent as the `portolan-state-id` trailer,
    /// so that a cache can tell which content the miss was read from).
    NotFound {
        /// What was not found.
        message: String,
        /// The content id of the state the lookup read.
        state_id: ContentId,
    },
    /// A server-side limit was reached (e.g. the number of Watch streams).
    ResourceExhausted(String),
    /// The server cannot answer right now (e.g. it is shutting down).
    Unavailable(String),
    /// A stream ran past a server-side time bound (a scan past
    /// `--max-scan-duration`, or a client that took no message within
    /// `--stream-send-timeout`).
    DeadlineExceeded(String),
    /// A bug: work the server started failed (a task that panicked).
    Internal(String),
}

impl ServiceError {
    /// An INVALID_ARGUMENT error naming `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The per-item error of a BatchLookup response.
    pub fn to_item_error(&self) -> pb::ItemError {
        pb::ItemError {
            code: self.code() as i32,
            message: self.to_string(),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArgument { field, reason } => write!(f, "{field}: {reason}"),
            Self::NotFound { message, .. }
            | Self::ResourceExhausted(message)
            | Self::Unavailable(message)
            | Self::DeadlineExceeded(message)
            | Self::Internal(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let ServiceError::NotFound { state_id, .. } = &error {
            // Sixteen hex digits are always a valid ASCII value.
            if let Ok(value) = state_id.to_string().parse() {
                metadata.insert(STATE_ID_METADATA, value);
            }
        }
        Status::with_metadata(error.code(), error.to_string(), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field() {
        let status = Status::from(ServiceError::invalid("port", "70000 is above 65535"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "port: 70000 is above 65535");
    }

    #[test]
    fn item_errors_carry_the_numeric_code() {
        let error = ServiceError::NotFound {
            message: "no record for port 4/tcp".into(),
            state_id: ContentId(0xabc),
        };
        let item = error.to_item_error();
        let status = Status::from(error);
        assert_eq!(
            status.metadata().get(STATE_ID_METADATA).unwrap(),
            "0000000000000abc"
        );
        assert_eq!(item.code, 5);
        assert_eq!(item.message, "no record for port 4/tcp");
    }
}

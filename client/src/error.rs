//! [`Error`]: the one error type of the client library.
//!
//! Every gRPC status the server can send is mapped to a variant here, keeping
//! the server's message; transport failures keep their root cause (e.g.
//! "connection refused"). No `tonic::Status` escapes the public API.

use std::error::Error as StdError;
use std::fmt;

use portolan::STATE_ID_METADATA;

/// Everything that can go wrong talking to a Portolan server.
///
/// Variants carry the server's (or transport's) message. The enum is
/// `#[non_exhaustive]`: match with a wildcard arm.
///
/// # Example
/// ```
/// use portolan_client::Error;
///
/// let err = Error::NotFound { message: "no record for port 1".into(), stale: false, state_id: 0 };
/// assert!(err.is_not_found());
/// assert!(!err.is_retryable());
/// assert_eq!(err.to_string(), "not found: no record for port 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry has no record answering the query (gRPC NOT_FOUND).
    #[error("not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
        /// True when this answer came from a [`crate::CachedClient`] entry
        /// served while the server was unreachable (stale-if-error).
        stale: bool,
        /// The registry state (content id) the miss was read from, from the
        /// server's `portolan-state-id` trailer; 0 when it sent none.
        state_id: u64,
    },
    /// The request was malformed (gRPC INVALID_ARGUMENT), or rejected
    /// locally before being sent (e.g. `Protocol::Other` in a request).
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong, naming the field.
        message: String,
    },
    /// The server could not be reached or is shutting down (gRPC
    /// UNAVAILABLE, including connection failures). The only retried error.
    #[error("unavailable: {message}")]
    Unavailable {
        /// The cause, e.g. "connection refused".
        message: String,
    },
    /// The per-call deadline passed (gRPC DEADLINE_EXCEEDED).
    #[error("deadline exceeded: {message}")]
    DeadlineExceeded {
        /// The server's message or the local timeout.
        message: String,
    },
    /// The server refused the call for lack of capacity (gRPC
    /// RESOURCE_EXHAUSTED), e.g. too many watchers.
    #[error("resource exhausted: {message}")]
    ResourceExhausted {
        /// The server's message.
        message: String,
    },
    /// The call was cancelled (gRPC CANCELLED).
    #[error("cancelled: {message}")]
    Cancelled {
        /// The message.
        message: String,
    },
    /// The client could not be set up: a bad endpoint URI, unreadable TLS
    /// files, a DNS name that does not resolve at start-up.
    #[error("transport: {message}")]
    Transport {
        /// The cause.
        message: String,
    },
    /// The server sent something this client cannot interpret (an
    /// undecodable record, a watch event breaking the protocol).
    #[error("protocol: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// Any other gRPC status (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...).
    #[error("server error ({code}): {message}")]
    Internal {
        /// The gRPC status code name, e.g. `Internal`.
        code: String,
        /// The server's message.
        message: String,
    },
}

impl Error {
    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether retrying the same call may succeed (only [`Error::Unavailable`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether the server could not be reached (unavailable, deadline or
    /// transport): the cases where a cache serves stale entries.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::DeadlineExceeded { .. } | Self::Transport { .. }
        )
    }

    pub(crate) fn protocol(message: impl fmt::Display) -> Self {
        Self::Protocol {
            message: message.to_string(),
        }
    }

    pub(crate) fn from_status(status: tonic::Status) -> Self {
        use tonic::Code;
        let message = describe_status(&status);
        // A status the server sent arrives in trailers and has no source; one
        // with a source was made here from a transport failure (the
        // connection died mid-call: "h2 protocol error: broken pipe",
        // "connection closed"). That is the server being unreachable, not a
        // server error, so it is retried and lets the cache serve stale.
        // The exception is a TLS alert from the server: it refused our
        // credentials, and retrying with the same ones cannot succeed.
        // A call cut by the server's graceful close (GOAWAY or RST_STREAM
        // with NO_ERROR, as at its maximum connection age) arrives as
        // INTERNAL ("not a result of an error"): it too is the connection
        // going away, not the server failing the call.
        let from_transport = std::error::Error::source(&status).is_some();
        let refused_by_tls_alert = message.contains("fatal alert");
        if from_transport
            && !refused_by_tls_alert
            && (matches!(status.code(), Code::Unknown | Code::Cancelled)
                || closed_without_error(&status))
        {
            return Self::Unavailable { message };
        }
        match status.code() {
            Code::NotFound => Self::NotFound {
                message,
                stale: false,
                state_id: status
                    .metadata()
                    .get(STATE_ID_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| u64::from_str_radix(v, 16).ok())
                    .unwrap_or(0),
            },
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument { message },
            Code::Unavailable => Self::Unavailable { message },
            Code::DeadlineExceeded => Self::DeadlineExceeded { message },
            Code::ResourceExhausted => Self::ResourceExhausted { message },
            Code::Cancelled => Self::Cancelled { message },
            code => Self::Internal {
                code: format!("{code:?}"),
                message,
            },
        }
    }
}

impl From<portolan::convert::ConvertError> for Error {
    fn from(e: portolan::convert::ConvertError) -> Self {
        Self::protocol(format!("undecodable message from server: {e}"))
    }
}

/// Whether `status` came from an HTTP/2 stream or connection ended with
/// NO_ERROR: the peer closing gracefully, not failing the call.
fn closed_without_error(status: &tonic::Status) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(status);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::NO_ERROR);
        }
        current = err.source();
    }
    false
}

/// The status message, or, for transport failures tonic reports with a
/// generic message, the root cause from the error chain ("connection
/// refused", "dns error: ...").
fn describe_status(status: &tonic::Status) -> String {
    let message = status.message().to_string();
    match root_cause(status) {
        Some(cause) if message.is_empty() || cause != message => {
            if message.is_empty() {
                cause
            } else {
                format!("{message}: {cause}")
            }
        }
        _ => message,
    }
}

/// The most specific cause in an error chain, phrased for humans: an
/// `io::Error` becomes its kind ("connection refused"), anything else its
/// message.
pub(crate) fn root_cause(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut current = err.source()?;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io_cause(io));
        }
        match current.source() {
            Some(next) => current = next,
            None => return Some(current.to_string()),
        }
    }
}

fn io_cause(io: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::TimedOut => "connection timed out".into(),
        ErrorKind::AddrNotAvailable => "address not available".into(),
        _ => {
            let text = io.to_string();
            // Drop the " (os error N)" suffix std adds.
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_variants() {
        let e = Error::from_status(tonic::Status::not_found("port 1"));
        assert_eq!(
            e,
            Error::NotFound {
                message: "port 1".into(),
                stale: false,
                state_id: 0,
            }
        );
        // The server names the state a miss was read from in a trailer.
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(STATE_ID_METADATA, "00000000000000ff".parse().unwrap());
        let status = tonic::Status::with_metadata(tonic::Code::NotFound, "port 1", metadata);
        assert!(matches!(
            Error::from_status(status),
            Error::NotFound { state_id: 255, .. }
        ));
        assert!(Error::from_status(tonic::Status::unavailable("x")).is_retryable());
        let e = Error::from_status(tonic::Status::internal("boom"));
        assert_eq!(e.to_string(), "server error (Internal): boom");
    }

    /// Row 7 of issue #15: a call cut when the server closes a connection
    /// at its maximum age (h2 NO_ERROR, which tonic reports as INTERNAL) is
    /// retried like UNAVAILABLE, and lets a cache serve stale.
    #[test]
    fn a_call_cut_by_a_graceful_close_is_unavailable() {
        let cut = tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::NO_ERROR)));
        assert_eq!(cut.code(), tonic::Code::Internal, "as tonic reports it");
        let e = Error::from_status(cut);
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        assert!(e.is_retryable() && e.is_unreachable());
        // A real protocol failure stays a server error.
        let broken =
            tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::PROTOCOL_ERROR)));
        assert!(matches!(Error::from_status(broken), Error::Internal { .. }));
    }

    #[test]
    fn io_causes_are_humane() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_cause(&io), "connection refused");
    }
}

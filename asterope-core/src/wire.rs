//! The wire form of errors: every field of every [`Error`] variant, so that an error sent by a
//! server comes back out of a client as the same variant with the same code.

use serde::{Deserialize, Serialize};

use crate::Error;

/// An [`Error`] as carried in a response body (`{"error": ErrorBody}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code ([`Error::code`]).
    pub code: String,
    /// Human-readable message ([`Error`]'s `Display`).
    pub message: String,
    /// Variant fields, when the variant has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub actual: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub required: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub current: Option<u64>,
}

impl From<&Error> for ErrorBody {
    fn from(error: &Error) -> ErrorBody {
        let mut body = ErrorBody {
            code: error.code().to_string(),
            message: error.to_string(),
            ..ErrorBody::default()
        };
        match error {
            Error::InvalidKey { reason }
            | Error::InvalidMetadata { reason }
            | Error::InvalidRange { reason }
            | Error::InvalidArgument { reason }
            | Error::InvalidQuery { reason }
            | Error::Truncated { reason }
            | Error::StorageFull { reason }
            | Error::Unauthorized { reason }
            | Error::Forbidden { reason }
            | Error::Internal { reason } => body.reason = Some(reason.clone()),
            Error::NotFound { key } | Error::Conflict { key } => body.key = Some(key.clone()),
            Error::ChecksumMismatch { expected, actual } => {
                body.expected = Some(expected.clone());
                body.actual = Some(actual.clone());
            }
            Error::Corrupt { key, reason } => {
                body.key = Some(key.clone());
                body.reason = Some(reason.clone());
            }
            Error::PreconditionFailed {
                key,
                required,
                current,
            } => {
                body.key = Some(key.clone());
                body.required = Some(*required);
                body.current = Some(*current);
            }
            Error::Locked { path } => body.key = Some(path.clone()),
            Error::UnsupportedFormat { .. } | Error::Io { .. } => {
                body.reason = Some(error.to_string());
            }
        }
        body
    }
}

impl From<ErrorBody> for Error {
    fn from(body: ErrorBody) -> Error {
        let reason = body.reason.unwrap_or_else(|| body.message.clone());
        let key = body.key.unwrap_or_default();
        match body.code.as_str() {
            "invalid_key" => Error::InvalidKey { reason },
            "invalid_metadata" => Error::InvalidMetadata { reason },
            "invalid_range" => Error::InvalidRange { reason },
            "invalid_argument" => Error::InvalidArgument { reason },
            "invalid_query" => Error::InvalidQuery { reason },
            "truncated" => Error::Truncated { reason },
            "storage_full" => Error::StorageFull { reason },
            "unauthorized" => Error::Unauthorized { reason },
            "forbidden" => Error::Forbidden { reason },
            "not_found" => Error::NotFound { key },
            "conflict" => Error::Conflict { key },
            "checksum_mismatch" => Error::ChecksumMismatch {
                expected: body.expected.unwrap_or_default(),
                actual: body.actual.unwrap_or_default(),
            },
            "corrupt" => Error::Corrupt { key, reason },
            "precondition_failed" => Error::PreconditionFailed {
                key,
                required: body.required.unwrap_or_default(),
                current: body.current.unwrap_or_default(),
            },
            "locked" => Error::Locked { path: key },
            "io_error" => Error::Io {
                context: "on the server".into(),
                source: std::io::Error::other(reason),
            },
            "internal" => Error::Internal { reason },
            other => Error::Internal {
                reason: format!("server error {other}: {}", body.message),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_survive_the_wire() {
        let errors = [
            Error::NotFound { key: "a/b".into() },
            Error::PreconditionFailed {
                key: "k".into(),
                required: 3,
                current: 4,
            },
            Error::ChecksumMismatch {
                expected: "aa".into(),
                actual: "bb".into(),
            },
            Error::InvalidKey {
                reason: "key is empty".into(),
            },
            Error::Forbidden {
                reason: "read-only token".into(),
            },
        ];
        for error in errors {
            let back = Error::from(ErrorBody::from(&error));
            assert_eq!(back.code(), error.code());
            assert_eq!(back.to_string(), error.to_string());
        }
    }
}

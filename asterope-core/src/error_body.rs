//! The wire form of errors: every field of every [`Error`] variant, so that an error sent by a
//! server comes back out of a client as the same variant with the same code. It lives beside
//! [`Error`] because only the crate that defines a `#[non_exhaustive]` enum can match it
//! exhaustively; the protocol's other bodies are `asterope_serialization::wire`, which
//! re-exports this one.

use serde::{Deserialize, Serialize};

use crate::Error;

/// An [`Error`] as carried in a reply body (`{"error": ErrorBody}`): every field of every
/// variant, so that an error sent by a server comes back out of a client as the same variant
/// with the same code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The digest that arrived (`checksum_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// The methods the route takes, comma-separated (`method_not_allowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
    /// The stable code ([`Error::code`]).
    pub code: String,
    /// The version found (`precondition_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// The digest announced (`checksum_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The format version found (`unsupported_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<u32>,
    /// The key, path or name concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The limit reached (`too_many_transactions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Human-readable message ([`Error`]'s `Display`).
    pub message: String,
    /// Why, when the variant says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version required (`precondition_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<u64>,
    /// The newest format version supported (`unsupported_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported: Option<u32>,
    /// What has an unsupported format (`unsupported_format`), or the method refused
    /// (`method_not_allowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
}

impl ErrorBody {
    /// The code a reply without a body or error-code header most likely carries, from its status
    /// alone (the inverse of [`Error::http_status`] where that is one-to-one; 400 and 500 are
    /// shared by several codes and give their most general one).
    pub fn code_of_status(status: u16) -> &'static str {
        match status {
            400 => "invalid_argument",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            412 => "precondition_failed",
            416 => "invalid_range",
            429 => "too_many_transactions",
            // Only the HTTP/2 layer answers 431 without a body: the header list, where
            // metadata travels, was over the limit.
            431 => "invalid_metadata",
            503 => "locked",
            507 => "storage_full",
            _ => "internal",
        }
    }
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
            Error::MethodNotAllowed { method, allowed } => {
                body.what = Some(method.clone());
                body.allowed = Some(allowed.clone());
            }
            Error::TooManyTransactions { limit } => body.limit = Some(*limit),
            Error::UnsupportedFormat {
                what,
                found,
                supported,
            } => {
                body.what = Some(what.clone());
                body.found = Some(*found);
                body.supported = Some(*supported);
            }
            Error::Io { .. } => body.reason = Some(error.to_string()),
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
            "method_not_allowed" => Error::MethodNotAllowed {
                method: body.what.unwrap_or_default(),
                allowed: body.allowed.unwrap_or_default(),
            },
            "too_many_transactions" => Error::TooManyTransactions {
                limit: body.limit.unwrap_or_default(),
            },
            "unsupported_format" => Error::UnsupportedFormat {
                what: body.what.unwrap_or(reason),
                found: body.found.unwrap_or_default(),
                supported: body.supported.unwrap_or_default(),
            },
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

    /// One error of every variant: the `match` fails to compile when a variant is added, which
    /// is the reminder to add it to the list and to the wire mapping.
    fn one_of_each() -> Vec<Error> {
        let all = vec![
            Error::InvalidKey { reason: "r".into() },
            Error::InvalidMetadata { reason: "r".into() },
            Error::InvalidRange { reason: "r".into() },
            Error::InvalidArgument { reason: "r".into() },
            Error::NotFound { key: "k".into() },
            Error::ChecksumMismatch {
                expected: "aa".into(),
                actual: "bb".into(),
            },
            Error::Truncated { reason: "r".into() },
            Error::Corrupt {
                key: "k".into(),
                reason: "r".into(),
            },
            Error::StorageFull { reason: "r".into() },
            Error::PreconditionFailed {
                key: "k".into(),
                required: 1,
                current: 2,
            },
            Error::InvalidQuery { reason: "r".into() },
            Error::Unauthorized { reason: "r".into() },
            Error::Forbidden { reason: "r".into() },
            Error::Conflict { key: "k".into() },
            Error::TooManyTransactions { limit: 8 },
            Error::MethodNotAllowed {
                method: "PATCH".into(),
                allowed: "GET, HEAD".into(),
            },
            Error::Locked { path: "/p".into() },
            Error::UnsupportedFormat {
                what: "manifest".into(),
                found: 9,
                supported: 2,
            },
            Error::Io {
                context: "c".into(),
                source: std::io::Error::other("boom"),
            },
            Error::Internal { reason: "r".into() },
        ];
        for error in &all {
            match error {
                Error::InvalidKey { .. }
                | Error::InvalidMetadata { .. }
                | Error::InvalidRange { .. }
                | Error::InvalidArgument { .. }
                | Error::NotFound { .. }
                | Error::ChecksumMismatch { .. }
                | Error::Truncated { .. }
                | Error::Corrupt { .. }
                | Error::StorageFull { .. }
                | Error::PreconditionFailed { .. }
                | Error::InvalidQuery { .. }
                | Error::Unauthorized { .. }
                | Error::Forbidden { .. }
                | Error::Conflict { .. }
                | Error::TooManyTransactions { .. }
                | Error::MethodNotAllowed { .. }
                | Error::Locked { .. }
                | Error::UnsupportedFormat { .. }
                | Error::Io { .. }
                | Error::Internal { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_comes_back_as_itself() {
        for error in one_of_each() {
            let back = Error::from(ErrorBody::from(&error));
            assert_eq!(back.code(), error.code(), "{error}");
            assert_eq!(back.http_status(), error.http_status(), "{error}");
            if !matches!(error, Error::Io { .. }) {
                assert_eq!(back.to_string(), error.to_string());
            }
        }
    }

    #[test]
    fn a_status_alone_gives_a_code_with_that_status() {
        for error in one_of_each() {
            let status = error.http_status();
            let code = ErrorBody::code_of_status(status);
            let guessed = Error::from(ErrorBody {
                code: code.into(),
                ..ErrorBody::default()
            });
            assert_eq!(guessed.http_status(), status, "{code}");
        }
    }

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

//! The one error type of Asterope, with stable machine-readable codes.
//!
//! Every failure a user can cause or meet maps to one variant; [`Error::code`] gives the stable
//! string that the CLI prints and the network protocol carries, so callers branch on the kind,
//! never on message text.

/// Result alias used throughout Asterope.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, by kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is empty, too long, or contains a NUL byte.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why the key was refused.
        reason: String,
    },
    /// The metadata document is not a map, is too large, or is nested too deeply.
    #[error("invalid metadata: {reason}")]
    InvalidMetadata {
        /// Why the metadata was refused.
        reason: String,
    },
    /// A byte range does not fit the object.
    #[error("invalid range: {reason}")]
    InvalidRange {
        /// Why the range was refused.
        reason: String,
    },
    /// Any other malformed argument (cursor, limit, digest syntax...).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why the argument was refused.
        reason: String,
    },
    /// No object is stored under this key.
    #[error("object not found: {key}")]
    NotFound {
        /// The key that was looked up.
        key: String,
    },
    /// The uploaded bytes do not hash to the SHA-256 the caller announced; nothing was stored.
    #[error("checksum mismatch: expected sha256 {expected}, received data hashes to {actual}")]
    ChecksumMismatch {
        /// Hex digest announced by the caller.
        expected: String,
        /// Hex digest of the bytes actually received.
        actual: String,
    },
    /// The upload ended before the announced size was reached (or ran past it); nothing was stored.
    #[error("truncated upload: {reason}")]
    Truncated {
        /// What was expected and what arrived.
        reason: String,
    },
    /// Stored bytes no longer match their recorded SHA-256, or a record is unreadable.
    #[error("corrupt object {key}: {reason}")]
    Corrupt {
        /// The affected key.
        key: String,
        /// What was detected.
        reason: String,
    },
    /// No space is left on the device or under the configured capacity limit.
    #[error("storage full: {reason}")]
    StorageFull {
        /// Which limit was hit.
        reason: String,
    },
    /// A conditional write found a different version than the caller required.
    #[error(
        "precondition failed for {key}: required version {required}, current version {current}"
    )]
    PreconditionFailed {
        /// The key.
        key: String,
        /// The version the caller required (0 = must not exist).
        required: u64,
        /// The version found (0 = does not exist).
        current: u64,
    },
    /// A query filter or query request is malformed.
    #[error("invalid query: {reason}")]
    InvalidQuery {
        /// What is wrong and where.
        reason: String,
    },
    /// The request carries no valid credentials.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Why the credentials were refused.
        reason: String,
    },
    /// The credentials are valid but do not allow this operation.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// What was not allowed.
        reason: String,
    },
    /// A transaction lost a write-write race: another transaction committed a newer version of
    /// this key after this one started. Retry the transaction.
    #[error("conflict on {key}: another transaction committed it first; retry")]
    Conflict {
        /// The contended key.
        key: String,
    },
    /// The route exists but is not served with this request method.
    #[error("method {method} is not allowed on this route (allowed: {allowed})")]
    MethodNotAllowed {
        /// The method of the request.
        method: String,
        /// The methods the route takes, comma-separated (the `Allow` header's value).
        allowed: String,
    },
    /// The caller already holds as many open transactions as the server allows; commit or roll
    /// one back first.
    #[error("too many open transactions: at most {limit} per token")]
    TooManyTransactions {
        /// Open transactions allowed per token.
        limit: u64,
    },
    /// The data directory is held by another process.
    #[error("data directory {path} is locked by another process")]
    Locked {
        /// The data directory.
        path: String,
    },
    /// An on-disk or wire structure has a format version this build does not understand.
    #[error("unsupported {what} format version {found} (this build reads version {supported})")]
    UnsupportedFormat {
        /// Which structure.
        what: String,
        /// Version found.
        found: u32,
        /// Version this build understands.
        supported: u32,
    },
    /// An operating-system I/O failure, with what was being done.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done (names the file, extent or key).
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A broken invariant inside Asterope; always a bug worth reporting.
    #[error("internal error: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// The stable machine-readable code of this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidKey { .. } => "invalid_key",
            Error::InvalidMetadata { .. } => "invalid_metadata",
            Error::InvalidRange { .. } => "invalid_range",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::NotFound { .. } => "not_found",
            Error::ChecksumMismatch { .. } => "checksum_mismatch",
            Error::Truncated { .. } => "truncated",
            Error::Corrupt { .. } => "corrupt",
            Error::StorageFull { .. } => "storage_full",
            Error::PreconditionFailed { .. } => "precondition_failed",
            Error::InvalidQuery { .. } => "invalid_query",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::Conflict { .. } => "conflict",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::TooManyTransactions { .. } => "too_many_transactions",
            Error::Locked { .. } => "locked",
            Error::UnsupportedFormat { .. } => "unsupported_format",
            Error::Io { .. } => "io_error",
            Error::Internal { .. } => "internal",
        }
    }

    /// The HTTP status this error kind is answered with: the one table of the protocol
    /// (documented in `docs/PROTOCOL.md`). Every variant is listed, so a new one cannot fall
    /// through to a default.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidKey { .. }
            | Error::InvalidMetadata { .. }
            | Error::InvalidArgument { .. }
            | Error::InvalidQuery { .. }
            | Error::ChecksumMismatch { .. }
            | Error::Truncated { .. } => 400,
            Error::Unauthorized { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::Conflict { .. } => 409,
            Error::PreconditionFailed { .. } => 412,
            Error::InvalidRange { .. } => 416,
            Error::TooManyTransactions { .. } => 429,
            Error::Corrupt { .. }
            | Error::UnsupportedFormat { .. }
            | Error::Io { .. }
            | Error::Internal { .. } => 500,
            Error::Locked { .. } => 503,
            Error::StorageFull { .. } => 507,
        }
    }

    /// Wraps an I/O error with what was being done; `ENOSPC`/`EDQUOT` become [`Error::StorageFull`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        let context = context.into();
        if matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            return Error::StorageFull {
                reason: format!("{context}: {source}"),
            };
        }
        Error::Io { context, source }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(reason: impl Into<String>) -> Error {
        Error::Internal {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_is_409_and_transaction_cap_is_429() {
        let conflict = Error::Conflict { key: "k".into() };
        assert_eq!(conflict.http_status(), 409);
        assert_eq!(Error::TooManyTransactions { limit: 4 }.http_status(), 429);
    }

    #[test]
    fn enospc_is_storage_full() {
        let err = Error::io(
            "writing extent 3",
            std::io::Error::from_raw_os_error(28), // ENOSPC
        );
        assert_eq!(err.code(), "storage_full");
        let err = Error::io("reading", std::io::Error::other("boom"));
        assert_eq!(err.code(), "io_error");
    }
}

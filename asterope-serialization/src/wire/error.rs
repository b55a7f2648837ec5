//! The error reply every route shares: `{"error": {"code", "message", ...}}`, with the stable
//! code also in `x-asterope-error-code` (a HEAD reply has no body). The status of each error is
//! [`Error::http_status`], the one table of the protocol; [`ErrorBody`] itself lives beside
//! [`Error`] (only there can its conversions match every variant) and is re-exported here.

use asterope_core::Error;
pub use asterope_core::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error reply: `{"error": ErrorBody}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorReply {
    /// The error.
    pub error: ErrorBody,
}

impl From<&Error> for ErrorReply {
    fn from(error: &Error) -> ErrorReply {
        ErrorReply {
            error: ErrorBody::from(error),
        }
    }
}

impl From<ErrorReply> for Error {
    fn from(reply: ErrorReply) -> Error {
        Error::from(reply.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reply_keeps_its_text() {
        let error = Error::PreconditionFailed {
            key: "k".into(),
            required: 3,
            current: 4,
        };
        let text = serde_json::to_string(&ErrorReply::from(&error)).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"code":"precondition_failed","current":4,"key":"k","message":"#
                .to_string()
                + &serde_json::to_string(&error.to_string()).unwrap()
                + r#","required":3}}"#
        );
        let back: ErrorReply = serde_json::from_str(&text).unwrap();
        assert_eq!(Error::from(back).to_string(), error.to_string());
    }
}

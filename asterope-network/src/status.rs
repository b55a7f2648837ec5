//! The one place where errors become HTTP statuses.
//!
//! The table itself is [`Error::http_status`], an exhaustive `match` in the crate that owns the
//! enum (a `#[non_exhaustive]` enum can only be matched without a default arm there), so adding a
//! variant without choosing its status does not compile.

use asterope_core::Error;
use http::StatusCode;

/// The HTTP status of an error.
pub fn http_status(error: &Error) -> StatusCode {
    // Every status in the table is a valid code; 500 only guards that invariant.
    StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_status_is_a_valid_http_status() {
        let errors = [
            Error::Conflict { key: "k".into() },
            Error::TooManyTransactions { limit: 1 },
            Error::StorageFull {
                reason: "full".into(),
            },
            Error::Locked { path: "/d".into() },
        ];
        for error in errors {
            assert_eq!(http_status(&error).as_u16(), error.http_status());
        }
    }
}

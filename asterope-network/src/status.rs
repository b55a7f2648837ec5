//! The one place where error codes become HTTP statuses.

use asterope_core::Error;
use http::StatusCode;

/// The HTTP status of an error.
pub fn http_status(error: &Error) -> StatusCode {
    match error.code() {
        "invalid_key" | "invalid_metadata" | "invalid_argument" | "invalid_query"
        | "checksum_mismatch" | "truncated" => StatusCode::BAD_REQUEST,
        "invalid_range" => StatusCode::RANGE_NOT_SATISFIABLE,
        "not_found" => StatusCode::NOT_FOUND,
        "precondition_failed" => StatusCode::PRECONDITION_FAILED,
        "storage_full" => StatusCode::INSUFFICIENT_STORAGE,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "locked" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

//! Names of the HTTP/2 protocol shared by the server and the client (see docs/PROTOCOL.md).

/// Object routes: `/v1/objects/{percent-encoded key}`; listing is `GET /v1/objects`.
pub const OBJECTS_PATH: &str = "/v1/objects";
/// Metadata-only routes: `/v1/metadata/{percent-encoded key}`.
pub const METADATA_PATH: &str = "/v1/metadata";
/// Metadata queries: `POST /v1/query` (and `POST /v1/query/explain`, `POST /v1/query/count`).
pub const QUERY_PATH: &str = "/v1/query";
/// Secondary indexes: `GET /v1/indexes`, `PUT|DELETE /v1/indexes/{field}`.
pub const INDEXES_PATH: &str = "/v1/indexes";
/// Transactions: `POST /v1/transactions`, `POST /v1/transactions/{id}/commit`,
/// `DELETE /v1/transactions/{id}`.
pub const TRANSACTIONS_PATH: &str = "/v1/transactions";
/// Runs the request inside this open transaction.
pub const HEADER_TRANSACTION: &str = "x-asterope-transaction";
/// Object and space accounting: `GET /v1/stats`.
pub const STATS_PATH: &str = "/v1/stats";
/// Runs a compaction pass (`POST`).
pub const COMPACT_PATH: &str = "/v1/compact";
/// Liveness route (never needs a token).
pub const HEALTH_PATH: &str = "/v1/health";
/// Prometheus metrics route.
pub const METRICS_PATH: &str = "/metrics";

/// Metadata document as JSON (request and response).
pub const HEADER_META: &str = "x-asterope-meta";
/// SHA-256 of the blob (hex); as a request header or an HTTP/2 trailer on PUT.
pub const HEADER_SHA256: &str = "x-asterope-sha256";
/// Commit version of the object (response).
pub const HEADER_VERSION: &str = "x-asterope-version";
/// Conditional write: only if the current version is this (0: only if absent).
pub const HEADER_IF_VERSION: &str = "x-asterope-if-version";
/// Creation time, RFC 3339 (response).
pub const HEADER_CREATED: &str = "x-asterope-created";
/// Last update time, RFC 3339 (response).
pub const HEADER_UPDATED: &str = "x-asterope-updated";
/// Full size of the object even on a ranged response.
pub const HEADER_SIZE: &str = "x-asterope-size";
/// `client` on a GET: the client verifies the SHA-256 itself, the server need not.
pub const HEADER_VERIFY: &str = "x-asterope-verify";
/// Stable error code on every error response (also on HEAD, which has no body).
pub const HEADER_ERROR_CODE: &str = "x-asterope-error-code";

/// Characters escaped when a key becomes a path segment: everything but unreserved characters
/// and `/`.
pub const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Parses a number of the protocol (a query parameter, a header, a byte position): ASCII
/// digits only. A sign, a space or anything else makes it `None`, so `+5` or ` 5` is never
/// read as 5.
pub fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

//! Header names of the protocol (`x-asterope-*`) and the media types of bodies.

/// Metadata document as JSON (request and response).
pub const HEADER_META: &str = "x-asterope-meta";
/// SHA-256 of the blob (hex); as a request header or a trailer on PUT.
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
/// Runs the request inside this open transaction.
pub const HEADER_TRANSACTION: &str = "x-asterope-transaction";

/// Media type of JSON bodies.
pub const JSON: &str = "application/json";
/// Media type of MessagePack bodies (`Content-Type` of requests, `Accept` for replies).
pub const MSGPACK: &str = "application/msgpack";
/// Media type of blobs.
pub const OCTET_STREAM: &str = "application/octet-stream";

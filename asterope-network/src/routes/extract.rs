//! Reading request bodies: the small JSON or MessagePack bodies of queries and metadata
//! updates, bounded in size and in time.

use std::time::Duration;

use asterope_core::{Error, Query, Result};
use asterope_serialization::query_from_json;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use asterope_serialization::wire::headers::MSGPACK;

/// Largest JSON request body accepted (metadata updates).
const MAX_JSON_BODY: usize = 1 << 20;

/// Reads a JSON query request body (at most 1 MiB, within `deadline`).
pub(super) async fn read_query(request: Request<Incoming>, deadline: Duration) -> Result<Query> {
    let json = read_small_body(request, deadline, |reason| Error::InvalidQuery { reason }).await?;
    query_from_json(json)
}

/// A small JSON or MessagePack request body (at most 1 MiB) as a JSON value; `invalid` names
/// what a malformed one is. A body still incomplete after `deadline` is abandoned
/// (`truncated`), as a stalled upload is, so that a slow client holds nothing for long (the
/// lock of the transaction it runs in included).
pub(super) async fn read_small_body(
    request: Request<Incoming>,
    deadline: Duration,
    invalid: fn(String) -> Error,
) -> Result<serde_json::Value> {
    let msgpack_body = is_msgpack(request.headers());
    let collect = http_body_util::Limited::new(request.into_body(), MAX_JSON_BODY).collect();
    let body = tokio::time::timeout(deadline, collect)
        .await
        .map_err(|_| Error::Truncated {
            reason: format!("the request body did not arrive within {deadline:?}"),
        })?
        .map_err(|e| invalid(format!("reading the request body: {e}")))?
        .to_bytes();
    decode_body(msgpack_body, &body).map_err(invalid)
}

/// A JSON or MessagePack request body as a JSON value.
fn decode_body(is_msgpack: bool, body: &[u8]) -> std::result::Result<serde_json::Value, String> {
    if is_msgpack {
        asterope_serialization::parse_msgpack_as_json(body)
    } else {
        asterope_serialization::parse_json(body).map_err(|e| format!("the request body: {e}"))
    }
}

fn is_msgpack(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(MSGPACK))
}

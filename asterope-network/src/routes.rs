//! Requests to store calls: routing, dispatch and the JSON replies (reading a request's target
//! and headers exactly is [`crate::request`]'s job).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use asterope_core::protocol::*;
use asterope_core::{
    Error, ErrorBody, GetOptions, Key, ListOptions, ObjectInfo, ObjectOps, PutOptions, Result,
    Store,
};
use asterope_serialization::{
    metadata_from_header_json, metadata_to_header_json, object_info_to_json, query_from_json,
};
use http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use serde_json::json;

use crate::auth::{Access, Tokens, BEARER_CHALLENGE};
use crate::blocking::BlockingPool;
use crate::body::{empty, full, parse_sha256, request_stream, streaming, ResponseBody};
use crate::metrics::Metrics;
use crate::request::{
    check_headers_apply, check_query_string, check_request_headers, condition, decode_segment,
    form_pairs, header_str, list_limit, parse_key, parse_range_header,
};
use crate::status::http_status;
use crate::transactions::{Owner, Transactions};

/// Media type of MessagePack bodies (`Content-Type` of requests, `Accept` for replies).
const MSGPACK: &str = "application/msgpack";

/// Largest JSON request body accepted (metadata updates).
const MAX_JSON_BODY: usize = 1 << 20;

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) body_idle_timeout: Duration,
    pub(crate) transactions: Transactions,
    pub(crate) blocking: BlockingPool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("transactions", &self.transactions)
            .finish_non_exhaustive()
    }
}

/// The routes, for metrics labels.
#[derive(Clone, Copy)]
pub(crate) enum Route {
    Health,
    Metrics,
    List,
    Object,
    Metadata,
    Query,
    Explain,
    Count,
    Indexes,
    Index,
    Begin,
    Transaction,
    Commit,
    Stats,
    Compact,
    Unknown,
}

impl Route {
    fn of(path: &str) -> (Route, &str) {
        if path == HEALTH_PATH {
            (Route::Health, "")
        } else if path == METRICS_PATH {
            (Route::Metrics, "")
        } else if path == OBJECTS_PATH {
            (Route::List, "")
        } else if let Some(key) = strip(path, OBJECTS_PATH) {
            (Route::Object, key)
        } else if let Some(key) = strip(path, METADATA_PATH) {
            (Route::Metadata, key)
        } else if path == QUERY_PATH {
            (Route::Query, "")
        } else if path == "/v1/query/explain" {
            (Route::Explain, "")
        } else if path == "/v1/query/count" {
            (Route::Count, "")
        } else if path == STATS_PATH {
            (Route::Stats, "")
        } else if path == COMPACT_PATH {
            (Route::Compact, "")
        } else if path == TRANSACTIONS_PATH {
            (Route::Begin, "")
        } else if let Some(rest) = strip(path, TRANSACTIONS_PATH) {
            match rest.strip_suffix("/commit") {
                Some(id) => (Route::Commit, id),
                None => (Route::Transaction, rest),
            }
        } else if path == INDEXES_PATH {
            (Route::Indexes, "")
        } else if let Some(field) = strip(path, INDEXES_PATH) {
            (Route::Index, field)
        } else {
            (Route::Unknown, "")
        }
    }

    /// Whether the route's work grows with the data (see [`handle`]).
    fn is_heavy(self) -> bool {
        matches!(
            self,
            Route::List
                | Route::Query
                | Route::Count
                | Route::Explain
                | Route::Indexes
                | Route::Index
        )
    }

    fn label(self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::List => "list",
            Route::Object => "object",
            Route::Metadata => "metadata",
            Route::Query => "query",
            Route::Explain => "explain",
            Route::Count => "count",
            Route::Indexes => "indexes",
            Route::Index => "index",
            Route::Begin => "begin",
            Route::Transaction => "transaction",
            Route::Commit => "commit",
            Route::Stats => "stats",
            Route::Compact => "compact",
            Route::Unknown => "unknown",
        }
    }
}

fn strip<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_prefix('/')
}

/// Serves one request; never fails (errors become error replies).
///
/// Work that is CPU- or disk-bound and grows with the data (listings, queries, counts, plans,
/// index changes, and encoding their replies) runs through `BlockingPool::call`, at most
/// [`ServerConfig::max_blocking_requests`](crate::ServerConfig) at once and off the async
/// workers, so that they stay free for everyone else (`/v1/health` answers while a big page is
/// built). Request bodies are read before a place is taken: a slow client holds no place.
pub(crate) async fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> std::result::Result<Response<ResponseBody>, std::convert::Infallible> {
    let metrics = Arc::clone(&state.metrics);
    metrics.requests_in_flight.fetch_add(1, Ordering::Relaxed);
    let method = method_label(request.method());
    let is_head = request.method() == Method::HEAD;
    let path = request.uri().path().to_string();
    let (route, raw_key) = Route::of(&path);
    let wants_msgpack = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(MSGPACK));
    let mut response = match dispatch(&state, route, raw_key, request).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    };
    if wants_msgpack {
        // Re-encoding a page is work in proportion to its size too.
        response = if route.is_heavy() {
            state
                .blocking
                .call(to_msgpack(response))
                .await
                .unwrap_or_else(|error| error_response(&error))
        } else {
            to_msgpack(response).await
        };
    }
    if is_head {
        response = head_reply(response);
    }
    metrics.record(route.label(), method, response.status().as_u16());
    metrics.requests_in_flight.fetch_sub(1, Ordering::Relaxed);
    Ok(response)
}

async fn dispatch(
    state: &AppState,
    route: Route,
    raw_key: &str,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    check_request_headers(request.headers())?;
    check_query_string(route, request.uri())?;
    check_headers_apply(route, request.method(), request.headers())?;
    let method = request.method().clone();
    let needed = match (route, &method) {
        (_, &Method::GET | &Method::HEAD) => Access::ReadOnly,
        (Route::Query | Route::Explain | Route::Count, _) => Access::ReadOnly,
        _ => Access::ReadWrite,
    };
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if !matches!(route, Route::Health) {
        state.tokens.authorize(authorization, needed)?;
    }
    let owner = Owner::of(state.tokens.is_enabled(), authorization);
    let named = header_str(request.headers(), HEADER_TRANSACTION)?;
    // Beginning, committing and rolling back address transactions by path; running them inside
    // another (or the same) transaction would hold its lock while waiting for it.
    if named.is_some() && matches!(route, Route::Begin | Route::Commit | Route::Transaction) {
        return Err(Error::InvalidArgument {
            reason: format!("{HEADER_TRANSACTION} is not allowed on a transaction's own routes"),
        });
    }
    // Requests naming a transaction run inside it, holding it for their duration.
    let entry = named
        .map(|id| state.transactions.get(id, owner))
        .transpose()?;
    let guard = match &entry {
        Some(entry) => Some(entry.tx.lock().await),
        None => None,
    };
    let ops: &dyn ObjectOps = match &guard {
        Some(guard) => guard.as_deref().ok_or_else(|| Error::NotFound {
            key: "transaction (already ended)".into(),
        })?,
        None => state.store.as_ref(),
    };
    match (route, method) {
        (Route::Begin, Method::POST) => {
            let tx = state.store.begin().await?;
            let snapshot = tx.snapshot_version();
            let id = state.transactions.insert(tx, owner)?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"id": id, "snapshot": snapshot,
                        "lease_seconds": state.transactions.lease().as_secs(),
                        "max_lifetime_seconds": state.transactions.max_lifetime().as_secs()}),
            ))
        }
        (Route::Commit, Method::POST) => {
            let entry = state.transactions.remove(raw_key, owner)?;
            let tx = entry
                .tx
                .lock()
                .await
                .take()
                .ok_or_else(|| Error::NotFound {
                    key: format!("transaction {raw_key}"),
                })?;
            let version = tx.commit().await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "version": version }),
            ))
        }
        (Route::Transaction, Method::DELETE) => {
            let entry = state.transactions.remove(raw_key, owner)?;
            if let Some(tx) = entry.tx.lock().await.take() {
                tx.rollback().await?;
            }
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(empty())
                .map_err(internal)?)
        }
        (Route::Stats, Method::GET | Method::HEAD) => {
            let stats = store_wide(state, named.is_some())?.stats().await?;
            Ok(json_response(StatusCode::OK, &json!(stats)))
        }
        (Route::Compact, Method::POST) => {
            let report = store_wide(state, named.is_some())?.compact().await?;
            Ok(json_response(StatusCode::OK, &json!(report)))
        }
        (Route::Health, Method::GET | Method::HEAD) => {
            Ok(json_response(StatusCode::OK, &json!({"status": "ok"})))
        }
        (Route::Metrics, Method::GET | Method::HEAD) => Ok(Response::builder()
            .header(CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(full(state.metrics.render()))
            .map_err(internal)?),
        (Route::List, Method::GET | Method::HEAD) => list(state, ops, &request).await,
        (Route::Object, Method::PUT) => put_object(state, ops, parse_key(raw_key)?, request).await,
        (Route::Object, Method::GET) => {
            get_object(state, ops, parse_key(raw_key)?, &request, true).await
        }
        (Route::Object, Method::HEAD) => {
            get_object(state, ops, parse_key(raw_key)?, &request, false).await
        }
        (Route::Object, Method::DELETE) => {
            let key = parse_key(raw_key)?;
            ops.delete(&key, condition(request.headers())?).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(empty())
                .map_err(internal)?)
        }
        (Route::Metadata, Method::GET | Method::HEAD) => {
            let info = ops.head(&parse_key(raw_key)?).await?;
            Ok(json_response(StatusCode::OK, &object_info_to_json(&info)))
        }
        (Route::Metadata, Method::PUT) => {
            update_metadata(state, ops, parse_key(raw_key)?, request).await
        }
        (Route::Query, Method::POST) => {
            let query = read_query(request, state.body_idle_timeout).await?;
            let reply = async {
                let page = ops.query(&query).await?;
                Ok(page_response(page.objects, page.next))
            };
            state.blocking.call(reply).await?
        }
        (Route::Count, Method::POST) => {
            let query = read_query(request, state.body_idle_timeout).await?;
            let count = state.blocking.call(ops.count(&query)).await??;
            Ok(json_response(StatusCode::OK, &json!({ "count": count })))
        }
        (Route::Explain, Method::POST) => {
            let query = read_query(request, state.body_idle_timeout).await?;
            let plan = state.blocking.call(ops.explain(&query)).await??;
            Ok(json_response(
                StatusCode::OK,
                &json!({"access": plan.access, "index": plan.index, "detail": plan.detail}),
            ))
        }
        (Route::Indexes, Method::GET | Method::HEAD) => {
            let indexes = store_wide(state, named.is_some())?.list_indexes().await?;
            let items: Vec<_> = indexes
                .iter()
                .map(|i| json!({"field": i.field, "state": i.state}))
                .collect();
            Ok(json_response(StatusCode::OK, &json!({ "indexes": items })))
        }
        (Route::Index, Method::PUT) => {
            let field = decode_segment(raw_key)?;
            let store = store_wide(state, named.is_some())?;
            let info = state.blocking.call(store.create_index(&field)).await??;
            Ok(json_response(
                StatusCode::OK,
                &json!({"field": info.field, "state": info.state}),
            ))
        }
        (Route::Index, Method::DELETE) => {
            let field = decode_segment(raw_key)?;
            let store = store_wide(state, named.is_some())?;
            state.blocking.call(store.drop_index(&field)).await??;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(empty())
                .map_err(internal)?)
        }
        (Route::Unknown, _) => Err(Error::InvalidArgument {
            reason: "no such route".into(),
        }),
        (_, method) => Err(Error::InvalidArgument {
            reason: format!("method {method} is not supported on this route"),
        }),
    }
}

/// The store, for the routes that act on the whole store (stats, compaction, indexes): they cannot run inside a transaction, so naming one there is refused rather than
/// silently ignored.
fn store_wide(state: &AppState, names_transaction: bool) -> Result<&dyn Store> {
    if names_transaction {
        return Err(Error::InvalidArgument {
            reason: format!(
                "{HEADER_TRANSACTION} is not accepted here: this route acts on the whole store"
            ),
        });
    }
    Ok(state.store.as_ref())
}

/// Reads a JSON query request body (at most 1 MiB, within `deadline`).
async fn read_query(
    request: Request<Incoming>,
    deadline: Duration,
) -> Result<asterope_core::Query> {
    let json = read_small_body(request, deadline, |reason| Error::InvalidQuery { reason }).await?;
    query_from_json(json)
}

/// A small JSON or MessagePack request body (at most 1 MiB) as a JSON value; `invalid` names
/// what a malformed one is. A body still incomplete after `deadline` is abandoned
/// (`truncated`), as a stalled upload is, so that a slow client holds nothing for long (the
/// lock of the transaction it runs in included).
async fn read_small_body(
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

/// Re-encodes a JSON reply as MessagePack for clients that asked for it.
async fn to_msgpack(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t == "application/json");
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return error_response(&Error::internal("reply body failed"));
    };
    let encoded = serde_json::from_slice::<serde_json::Value>(&collected.to_bytes())
        .ok()
        .and_then(|json| asterope_serialization::encode(&json).ok());
    match encoded {
        Some(bytes) => {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static(MSGPACK));
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, full(bytes))
        }
        None => error_response(&Error::internal("reply is not JSON")),
    }
}

/// The reply to a HEAD: the headers the GET would carry, its `content-length` included, and no
/// body, on every route and for errors too (a body after a HEAD is an HTTP/2 protocol error; HTTP/1.1 sends none).
fn head_reply(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    if let Some(length) = body.size_hint().exact() {
        parts
            .headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(length));
    }
    Response::from_parts(parts, empty())
}

/// Runs every parser a request's target and headers go through (route, key, range, version
/// condition, digest, metadata, list parameters), for the fuzzer: none may panic.
#[doc(hidden)]
pub fn parse_request_parts(path: &str, query: &str, headers: &HeaderMap) {
    let (_, raw_key) = Route::of(path);
    let _ = parse_key(raw_key);
    let _ = decode_segment(raw_key);
    let _ = form_pairs(query);
    let _ = check_request_headers(headers);
    let _ = condition(headers);
    if let Ok(Some(range)) = header_str(headers, RANGE.as_str()) {
        let _ = parse_range_header(range).map(|r| r.resolve(1 << 20));
    }
    if let Some(sha) = headers.get(HEADER_SHA256) {
        let _ = parse_sha256(sha);
    }
    if let Some(meta) = headers.get(HEADER_META) {
        let _ = metadata_from_header_json(meta.as_bytes());
    }
}

async fn put_object(
    state: &AppState,
    ops: &dyn ObjectOps,
    key: Key,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let headers = request.headers();
    let mut options = PutOptions {
        condition: condition(headers)?,
        ..PutOptions::default()
    };
    if let Some(meta) = headers.get(HEADER_META) {
        options.metadata = metadata_from_header_json(meta.as_bytes())?;
    }
    if let Some(sha) = headers.get(HEADER_SHA256) {
        options.sha256 = Some(parse_sha256(sha)?);
    }
    if let Some(length) = header_str(headers, CONTENT_LENGTH.as_str())? {
        options.size = Some(parse_decimal(length).ok_or_else(|| Error::InvalidArgument {
            reason: "content-length is not a number".into(),
        })?);
    }
    let trailer = Arc::new(OnceLock::new());
    options.sha256_after_body = Some(Arc::clone(&trailer));
    let body = request_stream(
        request.into_body(),
        trailer,
        state.body_idle_timeout,
        Arc::clone(&state.metrics),
    );
    let info = ops.put(&key, body, options).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &object_info_to_json(&info),
    ))
}

async fn get_object(
    state: &AppState,
    ops: &dyn ObjectOps,
    key: Key,
    request: &Request<Incoming>,
    with_body: bool,
) -> Result<Response<ResponseBody>> {
    // Range handling is defined for GET only: a HEAD ignores the header (RFC 9110 §14.2).
    if !with_body {
        let info = ops.head(&key).await?;
        let builder = object_headers(Response::builder(), &info)?
            .header(CONTENT_LENGTH, info.size)
            .status(StatusCode::OK);
        return builder.body(empty()).map_err(internal);
    }
    // A client that verifies the download itself says so; everyone else (curl) gets a stream
    // that the server verifies and resets instead of ending cleanly if the bytes are corrupt.
    let client_verifies = match header_str(request.headers(), HEADER_VERIFY)? {
        None => false,
        Some("client") => true,
        Some(other) => {
            return Err(Error::InvalidArgument {
                reason: format!("{HEADER_VERIFY} {other:?} is not `client`"),
            })
        }
    };
    let range = header_str(request.headers(), RANGE.as_str())?
        .map(parse_range_header)
        .transpose();
    let ranged = matches!(range, Ok(Some(_)));
    let result = match range {
        Ok(range) => {
            let verify = !client_verifies;
            ops.get(&key, GetOptions { range, verify }).await
        }
        Err(error) => Err(error),
    };
    let result = match result {
        Err(error @ Error::InvalidRange { .. }) => {
            return range_not_satisfiable(ops, &key, &error).await
        }
        other => other?,
    };
    let mut builder = object_headers(Response::builder(), &result.info)?
        .header(CONTENT_LENGTH, result.range.end - result.range.start);
    builder = if ranged {
        builder.status(StatusCode::PARTIAL_CONTENT).header(
            CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                result.range.start,
                result.range.end.saturating_sub(1),
                result.info.size
            ),
        )
    } else {
        builder.status(StatusCode::OK)
    };
    builder
        .body(streaming(result.body, Arc::clone(&state.metrics)))
        .map_err(internal)
}

fn object_headers(
    builder: http::response::Builder,
    info: &ObjectInfo,
) -> Result<http::response::Builder> {
    let meta = metadata_to_header_json(&info.metadata);
    Ok(builder
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(ACCEPT_RANGES, "bytes")
        .header(ETAG, format!("\"{}\"", info.sha256))
        .header(HEADER_SHA256, info.sha256.to_hex())
        .header(HEADER_VERSION, info.version)
        .header(HEADER_SIZE, info.size)
        .header(HEADER_CREATED, info.created.to_rfc3339())
        .header(HEADER_UPDATED, info.updated.to_rfc3339())
        .header(HEADER_META, meta))
}

/// The `416` reply to a range the object cannot satisfy (or a `Range` that cannot be parsed):
/// it says the object's size in `content-range: bytes */SIZE` (RFC 9110 §14.4). A missing
/// object is `404` instead.
async fn range_not_satisfiable(
    ops: &dyn ObjectOps,
    key: &Key,
    error: &Error,
) -> Result<Response<ResponseBody>> {
    let info = ops.head(key).await?;
    let mut response = error_response(error);
    let content_range = HeaderValue::try_from(format!("bytes */{}", info.size))
        .map_err(|e| Error::internal(format!("building content-range: {e}")))?;
    response.headers_mut().insert(CONTENT_RANGE, content_range);
    Ok(response)
}

async fn update_metadata(
    state: &AppState,
    ops: &dyn ObjectOps,
    key: Key,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let condition = condition(request.headers())?;
    let invalid = |reason| Error::InvalidMetadata { reason };
    let json = read_small_body(request, state.body_idle_timeout, invalid).await?;
    let metadata = asterope_serialization::metadata_from_json(json)?;
    let info = ops.update_metadata(&key, metadata, condition).await?;
    Ok(json_response(StatusCode::OK, &object_info_to_json(&info)))
}

async fn list(
    state: &AppState,
    ops: &dyn ObjectOps,
    request: &Request<Incoming>,
) -> Result<Response<ResponseBody>> {
    let mut options = ListOptions::default();
    for (name, value) in form_pairs(request.uri().query().unwrap_or(""))? {
        match name.as_str() {
            "prefix" => options.prefix = value,
            "cursor" => options.cursor = Some(value),
            "limit" => options.limit = list_limit(&value)?,
            other => {
                return Err(Error::InvalidArgument {
                    reason: format!("unknown list parameter {other:?}"),
                })
            }
        }
    }
    let reply = async {
        let page = ops.list(options).await?;
        Ok(page_response(page.objects, page.next))
    };
    state.blocking.call(reply).await?
}

/// `{"items": [...], "next": cursor|null}`, written item by item: each item's JSON tree exists
/// only while it is written, and its object is dropped once written (a page held as one JSON
/// tree, then copied into a second, costs many times its text).
fn page_response(objects: Vec<ObjectInfo>, next: Option<String>) -> Response<ResponseBody> {
    let mut text = String::from("{\"items\":[");
    for (i, info) in objects.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&object_info_to_json(&info).to_string());
    }
    text.push_str("],\"next\":");
    text.push_str(&serde_json::Value::from(next).to_string());
    text.push('}');
    json_text_response(StatusCode::OK, text)
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    json_text_response(status, value.to_string())
}

fn json_text_response(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"error": {"code", "message", ...}}` with the mapped status and the code in a header.
pub(crate) fn error_response(error: &Error) -> Response<ResponseBody> {
    let body = ErrorBody::from(error);
    let json = serde_json::to_value(&body).unwrap_or_else(|_| json!({"code": body.code}));
    let mut response = json_response(http_status(error), &json!({ "error": json }));
    if let Ok(code) = HeaderValue::from_str(error.code()) {
        response.headers_mut().insert(HEADER_ERROR_CODE, code);
    }
    if let Error::Unauthorized { .. } = error {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BEARER_CHALLENGE),
        );
    }
    response
}

fn internal(e: http::Error) -> Error {
    Error::internal(format!("building a response: {e}"))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

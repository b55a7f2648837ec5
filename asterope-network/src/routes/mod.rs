//! Requests to store calls: the route table, routing and dispatch. Each route family has its
//! own module (`objects`, `query`, `indexes`, `transactions`, `admin`); reading a request's
//! body is `extract`'s job and building replies `reply`'s (reading a request's target and
//! headers exactly is [`crate::request`]'s).

mod admin;
mod extract;
mod indexes;
mod objects;
mod query;
mod reply;
mod transactions;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use asterope_core::{Error, ObjectOps, Result, Store};
use asterope_serialization::metadata_from_header_json;
use asterope_serialization::wire::headers::{
    HEADER_META, HEADER_SHA256, HEADER_TRANSACTION, MSGPACK,
};
use asterope_serialization::wire::paths::*;
use http::header::{AUTHORIZATION, RANGE};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;

use self::reply::{error_response, head_reply, to_msgpack};
use crate::auth::{Access, Tokens};
use crate::blocking::BlockingPool;
use crate::body::{parse_sha256, ResponseBody};
use crate::metrics::Metrics;
use crate::request::{
    check_headers_apply, check_query_string, check_request_headers, condition, decode_segment,
    form_pairs, header_str, parse_key, parse_range_header,
};
use crate::transactions::{Owner, Transactions};

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) body_idle_timeout: Duration,
    pub(crate) transactions: Transactions,
    pub(crate) blocking: BlockingPool,
    /// Places for uploads streaming into the store (`ServerConfig::max_concurrent_uploads`).
    pub(crate) uploads: tokio::sync::Semaphore,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("transactions", &self.transactions)
            .finish_non_exhaustive()
    }
}

/// The routes, for metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    OpenApi,
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
        } else if path == OPENAPI_PATH {
            (Route::OpenApi, "")
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
        } else if path == QUERY_EXPLAIN_PATH {
            (Route::Explain, "")
        } else if path == QUERY_COUNT_PATH {
            (Route::Count, "")
        } else if path == STATS_PATH {
            (Route::Stats, "")
        } else if path == COMPACT_PATH {
            (Route::Compact, "")
        } else if path == TRANSACTIONS_PATH {
            (Route::Begin, "")
        } else if let Some(rest) = strip(path, TRANSACTIONS_PATH) {
            match rest.strip_suffix(COMMIT_SUFFIX) {
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

    /// The methods [`dispatch`] serves on the route (an unknown route takes none).
    fn allowed_methods(self) -> &'static [&'static str] {
        match self {
            Route::Health
            | Route::OpenApi
            | Route::Metrics
            | Route::List
            | Route::Stats
            | Route::Indexes => &["GET", "HEAD"],
            Route::Metadata => &["GET", "HEAD", "PUT"],
            Route::Object => &["GET", "HEAD", "PUT", "DELETE"],
            Route::Query
            | Route::Explain
            | Route::Count
            | Route::Begin
            | Route::Commit
            | Route::Compact => &["POST"],
            Route::Index => &["PUT", "DELETE"],
            Route::Transaction => &["DELETE"],
            Route::Unknown => &[],
        }
    }

    /// `405 method_not_allowed` for a method the route does not take.
    fn refuse_method(self, method: &Method) -> Error {
        Error::MethodNotAllowed {
            method: method.to_string(),
            allowed: self.allowed_methods().join(", "),
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
            Route::OpenApi => "openapi",
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
    // A method the route does not take is refused before anything else is read: which
    // methods a route takes is public (the OpenAPI document), and no header or body of the
    // request means anything for it.
    if route != Route::Unknown && !route.allowed_methods().contains(&request.method().as_str()) {
        return Err(route.refuse_method(request.method()));
    }
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
    if !matches!(route, Route::Health | Route::OpenApi) {
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
    let names_transaction = named.is_some();
    match (route, method) {
        (Route::Begin, Method::POST) => transactions::begin(state, owner).await,
        (Route::Commit, Method::POST) => transactions::commit(state, raw_key, owner).await,
        (Route::Transaction, Method::DELETE) => transactions::rollback(state, raw_key, owner).await,
        (Route::Stats, Method::GET | Method::HEAD) => {
            admin::stats(store_wide(state, names_transaction)?).await
        }
        (Route::Compact, Method::POST) => {
            admin::compact(store_wide(state, names_transaction)?).await
        }
        (Route::Health, Method::GET | Method::HEAD) => Ok(admin::health()),
        (Route::OpenApi, Method::GET | Method::HEAD) => Ok(admin::openapi()),
        (Route::Metrics, Method::GET | Method::HEAD) => admin::metrics(state),
        (Route::List, Method::GET | Method::HEAD) => objects::list(state, ops, &request).await,
        (Route::Object, Method::PUT) => {
            objects::put(state, ops, parse_key(raw_key)?, request).await
        }
        (Route::Object, Method::GET) => {
            objects::get(state, ops, parse_key(raw_key)?, &request, true).await
        }
        (Route::Object, Method::HEAD) => {
            objects::get(state, ops, parse_key(raw_key)?, &request, false).await
        }
        (Route::Object, Method::DELETE) => {
            objects::delete(ops, parse_key(raw_key)?, &request).await
        }
        (Route::Metadata, Method::GET | Method::HEAD) => {
            objects::head_metadata(ops, parse_key(raw_key)?).await
        }
        (Route::Metadata, Method::PUT) => {
            objects::update_metadata(state, ops, parse_key(raw_key)?, request).await
        }
        (Route::Query, Method::POST) => query::query(state, ops, request).await,
        (Route::Count, Method::POST) => query::count(state, ops, request).await,
        (Route::Explain, Method::POST) => query::explain(state, ops, request).await,
        (Route::Indexes, Method::GET | Method::HEAD) => {
            indexes::list(store_wide(state, names_transaction)?).await
        }
        (Route::Index, Method::PUT) => {
            let store = store_wide(state, names_transaction)?;
            indexes::create(state, store, raw_key).await
        }
        (Route::Index, Method::DELETE) => {
            let store = store_wide(state, names_transaction)?;
            indexes::drop(state, store, raw_key).await
        }
        (Route::Unknown, _) => Err(Error::InvalidArgument {
            reason: "no such route".into(),
        }),
        (route, method) => Err(route.refuse_method(&method)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route, listed through an exhaustive `match`: a new variant does not compile until
    /// it is added here (and so checked against the OpenAPI document).
    fn every_route() -> Vec<Route> {
        let all = vec![
            Route::Health,
            Route::OpenApi,
            Route::Metrics,
            Route::List,
            Route::Object,
            Route::Metadata,
            Route::Query,
            Route::Explain,
            Route::Count,
            Route::Indexes,
            Route::Index,
            Route::Begin,
            Route::Transaction,
            Route::Commit,
            Route::Stats,
            Route::Compact,
        ];
        for route in &all {
            match route {
                Route::Health
                | Route::OpenApi
                | Route::Metrics
                | Route::List
                | Route::Object
                | Route::Metadata
                | Route::Query
                | Route::Explain
                | Route::Count
                | Route::Indexes
                | Route::Index
                | Route::Begin
                | Route::Transaction
                | Route::Commit
                | Route::Stats
                | Route::Compact
                | Route::Unknown => {}
            }
        }
        all
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_every_documented_path_is_a_route() {
        let documented: Vec<Route> = crate::openapi::operations()
            .iter()
            .map(|(_, template)| {
                let path = template
                    .replace("{key}", "k")
                    .replace("{field}", "f")
                    .replace("{id}", "t");
                Route::of(&path).0
            })
            .collect();
        assert!(!documented.contains(&Route::Unknown));
        for route in every_route() {
            assert!(documented.contains(&route), "{route:?} is not documented");
        }
    }
}

//! The administrative routes: `GET /v1/stats`, `POST /v1/compact` (both on the whole store),
//! `GET /v1/health` (answered without authentication) and `GET /metrics` (Prometheus text).

use asterope_core::{Result, Store};
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use serde_json::json;

use super::reply::{internal, json_response};
use super::AppState;
use crate::body::{full, ResponseBody};

/// `GET /v1/stats`: the store's accounting.
pub(super) async fn stats(store: &dyn Store) -> Result<Response<ResponseBody>> {
    let stats = store.stats().await?;
    Ok(json_response(StatusCode::OK, &json!(stats)))
}

/// `POST /v1/compact`: runs a compaction pass and reports what it did.
pub(super) async fn compact(store: &dyn Store) -> Result<Response<ResponseBody>> {
    let report = store.compact().await?;
    Ok(json_response(StatusCode::OK, &json!(report)))
}

/// `GET /v1/health`: `{"status": "ok"}`.
pub(super) fn health() -> Response<ResponseBody> {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /metrics`: the server's counters in the Prometheus text format.
pub(super) fn metrics(state: &AppState) -> Result<Response<ResponseBody>> {
    Response::builder()
        .header(CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(full(state.metrics.render()))
        .map_err(internal)
}

//! The administrative routes: `GET /v1/stats`, `POST /v1/compact` (both on the whole store),
//! `GET /v1/health` and `GET /v1/openapi.json` (answered without authentication) and
//! `GET /metrics` (Prometheus text).

use asterope_core::{Result, Store};
use asterope_serialization::wire::{CompactReply, HealthReply, StatsReply};
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};

use super::reply::{internal, json_response, json_text_response};
use super::AppState;
use crate::body::{full, ResponseBody};

/// `GET /v1/stats`: the store's accounting.
pub(super) async fn stats(store: &dyn Store) -> Result<Response<ResponseBody>> {
    let stats = store.stats().await?;
    Ok(json_response(StatusCode::OK, &StatsReply::from(stats)))
}

/// `POST /v1/compact`: runs a compaction pass and reports what it did.
pub(super) async fn compact(store: &dyn Store) -> Result<Response<ResponseBody>> {
    let report = store.compact().await?;
    Ok(json_response(StatusCode::OK, &CompactReply::from(report)))
}

/// `GET /v1/health`: `{"status": "ok"}`.
pub(super) fn health() -> Response<ResponseBody> {
    json_response(StatusCode::OK, &HealthReply::ok())
}

/// `GET /v1/openapi.json`: the OpenAPI document of the protocol.
pub(super) fn openapi() -> Response<ResponseBody> {
    json_text_response(StatusCode::OK, crate::openapi::document_json().to_string())
}

/// `GET /metrics`: the server's counters in the Prometheus text format.
pub(super) fn metrics(state: &AppState) -> Result<Response<ResponseBody>> {
    Response::builder()
        .header(CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(full(state.metrics.render()))
        .map_err(internal)
}

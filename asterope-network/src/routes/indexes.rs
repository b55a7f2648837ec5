//! The index routes: `GET /v1/indexes`, `PUT` and `DELETE /v1/indexes/{field}`. They act on
//! the whole store, never inside a transaction.

use asterope_core::{Result, Store};
use http::{Response, StatusCode};
use serde_json::json;

use super::reply::{json_response, no_content};
use super::AppState;
use crate::body::ResponseBody;
use crate::request::decode_segment;

/// `GET /v1/indexes`: `{"indexes": [{"field", "state"}, ...]}`.
pub(super) async fn list(store: &dyn Store) -> Result<Response<ResponseBody>> {
    let indexes = store.list_indexes().await?;
    let items: Vec<_> = indexes
        .iter()
        .map(|i| json!({"field": i.field, "state": i.state}))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "indexes": items })))
}

/// `PUT /v1/indexes/{field}`: declares the index (built in the background).
pub(super) async fn create(
    state: &AppState,
    store: &dyn Store,
    raw_field: &str,
) -> Result<Response<ResponseBody>> {
    let field = decode_segment(raw_field)?;
    let info = state.blocking.call(store.create_index(&field)).await??;
    Ok(json_response(
        StatusCode::OK,
        &json!({"field": info.field, "state": info.state}),
    ))
}

/// `DELETE /v1/indexes/{field}`.
pub(super) async fn drop(
    state: &AppState,
    store: &dyn Store,
    raw_field: &str,
) -> Result<Response<ResponseBody>> {
    let field = decode_segment(raw_field)?;
    state.blocking.call(store.drop_index(&field)).await??;
    no_content()
}

//! The index routes: `GET /v1/indexes`, `PUT` and `DELETE /v1/indexes/{field}`. They act on
//! the whole store, never inside a transaction.

use asterope_core::{Result, Store};
use asterope_serialization::wire::{IndexDescription, IndexList};
use http::{Response, StatusCode};

use super::reply::{json_response, no_content};
use super::AppState;
use crate::body::ResponseBody;
use crate::request::decode_segment;

/// `GET /v1/indexes`: `{"indexes": [{"field", "state"}, ...]}`.
pub(super) async fn list(store: &dyn Store) -> Result<Response<ResponseBody>> {
    let indexes = store.list_indexes().await?;
    let indexes = indexes.iter().map(IndexDescription::from).collect();
    Ok(json_response(StatusCode::OK, &IndexList { indexes }))
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
        &IndexDescription::from(&info),
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

//! The transaction routes: `POST /v1/transactions` begins one, `POST
//! /v1/transactions/{id}/commit` commits it and `DELETE /v1/transactions/{id}` rolls it back
//! (the registry of open transactions is [`crate::transactions`]).

use asterope_core::{Error, Result};
use asterope_serialization::wire::{CommitReply, TransactionOpened};
use http::{Response, StatusCode};

use super::reply::{json_response, no_content};
use super::AppState;
use crate::body::ResponseBody;
use crate::transactions::Owner;

/// `POST /v1/transactions`: [`TransactionOpened`].
pub(super) async fn begin(state: &AppState, owner: Owner) -> Result<Response<ResponseBody>> {
    let tx = state.store.begin().await?;
    let snapshot = tx.snapshot_version();
    let id = state.transactions.insert(tx, owner)?;
    Ok(json_response(
        StatusCode::CREATED,
        &TransactionOpened {
            id,
            lease_seconds: state.transactions.lease().as_secs(),
            max_lifetime_seconds: state.transactions.max_lifetime().as_secs(),
            snapshot,
        },
    ))
}

/// `POST /v1/transactions/{id}/commit`: `{"version": V}`.
pub(super) async fn commit(
    state: &AppState,
    id: &str,
    owner: Owner,
) -> Result<Response<ResponseBody>> {
    let entry = state.transactions.remove(id, owner)?;
    let tx = entry
        .tx
        .lock()
        .await
        .take()
        .ok_or_else(|| Error::NotFound {
            key: format!("transaction {id}"),
        })?;
    let version = tx.commit().await?;
    Ok(json_response(StatusCode::OK, &CommitReply { version }))
}

/// `DELETE /v1/transactions/{id}`.
pub(super) async fn rollback(
    state: &AppState,
    id: &str,
    owner: Owner,
) -> Result<Response<ResponseBody>> {
    let entry = state.transactions.remove(id, owner)?;
    if let Some(tx) = entry.tx.lock().await.take() {
        tx.rollback().await?;
    }
    no_content()
}

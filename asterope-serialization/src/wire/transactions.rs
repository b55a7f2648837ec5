//! Bodies of the transaction routes: the reply of `POST /v1/transactions` and of
//! `POST /v1/transactions/{id}/commit` (rolling back replies `204` without a body).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The reply of `POST /v1/transactions`:
/// `{"id", "lease_seconds", "max_lifetime_seconds", "snapshot"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransactionOpened {
    /// The transaction's id, for `x-asterope-transaction` and its own routes.
    pub id: String,
    /// A transaction unused for this long is rolled back.
    pub lease_seconds: u64,
    /// A transaction ends this long after it began, however often it is used.
    pub max_lifetime_seconds: u64,
    /// The commit version the transaction reads at.
    pub snapshot: u64,
}

/// The reply of `POST /v1/transactions/{id}/commit`: `{"version": N}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommitReply {
    /// The commit version of every write of the transaction.
    pub version: u64,
}

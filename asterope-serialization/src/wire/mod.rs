//! The wire contract of the HTTP protocol: every route path, header name, request body and reply
//! body the server, the client and the command line exchange, as typed values with one serde
//! form each (see docs/PROTOCOL.md for the prose and `GET /v1/openapi.json` for the shapes).
//!
//! Reply structs list their fields in alphabetical order: that is the order the protocol has
//! always written them in, so replies keep the same bytes.
//!
//! One file per route family: [`paths`] and [`headers`] name things, [`objects`], [`query`],
//! [`indexes`], [`transactions`] and [`admin`] carry the bodies of their routes, and [`error`]
//! carries the error reply every route shares.

pub mod admin;
pub mod error;
pub mod headers;
pub mod indexes;
pub mod objects;
pub mod paths;
pub mod query;
pub mod transactions;

pub use admin::{CompactReply, HealthReply, StatsReply};
pub use error::{ErrorBody, ErrorReply};
pub use indexes::{IndexDescription, IndexList};
pub use objects::{ObjectDescription, Page};
pub use query::{CountReply, PlanReply, QueryRequest};
pub use transactions::{CommitReply, TransactionOpened};

use asterope_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The JSON text of a body (never fails for the wire types: they hold only strings, numbers
/// and JSON values).
pub fn to_json_text<T: Serialize>(body: &T) -> String {
    serde_json::to_string(body).unwrap_or_else(|e| {
        // Unreachable for the wire types; kept as an error reply rather than a panic.
        let reason = format!("encoding a reply: {e}");
        let reply = ErrorReply::from(&Error::Internal { reason });
        serde_json::to_string(&reply).unwrap_or_default()
    })
}

/// Reads a reply body (`what` names it in the error).
pub fn from_json_slice<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("malformed {what} reply: {e}")))
}

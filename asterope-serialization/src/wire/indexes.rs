//! Bodies of the index routes: one index (`PUT /v1/indexes/{field}`, one line of
//! `asterope index ls`) and the list `GET /v1/indexes` replies with.

use asterope_core::{IndexInfo, IndexState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One secondary index: `{"field", "state"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexDescription {
    /// The dotted field path it indexes.
    pub field: String,
    /// `building`, `ready` or `failed`.
    pub state: IndexState,
}

impl From<&IndexInfo> for IndexDescription {
    fn from(info: &IndexInfo) -> IndexDescription {
        IndexDescription {
            field: info.field.clone(),
            state: info.state,
        }
    }
}

impl From<IndexDescription> for IndexInfo {
    fn from(description: IndexDescription) -> IndexInfo {
        IndexInfo {
            field: description.field,
            state: description.state,
        }
    }
}

/// The reply of `GET /v1/indexes`: `{"indexes": [..]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexList {
    /// Every index, building or not.
    pub indexes: Vec<IndexDescription>,
}

//! The states a store reports about its indexes and query plans.
//!
//! On the wire (HTTP replies, CLI output) each is the lowercase string of its variant
//! (`"building"`, `"ready"`, `"failed"`; `"index"`, `"scan"`): serde renames keep that form, and
//! [`std::str::FromStr`] reads it back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// State of a secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IndexState {
    /// Filling from existing objects; queries scan meanwhile.
    Building,
    /// Used by queries.
    Ready,
    /// The build could not complete: queries scan, and the index can only be dropped.
    Failed,
}

/// How a query reads its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAccess {
    /// From the entries of one index.
    Index,
    /// By scanning every object (under the key prefix, if any).
    Scan,
}

impl IndexState {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexState::Building => "building",
            IndexState::Ready => "ready",
            IndexState::Failed => "failed",
        }
    }
}

impl PlanAccess {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanAccess::Index => "index",
            PlanAccess::Scan => "scan",
        }
    }
}

impl fmt::Display for IndexState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for PlanAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IndexState {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        [IndexState::Building, IndexState::Ready, IndexState::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| Error::internal(format!("unknown index state {text:?}")))
    }
}

impl FromStr for PlanAccess {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        [PlanAccess::Index, PlanAccess::Scan]
            .into_iter()
            .find(|access| access.as_str() == text)
            .ok_or_else(|| Error::internal(format!("unknown plan access {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON form is the wire string, and reads back.
    #[test]
    fn wire_forms_are_the_lowercase_names() {
        for state in [IndexState::Building, IndexState::Ready, IndexState::Failed] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<IndexState>(&json).unwrap(), state);
            assert_eq!(state.as_str().parse::<IndexState>().unwrap(), state);
        }
        for access in [PlanAccess::Index, PlanAccess::Scan] {
            let json = serde_json::to_string(&access).unwrap();
            assert_eq!(json, format!("\"{}\"", access.as_str()));
            assert_eq!(serde_json::from_str::<PlanAccess>(&json).unwrap(), access);
            assert_eq!(access.as_str().parse::<PlanAccess>().unwrap(), access);
        }
        assert!("Ready".parse::<IndexState>().is_err());
        assert!("".parse::<PlanAccess>().is_err());
    }
}

//! The JSON value of an [`ObjectInfo`], for callers that still build replies as JSON trees;
//! the form itself is [`ObjectDescription`].

use asterope_core::ObjectInfo;
use serde_json::Value as Json;

use crate::wire::ObjectDescription;

/// Describes an object as a JSON value.
pub fn object_info_to_json(info: &ObjectInfo) -> Json {
    serde_json::to_value(ObjectDescription::from(info)).unwrap_or_default()
}

//! The JSON form of an [`ObjectInfo`], shared by the CLI output, the server's replies and the
//! client: `{"key", "size", "sha256", "version", "created", "updated", "meta"}`.

use asterope_core::{Error, Key, ObjectInfo, Result, Timestamp};
use serde_json::{json, Value as Json};

use crate::json::{metadata_from_json, metadata_to_json};

/// Describes an object as JSON.
pub fn object_info_to_json(info: &ObjectInfo) -> Json {
    json!({
        "key": info.key.as_str(),
        "size": info.size,
        "sha256": info.sha256.to_hex(),
        "version": info.version,
        "created": info.created.to_rfc3339(),
        "updated": info.updated.to_rfc3339(),
        "meta": metadata_to_json(&info.metadata),
    })
}

/// Reads what [`object_info_to_json`] wrote.
pub fn object_info_from_json(json: &Json) -> Result<ObjectInfo> {
    let field = |name: &str| {
        json.get(name).ok_or_else(|| Error::InvalidArgument {
            reason: format!("object description lacks {name:?}"),
        })
    };
    let text = |name: &str| {
        field(name)?.as_str().ok_or_else(|| Error::InvalidArgument {
            reason: format!("object description field {name:?} is not a string"),
        })
    };
    let number = |name: &str| {
        field(name)?.as_u64().ok_or_else(|| Error::InvalidArgument {
            reason: format!("object description field {name:?} is not a number"),
        })
    };
    Ok(ObjectInfo {
        key: Key::new(text("key")?)?,
        size: number("size")?,
        sha256: text("sha256")?.parse()?,
        version: number("version")?,
        created: Timestamp::parse(text("created")?)?,
        updated: Timestamp::parse(text("updated")?)?,
        metadata: metadata_from_json(field("meta")?.clone())?,
    })
}

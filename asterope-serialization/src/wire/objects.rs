//! Bodies of the object routes: the description of one object (the reply of
//! `PUT /v1/objects/{key}`, `GET|PUT /v1/metadata/{key}`, and one line of `asterope ls`), and
//! the page of descriptions listings and queries reply with.

use asterope_core::{Error, Key, ObjectInfo, Result, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::json::{metadata_from_json, metadata_to_json};

/// One object: `{"created", "key", "meta", "sha256", "size", "updated", "version"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ObjectDescription {
    /// Creation time, RFC 3339.
    #[schema(format = DateTime)]
    pub created: String,
    /// The key.
    pub key: String,
    /// The metadata document, in the JSON bridge's form (`{"$date": ..}`, `{"$base64": ..}`,
    /// `{"$float": ..}` for values JSON lacks).
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
    /// SHA-256 of the bytes, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Last update time, RFC 3339.
    #[schema(format = DateTime)]
    pub updated: String,
    /// Commit version (0 for a write staged in a transaction).
    pub version: u64,
}

impl From<&ObjectInfo> for ObjectDescription {
    fn from(info: &ObjectInfo) -> ObjectDescription {
        ObjectDescription {
            created: info.created.to_rfc3339(),
            key: info.key.as_str().to_string(),
            meta: metadata_to_json(&info.metadata),
            sha256: info.sha256.to_hex(),
            size: info.size,
            updated: info.updated.to_rfc3339(),
            version: info.version,
        }
    }
}

impl TryFrom<ObjectDescription> for ObjectInfo {
    type Error = Error;

    fn try_from(description: ObjectDescription) -> Result<ObjectInfo> {
        Ok(ObjectInfo {
            key: Key::new(description.key)?,
            size: description.size,
            sha256: description.sha256.parse()?,
            version: description.version,
            created: Timestamp::parse(&description.created)?,
            updated: Timestamp::parse(&description.updated)?,
            metadata: metadata_from_json(description.meta)?,
        })
    }
}

impl ObjectDescription {
    /// The JSON line of an object (the CLI's output).
    pub fn json_of(info: &ObjectInfo) -> String {
        super::to_json_text(&ObjectDescription::from(info))
    }
}

/// One page of a listing or a query: `{"items": [..], "next": cursor | null}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page {
    /// The objects of this page, in key order (a listing) or the query's order.
    pub items: Vec<ObjectDescription>,
    /// Where the next page starts; `null` on the last page.
    pub next: Option<String>,
}

impl Page {
    /// The JSON text of a page, written item by item: each description exists only while it is
    /// written, and its object is dropped once written (a page held as descriptions, then as
    /// text, would cost several times its text).
    pub fn json_text(objects: Vec<ObjectInfo>, next: Option<&str>) -> String {
        let mut text = String::from("{\"items\":[");
        for (i, info) in objects.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&ObjectDescription::json_of(&info));
        }
        text.push_str("],\"next\":");
        text.push_str(&super::to_json_text(&next));
        text.push('}');
        text
    }

    /// The objects and the cursor of a page.
    pub fn into_objects(self) -> Result<(Vec<ObjectInfo>, Option<String>)> {
        let objects = self
            .items
            .into_iter()
            .map(ObjectInfo::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok((objects, self.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asterope_core::{Metadata, Sha256Digest, Value};

    fn info() -> ObjectInfo {
        let mut metadata = Metadata::new();
        metadata.insert("n".into(), Value::Int(3));
        ObjectInfo {
            key: Key::new("a/b").unwrap(),
            size: 5,
            sha256: Sha256Digest([7; 32]),
            version: 2,
            created: Timestamp::parse("2024-01-31T12:00:00Z").unwrap(),
            updated: Timestamp::parse("2024-02-01T00:00:00Z").unwrap(),
            metadata,
        }
    }

    #[test]
    fn a_description_keeps_its_field_order_and_round_trips() {
        let text = ObjectDescription::json_of(&info());
        let fields: Vec<_> = [
            "created", "key", "meta", "sha256", "size", "updated", "version",
        ]
        .iter()
        .map(|f| text.find(&format!("\"{f}\"")).unwrap())
        .collect();
        assert!(fields.windows(2).all(|w| w[0] < w[1]), "{text}");
        let back: ObjectDescription = serde_json::from_str(&text).unwrap();
        assert_eq!(ObjectInfo::try_from(back).unwrap(), info());
    }

    #[test]
    fn a_page_written_item_by_item_reads_back_as_a_page() {
        let text = Page::json_text(vec![info(), info()], Some("c"));
        let page: Page = serde_json::from_str(&text).unwrap();
        assert_eq!(page.next.as_deref(), Some("c"));
        assert_eq!(page.into_objects().unwrap().0, vec![info(), info()]);
        assert_eq!(Page::json_text(vec![], None), r#"{"items":[],"next":null}"#);
    }
}

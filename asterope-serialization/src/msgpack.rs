//! MessagePack encoding (rmp-serde), with a format-version byte for stored records and the
//! limits that every metadata document must respect.

use asterope_core::{Error, Metadata, Result, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest encoded metadata document accepted, in bytes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Deepest nesting of maps and arrays accepted in a metadata document.
pub const MAX_METADATA_DEPTH: usize = 32;

/// Encodes a value as MessagePack, structs as maps (field names kept, so records can grow).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::internal(format!("MessagePack encode: {e}")))
}

/// Deepest nesting of maps and arrays any MessagePack input may have: metadata may nest
/// [`MAX_METADATA_DEPTH`] levels, and records and requests wrap it in a few more. Deeper input is
/// refused before the (recursive) decoder sees it, so it cannot exhaust the stack.
pub(crate) const MAX_DECODE_DEPTH: usize = 64;

/// Decodes MessagePack; `what` names the structure in the error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    if !crate::MsgpackReader::new(bytes).nests_within(MAX_DECODE_DEPTH) {
        return Err(Error::InvalidArgument {
            reason: format!(
                "malformed MessagePack {what}: nested more than {MAX_DECODE_DEPTH} levels deep"
            ),
        });
    }
    rmp_serde::from_slice(bytes).map_err(|e| Error::InvalidArgument {
        reason: format!("malformed MessagePack {what}: {e}"),
    })
}

/// Encodes with a leading format-version byte.
pub fn encode_versioned<T: Serialize + ?Sized>(version: u8, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![version];
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| Error::internal(format!("MessagePack encode: {e}")))?;
    Ok(out)
}

/// Decodes what [`encode_versioned`] wrote, refusing unknown format versions with
/// [`Error::UnsupportedFormat`].
pub fn decode_versioned<T: DeserializeOwned>(supported: u8, bytes: &[u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&version, body)) if version == supported => decode(body, what),
        Some((&version, _)) => Err(Error::UnsupportedFormat {
            what: what.to_string(),
            found: version.into(),
            supported: supported.into(),
        }),
        None => Err(Error::InvalidArgument {
            reason: format!("empty {what}"),
        }),
    }
}

/// Checks a metadata document against the limits and returns its MessagePack encoding.
pub fn validate_metadata(metadata: &Metadata) -> Result<Vec<u8>> {
    let depth = metadata.values().map(Value::depth).max().unwrap_or(0) + 1;
    if depth > MAX_METADATA_DEPTH {
        return Err(Error::InvalidMetadata {
            reason: format!("nested {depth} levels deep; the limit is {MAX_METADATA_DEPTH}"),
        });
    }
    if let Some(reason) = unaddressable_field(metadata) {
        return Err(Error::InvalidMetadata { reason });
    }
    let encoded = encode(metadata)?;
    if encoded.len() > MAX_METADATA_BYTES {
        return Err(Error::InvalidMetadata {
            reason: format!(
                "{} bytes encoded; the limit is {MAX_METADATA_BYTES}",
                encoded.len()
            ),
        });
    }
    Ok(encoded)
}

/// Why a field of the document could not be queried, or would not read back as itself, if one
/// cannot: a name, at any depth, that is empty or holds `.` (the path separator) or NUL; a
/// top-level name starting with `$` (filters read it as an operator); a map whose one entry is
/// `$date`, `$base64` or `$float` with a string (JSON reads it back as a tagged value).
fn unaddressable_field(metadata: &Metadata) -> Option<String> {
    if let Some(name) = metadata.keys().find(|name| name.starts_with('$')) {
        return Some(format!(
            "field name {name:?} starts with `$`, which filters read as an operator"
        ));
    }
    unaddressable_name(metadata, "")
}

fn unaddressable_name(map: &Metadata, parent: &str) -> Option<String> {
    let mut entries = map.iter();
    if let (Some((tag, Value::String(_))), None) = (entries.next(), entries.next()) {
        if crate::json::TAGS.contains(&tag.as_str()) {
            return Some(format!(
                "the map at {parent:?} has the one entry {tag:?}, which JSON reads back as a \
                 tagged {tag} value"
            ));
        }
    }
    for (name, value) in map {
        let path = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        let why = if name.is_empty() {
            Some("is empty")
        } else if name.contains('.') {
            Some("contains `.`, the separator of field paths")
        } else if name.contains('\0') {
            Some("contains NUL")
        } else {
            None
        };
        if let Some(why) = why {
            return Some(format!("field name {name:?} at {path:?} {why}"));
        }
        if let Some(reason) = unaddressable_value(value, &path) {
            return Some(reason);
        }
    }
    None
}

fn unaddressable_value(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Map(map) => unaddressable_name(map, path),
        Value::Array(items) => items
            .iter()
            .find_map(|item| unaddressable_value(item, path)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asterope_core::Timestamp;
    use std::collections::BTreeMap;

    #[test]
    fn deeply_nested_input_is_refused_before_decoding() {
        // A 2 MB stack does not survive a recursive decode of a million nested arrays.
        let mut bytes = vec![0x91; 1_000_000];
        bytes.push(0xc0);
        let refused = decode::<serde_json::Value>(&bytes, "request").unwrap_err();
        assert_eq!(refused.code(), "invalid_argument");
        assert!(refused.to_string().contains("nested more than 64 levels"));
        let mut ok = vec![0x91; 40];
        ok.push(0xc0);
        assert!(decode::<serde_json::Value>(&ok, "request").is_ok());
    }

    #[test]
    fn non_finite_floats_are_metadata_like_any_other() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut m = Metadata::new();
            m.insert("f".into(), Value::Array(vec![Value::Float(x)]));
            assert!(validate_metadata(&m).is_ok(), "{x}");
        }
    }

    fn sample() -> Metadata {
        let mut nested = BTreeMap::new();
        nested.insert("series".into(), Value::Int(3));
        let mut m = Metadata::new();
        m.insert("patient_id".into(), "12345".into());
        m.insert("slices".into(), Value::Int(-42));
        m.insert("dose".into(), Value::Float(1.5));
        m.insert("raw".into(), Value::Binary(vec![0, 1, 255]));
        m.insert(
            "flags".into(),
            Value::Array(vec![Value::Bool(true), Value::Nil]),
        );
        m.insert("study".into(), Value::Map(nested));
        m.insert(
            "date".into(),
            Value::Timestamp(Timestamp::parse("2024-03-01T10:20:30.123456789Z").unwrap()),
        );
        m
    }

    #[test]
    fn metadata_round_trips_every_type() {
        let m = sample();
        let bytes = validate_metadata(&m).unwrap();
        let back: Metadata = decode(&bytes, "metadata").unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn timestamp_uses_the_msgpack_extension() {
        let t = Timestamp::parse("2024-03-01T00:00:00Z").unwrap();
        let bytes = encode(&Value::Timestamp(t)).unwrap();
        // ext 8 (0xc7), length 12, type -1 (0xff).
        assert_eq!(&bytes[..3], &[0xc7, 12, 0xff]);
        // The 64-bit timestamp form written by other MessagePack libraries decodes too.
        let secs = u64::try_from(t.secs).unwrap();
        let mut ts64 = vec![0xd7, 0xff];
        ts64.extend_from_slice(&secs.to_be_bytes());
        assert_eq!(
            decode::<Value>(&ts64, "value").unwrap(),
            Value::Timestamp(t)
        );
    }

    #[test]
    fn limits_are_enforced() {
        let mut deep = Value::Int(1);
        for _ in 0..40 {
            deep = Value::Array(vec![deep]);
        }
        let mut m = Metadata::new();
        m.insert("deep".into(), deep);
        assert_eq!(
            validate_metadata(&m).unwrap_err().code(),
            "invalid_metadata"
        );

        let mut big = Metadata::new();
        big.insert("blob".into(), Value::Binary(vec![7; MAX_METADATA_BYTES]));
        assert_eq!(
            validate_metadata(&big).unwrap_err().code(),
            "invalid_metadata"
        );
    }

    #[test]
    fn field_names_a_query_cannot_address_are_refused() {
        let doc = |name: &str, value: Value| Metadata::from([(name.into(), value)]);
        let nested = |name: &str| Value::Map(Metadata::from([(name.into(), Value::Int(1))]));
        let refused = [
            doc("a.b", Value::Int(1)),
            doc("a\0b", Value::Int(1)),
            doc("", Value::Int(1)),
            doc("$gt", Value::Int(1)),
            doc("study", nested("series.n")),
            doc("study", nested("x\0")),
            doc("study", nested("")),
            doc("list", Value::Array(vec![Value::Int(1), nested("a.b")])),
            doc(
                "d",
                Value::Map(Metadata::from([("$date".into(), "x".into())])),
            ),
        ];
        for metadata in refused {
            let err = validate_metadata(&metadata).unwrap_err();
            assert_eq!(err.code(), "invalid_metadata", "{metadata:?}");
        }
        let accepted = [
            doc("a-b c/é", Value::Int(1)),
            doc("study", nested("$schema")),
            doc(
                "d",
                Value::Map(Metadata::from([("$date".into(), Value::Int(1))])),
            ),
        ];
        for metadata in accepted {
            assert!(validate_metadata(&metadata).is_ok(), "{metadata:?}");
        }
    }

    #[test]
    fn versioned_records_refuse_unknown_versions() {
        let bytes = encode_versioned(1, &sample()).unwrap();
        assert!(decode_versioned::<Metadata>(1, &bytes, "record").is_ok());
        let err = decode_versioned::<Metadata>(2, &bytes, "record").unwrap_err();
        assert_eq!(err.code(), "unsupported_format");
        assert!(decode::<Metadata>(&[0xc1], "metadata").is_err());
    }
}

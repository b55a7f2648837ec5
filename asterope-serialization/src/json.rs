//! The JSON bridge: metadata documents to and from JSON.
//!
//! JSON has no timestamp or binary type, so they use tagged objects in the style of MongoDB's
//! extended JSON: `{"$date": "2024-01-31T12:00:00Z"}` and `{"$base64": "AAEC"}`. Every other JSON
//! value maps to the obvious [`Value`]. Integers are signed 64-bit: an integer outside that
//! range is refused (never read as a nearby float); a number written with a decimal point or
//! an exponent is a float.

use std::collections::BTreeMap;

use asterope_core::{Error, Metadata, Result, Timestamp, Value};
use base64::Engine;
use serde_json::Value as Json;

use crate::msgpack::MAX_METADATA_DEPTH;
use crate::strict_json::{integer_out_of_range, parse_json};

/// Parses a JSON object text into a metadata document.
pub fn metadata_from_json_str(text: &str) -> Result<Metadata> {
    let json = parse_json(text.as_bytes()).map_err(|reason| Error::InvalidMetadata { reason })?;
    metadata_from_json(json)
}

/// Converts a JSON object into a metadata document.
pub fn metadata_from_json(json: Json) -> Result<Metadata> {
    match value_from_json(json, 0)? {
        Value::Map(map) => Ok(map),
        other => Err(Error::InvalidMetadata {
            reason: format!("metadata must be a JSON object, got {}", value_kind(&other)),
        }),
    }
}

/// Converts a metadata document to a JSON object.
pub fn metadata_to_json(metadata: &Metadata) -> Json {
    Json::Object(
        metadata
            .iter()
            .map(|(k, v)| (k.to_string(), value_to_json(v)))
            .collect(),
    )
}

/// Converts one value to JSON.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        // JSON has no NaN or infinity (`Json::from` would make them null): tagged instead.
        Value::Float(x) if !x.is_finite() => tagged("$float", non_finite_name(*x).to_string()),
        Value::Float(x) => Json::from(*x),
        Value::String(s) => Json::String(s.to_string()),
        Value::Binary(b) => tagged(
            "$base64",
            base64::engine::general_purpose::STANDARD.encode(b),
        ),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(map) => metadata_to_json(map),
        Value::Timestamp(t) => tagged("$date", t.to_rfc3339()),
    }
}

/// Converts one JSON value to a [`Value`] with the bridge's rules (tagged `$date`/`$base64`
/// objects, the nesting limit); used for the literal operands of filters. Errors are
/// [`Error::InvalidMetadata`]; the filter parser rewraps them with the operand's position.
pub(crate) fn value_from_json_literal(json: Json) -> Result<Value> {
    value_from_json(json, 0)
}

/// The tags of the bridge's tagged literals.
pub(crate) const TAGS: [&str; 3] = ["$date", "$base64", "$float"];

/// Whether a JSON object is one of the bridge's tagged literals (`{"$date": ".."}`,
/// `{"$base64": ".."}`) rather than an ordinary object.
pub(crate) fn is_tagged_literal(map: &serde_json::Map<String, Json>) -> bool {
    let mut entries = map.iter();
    matches!(
        (entries.next(), entries.next()),
        (Some((tag, Json::String(_))), None) if TAGS.contains(&tag.as_str())
    )
}

/// The `$float` spelling of a float JSON numbers cannot hold.
fn non_finite_name(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// `{"$float": "NaN"}` and the like, for floats JSON numbers cannot hold.
pub(crate) fn non_finite_json(x: f64) -> Json {
    tagged("$float", non_finite_name(x).to_string())
}

fn tagged(tag: &str, text: String) -> Json {
    let mut map = serde_json::Map::new();
    map.insert(tag.to_string(), Json::String(text));
    Json::Object(map)
}

fn value_from_json(json: Json, depth: usize) -> Result<Value> {
    if depth > MAX_METADATA_DEPTH {
        return Err(Error::InvalidMetadata {
            reason: format!("nested more than {MAX_METADATA_DEPTH} levels deep"),
        });
    }
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => {
                return Err(Error::InvalidMetadata {
                    reason: integer_out_of_range(u),
                })
            }
            (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.into()),
        Json::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| value_from_json(item, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Json::Object(map) => {
            if let Some(special) = tagged_value(&map)? {
                return Ok(special);
            }
            let mut out = BTreeMap::new();
            for (k, v) in map {
                out.insert(k.into(), value_from_json(v, depth + 1)?);
            }
            Value::Map(out)
        }
    })
}

fn tagged_value(map: &serde_json::Map<String, Json>) -> Result<Option<Value>> {
    let mut entries = map.iter();
    let (Some((tag, Json::String(text))), None) = (entries.next(), entries.next()) else {
        return Ok(None);
    };
    let invalid = |reason: String| Error::InvalidMetadata { reason };
    match tag.as_str() {
        "$date" => Timestamp::parse(text)
            .map(|t| Some(Value::Timestamp(t)))
            .map_err(|e| invalid(e.to_string())),
        "$base64" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(|b| Some(Value::Binary(b)))
            .map_err(|e| invalid(format!("invalid $base64 value: {e}"))),
        "$float" => match text.as_str() {
            "NaN" => Ok(Some(Value::Float(f64::NAN))),
            "Infinity" => Ok(Some(Value::Float(f64::INFINITY))),
            "-Infinity" => Ok(Some(Value::Float(f64::NEG_INFINITY))),
            _ => Err(invalid(format!(
                "invalid $float value {text:?}: NaN, Infinity or -Infinity"
            ))),
        },
        _ => Ok(None),
    }
}

/// How a value's type is named in error messages.
pub(crate) fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Binary(_) => "binary",
        Value::Array(_) => "an array",
        Value::Map(_) => "an object",
        Value::Timestamp(_) => "a timestamp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_with_tagged_types() {
        let text = r#"{"patient_id":"12345","study_date":{"$date":"2024-01-31T12:00:00Z"},
            "raw":{"$base64":"AAEC"},"slices":120,"dose":0.5,"tags":["a","b"],"n":{"x":null}}"#;
        let m = metadata_from_json_str(text).unwrap();
        assert_eq!(m["slices"], Value::Int(120));
        assert_eq!(m["raw"], Value::Binary(vec![0, 1, 2]));
        assert!(matches!(m["study_date"], Value::Timestamp(_)));
        let back = metadata_from_json(metadata_to_json(&m)).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn bad_json_is_invalid_metadata() {
        for bad in ["[1,2]", "\"x\"", "{", r#"{"d":{"$date":"yesterday"}}"#] {
            let err = metadata_from_json_str(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_metadata", "{bad}");
        }
        let bomb = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let err = metadata_from_json_str(&format!("{{\"a\":{bomb}}}")).unwrap_err();
        assert_eq!(err.code(), "invalid_metadata");
    }

    #[test]
    fn integers_outside_i64_are_refused_never_rounded() {
        for text in [
            r#"{"n":18446744073709551615}"#,
            r#"{"n":9223372036854775808}"#,
            r#"{"n":-9223372036854775809}"#,
            r#"{"a":[1,{"b":99999999999999999999999}]}"#,
        ] {
            let err = metadata_from_json_str(text).unwrap_err();
            assert_eq!(err.code(), "invalid_metadata", "{text}");
            assert!(err.to_string().contains("64-bit"), "{err}");
        }
        // The same value built as JSON (e.g. decoded from MessagePack) is refused too.
        let json = serde_json::json!({ "n": u64::MAX });
        assert_eq!(
            metadata_from_json(json).unwrap_err().code(),
            "invalid_metadata"
        );
        // The edges of the range stay exact; floats, and digits inside strings, are untouched.
        let m = metadata_from_json_str(
            r#"{"max":9223372036854775807,"min":-9223372036854775808,"f":1.8446744073709552e19,
                "g":-0.5E3,"s":"18446744073709551615 \" 99999999999999999999","k\"1e99999999999999999999":1}"#,
        )
        .unwrap();
        assert_eq!(m["max"], Value::Int(i64::MAX));
        assert_eq!(m["min"], Value::Int(i64::MIN));
        assert_eq!(m["f"], Value::Float(1.8446744073709552e19));
        assert_eq!(m["g"], Value::Float(-500.0));
        assert_eq!(
            m["s"],
            Value::from("18446744073709551615 \" 99999999999999999999")
        );
    }
}

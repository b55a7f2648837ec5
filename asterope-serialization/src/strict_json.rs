//! JSON text read exactly. `serde_json` quietly settles two things a request should not leave
//! open: an object that repeats a key keeps the last value, and an integer literal too large
//! for 64 bits becomes the nearest float. Here both are refused with a message saying so.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

/// Parses JSON text like `serde_json`, except that what it would read one way among several,
/// silently, is refused: an object repeating a key (the last would win), and an integer literal
/// outside the signed 64-bit range (it would become a nearby float).
pub fn parse_json(text: &[u8]) -> std::result::Result<Json, String> {
    let json = parse_unrepeated(text).map_err(|e| format!("not valid JSON: {e}"))?;
    refuse_oversized_integers(text)?;
    Ok(json)
}

/// JSON text as `serde_json` reads it, but refusing an object that repeats a key; the error is
/// `serde_json`'s own, with its line and column.
pub(crate) fn parse_unrepeated(text: &[u8]) -> serde_json::Result<Json> {
    serde_json::from_slice(text).map(|Unrepeated(json)| json)
}

/// Decodes a MessagePack request body into JSON, refusing a map that repeats a key, as
/// [`parse_json`] does for JSON text.
pub fn parse_msgpack_as_json(bytes: &[u8]) -> Result<Json, String> {
    crate::decode::<Unrepeated>(bytes, "request")
        .map(|Unrepeated(json)| json)
        .map_err(|e| e.to_string())
}

/// Refuses valid JSON text holding an integer literal outside the signed 64-bit range.
pub(crate) fn refuse_oversized_integers(text: &[u8]) -> std::result::Result<(), String> {
    match oversized_integer(text) {
        Some(literal) => Err(integer_out_of_range(literal)),
        None => Ok(()),
    }
}

pub(crate) fn integer_out_of_range(literal: impl std::fmt::Display) -> String {
    format!(
        "integer {literal} is outside the signed 64-bit range of metadata integers; write it \
         as a string, or as a float with a decimal point or an exponent"
    )
}

/// The first integer literal (no `.`, `e` or `E`) of valid JSON text that does not fit an
/// `i64`. Outside strings, only numbers hold `-` or digits.
fn oversized_integer(text: &[u8]) -> Option<String> {
    let (mut in_string, mut escaped) = (false, false);
    let mut number_start = None;
    let end = std::iter::once((text.len(), &b' '));
    for (i, &byte) in text.iter().enumerate().chain(end) {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if let Some(start) = number_start {
            if byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E') {
                continue;
            }
            number_start = None;
            let literal = std::str::from_utf8(text.get(start..i)?).ok()?;
            let is_integer = !literal.contains(['.', 'e', 'E']);
            if is_integer && literal.parse::<i64>().is_err() {
                return Some(literal.to_string());
            }
        }
        match byte {
            b'"' => in_string = true,
            b'-' | b'0'..=b'9' => number_start = Some(i),
            _ => {}
        }
    }
    None
}

/// A JSON value none of whose objects repeats a key.
struct Unrepeated(Json);

impl<'de> Deserialize<'de> for Unrepeated {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unrepeated, D::Error> {
        deserializer
            .deserialize_any(UnrepeatedVisitor)
            .map(Unrepeated)
    }
}

struct UnrepeatedVisitor;

impl<'de> Visitor<'de> for UnrepeatedVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::from(n))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Json, E> {
        // JSON has no NaN or infinity (`Json::from` would make them null): the bridge's tag.
        Ok(serde_json::Number::from_f64(x)
            .map(Json::Number)
            .unwrap_or_else(|| crate::json::non_finite_json(x)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(Unrepeated(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Json, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Unrepeated(value) = access.next_value()?;
            if map.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears more than once in one object"
                )));
            }
        }
        Ok(Json::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"[{"x":[{"k":1,"k":2}]}]"#,
        ] {
            let err = parse_json(text.as_bytes()).unwrap_err();
            assert!(err.contains("more than once"), "{text}: {err}");
        }
        let json = parse_json(br#"{"a":{"b":1},"c":[{"b":2},{"b":3}],"d":null}"#).unwrap();
        assert_eq!(json["c"][1]["b"], 3);
        assert!(parse_json(b"{").is_err());
        let packed = [0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02]; // {"a": 1, "a": 2}
        let err = parse_msgpack_as_json(&packed).unwrap_err();
        assert!(err.contains("more than once"), "{err}");
        let packed = [0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0x02];
        assert_eq!(parse_msgpack_as_json(&packed).unwrap()["b"], 2);
    }

    #[test]
    fn non_finite_messagepack_floats_keep_their_value() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut packed = vec![0x81, 0xa1, b'f', 0xcb];
            packed.extend_from_slice(&x.to_be_bytes());
            let json = parse_msgpack_as_json(&packed).unwrap();
            let meta = crate::metadata_from_json(json).unwrap();
            match meta.get("f") {
                Some(asterope_core::Value::Float(y)) => {
                    assert!(x.is_nan() && y.is_nan() || x == *y, "{x}")
                }
                other => panic!("{x} read back as {other:?}"),
            }
        }
    }

    #[test]
    fn integers_outside_i64_are_refused() {
        for text in [
            "18446744073709551615",
            "[-9223372036854775809]",
            r#"{"a":1e5,"b":99999999999999999999}"#,
        ] {
            let err = parse_json(text.as_bytes()).unwrap_err();
            assert!(err.contains("64-bit"), "{text}: {err}");
        }
        let json = parse_json(
            br#"[9223372036854775807,-9223372036854775808,1e30,"18446744073709551615"]"#,
        )
        .unwrap();
        assert_eq!(json[0], i64::MAX);
        assert_eq!(json[1], i64::MIN);
    }
}

//! Metadata in an HTTP header (`x-asterope-meta`): the one encoding both the server and the
//! client use, and the header size it needs.
//!
//! A header value must be visible ASCII to be read back by ordinary HTTP stacks (`http`'s
//! `HeaderValue::to_str`, curl, browsers), so the JSON text escapes every character outside
//! printable ASCII as `\uXXXX` (UTF-16 surrogate pairs above the Basic Multilingual Plane),
//! DEL (0x7F) included. Any JSON parser reads the result back to the same text.
//!
//! ## How large the header can get
//!
//! The metadata limit ([`MAX_METADATA_BYTES`]) counts the MessagePack encoding. Escaped JSON is
//! larger, and by how much depends on the values. Per element, counting its `,` separator:
//! an empty binary is 2 bytes of MessagePack and `{"$base64":""},` (15 bytes) of JSON, 7.5
//! times as much, the worst case; a string byte escaped as `\u0001` or a `false,` in an array
//! are 6 times; non-ASCII text is at most 3 times (`é`: 2 bytes to `\u00e9`; emoji: 4 bytes to
//! 12); numbers, timestamps and longer binaries grow less. Containers add at most one byte of
//! JSON (`[]`, `{}`) per byte of their MessagePack header. So the escaped JSON of any valid
//! document is under 8 times its MessagePack size: [`MAX_METADATA_HEADER_BYTES`].
//! [`MAX_HEADER_LIST_BYTES`], the HTTP/2 header list limit of both ends, adds room for every
//! other header.

use asterope_core::{Error, Metadata, Result};

use crate::json::{metadata_from_json_str, metadata_to_json};
use crate::msgpack::MAX_METADATA_BYTES;

/// Largest `x-asterope-meta` value any valid metadata document produces (see the module
/// documentation for the bound).
pub const MAX_METADATA_HEADER_BYTES: usize = 8 * MAX_METADATA_BYTES;

/// HTTP/2 header list limit (`SETTINGS_MAX_HEADER_LIST_SIZE`) of the server and the client:
/// the largest metadata header plus 16 KiB for the other headers (a 1024-byte key escaped in
/// the path is at most 3 KiB; HTTP/2 counts 32 bytes of overhead per header).
pub const MAX_HEADER_LIST_BYTES: usize = MAX_METADATA_HEADER_BYTES + 16 * 1024;

/// The metadata document as JSON in visible ASCII, ready for the `x-asterope-meta` header.
pub fn metadata_to_header_json(metadata: &Metadata) -> String {
    escape_to_ascii(&metadata_to_json(metadata).to_string())
}

/// Reads an `x-asterope-meta` header value: escaped ASCII JSON as
/// [`metadata_to_header_json`] writes it, or raw UTF-8 JSON as some third-party clients send.
/// Anything else is [`Error::InvalidMetadata`].
pub fn metadata_from_header_json(value: &[u8]) -> Result<Metadata> {
    let text = std::str::from_utf8(value).map_err(|e| Error::InvalidMetadata {
        reason: format!("the metadata header is not UTF-8: {e}"),
    })?;
    metadata_from_json_str(text)
}

/// Escapes every character of a JSON text outside printable ASCII. Outside strings JSON is
/// printable ASCII already, so only string contents change; serde_json has already escaped
/// the control characters below 0x20.
fn escape_to_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut units = [0u16; 2];
    for c in json.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
            continue;
        }
        for unit in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::validate_metadata;
    use asterope_core::{Timestamp, Value};

    fn is_visible_ascii(text: &str) -> bool {
        text.bytes().all(|b| (0x20..0x7f).contains(&b))
    }

    #[test]
    fn header_json_is_visible_ascii_and_round_trips() {
        let mut meta = Metadata::new();
        for (i, text) in [
            "Zoë",
            "漢字",
            "🩻 𝄞 👩🏽‍⚕️",
            "\u{7f}\u{1}\t\n\"\\",
            "\u{ffff}\u{10ffff}",
        ]
        .iter()
        .enumerate()
        {
            meta.insert(format!("k{i} {text}").as_str().into(), (*text).into());
        }
        let header = metadata_to_header_json(&meta);
        assert!(is_visible_ascii(&header), "{header}");
        assert!(
            header.contains("\\ud83e\\ude7b"),
            "surrogate pair: {header}"
        );
        assert_eq!(metadata_from_header_json(header.as_bytes()).unwrap(), meta);
        let raw = metadata_to_json(&meta).to_string();
        assert_eq!(metadata_from_header_json(raw.as_bytes()).unwrap(), meta);
    }

    #[test]
    fn header_that_is_not_utf8_is_invalid_metadata() {
        let err = metadata_from_header_json(b"{\"a\":\"\xff\"}").unwrap_err();
        assert_eq!(err.code(), "invalid_metadata");
    }

    /// Fills a document with copies of `element` in arrays until its MessagePack is as close
    /// to the limit as the element allows.
    fn filled_with(element: Value) -> Metadata {
        let one = validate_metadata(&[("a".into(), Value::Array(vec![element.clone()]))].into())
            .unwrap()
            .len();
        let two = validate_metadata(
            &[(
                "a".into(),
                Value::Array(vec![element.clone(), element.clone()]),
            )]
            .into(),
        )
        .unwrap()
        .len();
        let each = two - one;
        let mut count = (MAX_METADATA_BYTES - 8) / each;
        loop {
            let meta: Metadata = [("a".into(), Value::Array(vec![element.clone(); count]))].into();
            if validate_metadata(&meta).is_ok() {
                return meta;
            }
            count -= 1;
        }
    }

    #[test]
    fn largest_documents_fit_the_header_limit() {
        let timestamp = Timestamp::parse("2024-01-31T12:00:00.123456789Z").unwrap();
        let cases = [
            Value::Binary(vec![]),
            Value::Binary(vec![0]),
            Value::Bool(false),
            Value::Nil,
            Value::Int(-32),
            Value::Float(-2.2250738585072014e-308),
            Value::Timestamp(timestamp),
            Value::String("\u{1}".into()),
            Value::String("\u{1}".repeat(1000).as_str().into()),
            Value::String("é".repeat(1000).as_str().into()),
            Value::String("🩻".repeat(1000).as_str().into()),
            Value::Map(Metadata::new()),
            Value::Array(vec![]),
        ];
        let mut worst = 0.0f64;
        for element in cases {
            let meta = filled_with(element.clone());
            let packed = validate_metadata(&meta).unwrap().len();
            let header = metadata_to_header_json(&meta).len();
            assert!(
                header <= MAX_METADATA_HEADER_BYTES,
                "{element:?}: {header} bytes of header"
            );
            worst = worst.max(header as f64 / packed as f64);
        }
        // The bound is close to what a real document reaches.
        assert!(worst > 7.0, "worst expansion {worst}");
    }
}

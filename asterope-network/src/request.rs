//! Reading a request exactly: its target (key, index field, listing parameters) and its
//! headers (conditions, ranges, which `x-asterope-` headers it may carry, and where). Whatever
//! could be read in more than one way, or would be ignored, is refused with a clear error
//! instead: a repeated header or parameter, an unknown `x-asterope-` header, a header or query
//! string where it means nothing, a malformed percent escape, a number with a sign.

use asterope_core::protocol::parse_decimal;
use asterope_core::{ByteRange, Condition, Error, Key, Result};
use asterope_serialization::wire::headers::*;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use crate::routes::Route;

/// A percent-decoded path segment naming an index's field; one that is not UTF-8 is refused
/// rather than altered.
pub(crate) fn decode_segment(raw: &str) -> Result<String> {
    percent_decode_text(raw).ok_or_else(|| Error::InvalidQuery {
        reason: format!("index field {raw:?} is not percent-encoded UTF-8"),
    })
}

pub(crate) fn parse_key(raw: &str) -> Result<Key> {
    let bytes = percent_decode_exact(raw).ok_or_else(|| Error::InvalidKey {
        reason: format!("{raw:?} has a `%` not followed by two hex digits (`%` is written %25)"),
    })?;
    Key::from_bytes(&bytes)
}

/// Percent-decodes, refusing a `%` that is not followed by two hex digits (which a lenient
/// decoder would keep as a literal `%`, reading the text one way among several).
pub(crate) fn percent_decode_exact(raw: &str) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let hex_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
    let well_formed = bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'%' || (hex_at(i + 1) && hex_at(i + 2)));
    well_formed.then(|| percent_decode_str(raw).collect())
}

/// Percent-decoded UTF-8 text, or `None`.
pub(crate) fn percent_decode_text(raw: &str) -> Option<String> {
    String::from_utf8(percent_decode_exact(raw)?).ok()
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| Error::InvalidArgument {
                reason: format!("header {name} is not visible ASCII"),
            })
        })
        .transpose()
}

/// The `x-asterope-*` headers a request may carry.
pub(crate) const REQUEST_HEADERS: [&str; 5] = [
    HEADER_META,
    HEADER_SHA256,
    HEADER_IF_VERSION,
    HEADER_TRANSACTION,
    HEADER_VERIFY,
];

/// Refuses the headers that would otherwise be read one way among several, silently: one that
/// Asterope reads given more than once (the first would win), and an unknown `x-asterope-`
/// header (a misspelt `x-asterope-if-version` would make a conditional write unconditional).
pub(crate) fn check_request_headers(headers: &HeaderMap) -> Result<()> {
    for header in headers.keys() {
        let name = header.as_str();
        let ours = name.starts_with("x-asterope-");
        if ours && !REQUEST_HEADERS.contains(&name) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "unknown header {name}; requests may carry {}",
                    REQUEST_HEADERS.join(", ")
                ),
            });
        }
        let read_once = [RANGE, AUTHORIZATION, CONTENT_TYPE, CONTENT_LENGTH].contains(header);
        if (ours || read_once) && headers.get_all(name).iter().nth(1).is_some() {
            return Err(Error::InvalidArgument {
                reason: format!("header {name} appears more than once"),
            });
        }
    }
    Ok(())
}

/// Refuses an `x-asterope-` header sent where it means nothing, rather than ignoring it: a
/// digest or metadata on anything but an upload, a version condition on anything but a write,
/// a verification choice on anything but a download.
pub(crate) fn check_headers_apply(
    route: Route,
    method: &Method,
    headers: &HeaderMap,
) -> Result<()> {
    let upload = matches!((route, method), (Route::Object, &Method::PUT));
    let conditional = upload
        || matches!(
            (route, method),
            (Route::Object, &Method::DELETE) | (Route::Metadata, &Method::PUT)
        );
    let download = matches!(
        (route, method),
        (Route::Object, &Method::GET | &Method::HEAD)
    );
    let rules = [
        (HEADER_META, upload),
        (HEADER_SHA256, upload),
        (HEADER_IF_VERSION, conditional),
        (HEADER_VERIFY, download),
    ];
    match rules
        .iter()
        .find(|(name, applies)| !applies && headers.contains_key(*name))
    {
        Some((name, _)) => Err(Error::InvalidArgument {
            reason: format!("{name} means nothing on {method} of this route"),
        }),
        None => Ok(()),
    }
}

/// Refuses a query string on a route that reads none (all but the listing, health and
/// metrics): an unescaped `?` in a key would otherwise silently name another object.
pub(crate) fn check_query_string(route: Route, uri: &http::Uri) -> Result<()> {
    let reads_parameters = matches!(route, Route::List | Route::Health | Route::Metrics);
    match uri.query() {
        Some(query) if !query.is_empty() && !reads_parameters => Err(Error::InvalidArgument {
            reason: format!(
                "this route takes no query parameters (got {query:?}); a `?` in a key is \
                 written %3F"
            ),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn condition(headers: &HeaderMap) -> Result<Condition> {
    let if_version = header_str(headers, HEADER_IF_VERSION)?
        .map(|v| {
            parse_decimal(v.trim()).ok_or_else(|| Error::InvalidArgument {
                reason: format!("{HEADER_IF_VERSION} must be a non-negative integer, in digits"),
            })
        })
        .transpose()?;
    Ok(Condition { if_version })
}

/// Parses a single `bytes=` range (the unit is case-insensitive); multiple ranges, other
/// units and anything that is not exactly `START-END`, `START-` or `-SUFFIX` in ASCII digits
/// are refused with `invalid_range` (`416`), never ignored or read loosely.
pub(crate) fn parse_range_header(value: &str) -> Result<ByteRange> {
    let value = value.trim();
    let spec = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .and_then(|_| value.get(6..))
        .ok_or_else(|| Error::InvalidRange {
            reason: format!("unsupported range unit in {value:?}; use bytes="),
        })?;
    if spec.contains(',') {
        return Err(Error::InvalidRange {
            reason: "multiple ranges are not supported".into(),
        });
    }
    ByteRange::parse(spec)
}

/// The `limit` of a listing: a page size of at least 1 (leaving it out gives the default).
pub(crate) fn list_limit(value: &str) -> Result<usize> {
    let invalid = |why: &str| Error::InvalidArgument {
        reason: format!("limit {value:?} {why}"),
    };
    match parse_decimal(value) {
        None => Err(invalid("is not a non-negative integer")),
        Some(0) => Err(invalid(
            "asks for an empty page; leave it out for the default",
        )),
        Some(n) => usize::try_from(n).map_err(|_| invalid("is too large")),
    }
}

/// Decodes `a=b&c=d` (percent-encoding and `+` for space). A parameter given twice, or whose
/// name or value is not percent-encoded UTF-8, is refused: neither is silently read as
/// something else.
pub(crate) fn form_pairs(query: &str) -> Result<Vec<(String, String)>> {
    let decode = |s: &str| {
        percent_decode_text(&s.replace('+', " ")).ok_or_else(|| Error::InvalidArgument {
            reason: format!("query parameter {s:?} is not percent-encoded UTF-8"),
        })
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?;
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(Error::InvalidArgument {
                reason: format!("query parameter {name:?} is given more than once"),
            });
        }
        pairs.push((name, decode(value)?));
    }
    Ok(pairs)
}

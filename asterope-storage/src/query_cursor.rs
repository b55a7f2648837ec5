//! Page cursors: where a page of a query resumes, bound to the query that issued it.
//!
//! A cursor is hex of the MessagePack array `[shape, key]` (`[shape, key, sort value]` for a
//! sorted query). Invariants kept here: a cursor is accepted only for a query of the same shape
//! (filter, key prefix and sort; [`query_shape`]), and only in the exact text issued, so no
//! other text is ever read as some position.

use asterope_core::{Error, Key, Query, Result, Value};
use asterope_serialization::{decode, encode, query_to_json};
use sha2::{Digest, Sha256};

/// Where a page resumes: after the last row of the previous page.
pub(crate) struct CursorPosition {
    pub(crate) key: Key,
    /// That row's sort value, for a sorted query.
    pub(crate) sort_value: Option<Value>,
}

/// A cursor: hex of the MessagePack array `[shape, key]` (`[shape, key, sort value]` for a
/// sorted query), where `shape` binds it to the query that issued it ([`query_shape`]).
pub(crate) fn encode_cursor(shape: i64, key: &Key, sort_value: Option<&Value>) -> Result<String> {
    let mut fields = vec![Value::Int(shape), Value::from(key.as_str())];
    fields.extend(sort_value.cloned());
    let bytes = encode(&Value::Array(fields))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The position named by `query.cursor`, which must be one this store issued for a query of
/// the same shape (filter, key prefix and sort): anything else is refused, never read as some
/// other position. `query_shape` is [`query_shape`] of `query`.
pub(crate) fn decode_cursor(query: &Query, query_shape: i64) -> Result<Option<CursorPosition>> {
    let Some(text) = query.cursor.as_deref() else {
        return Ok(None);
    };
    let invalid = |why: &str| Error::InvalidQuery {
        reason: format!("the cursor {why}; pass back the `next` of the previous page unchanged"),
    };
    let not_issued = || invalid("is not one this store issued");
    if text.len() % 2 != 0 || !text.is_ascii() {
        return Err(not_issued());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(not_issued)?;
    let Ok(Value::Array(fields)) = decode::<Value>(&bytes, "cursor") else {
        return Err(not_issued());
    };
    let mut fields = fields.into_iter();
    let (Some(Value::Int(shape)), Some(Value::String(key))) = (fields.next(), fields.next()) else {
        return Err(not_issued());
    };
    let sort_value = fields.next();
    if fields.next().is_some() || sort_value.is_some() != query.sort.is_some() {
        return Err(not_issued());
    }
    if shape != query_shape {
        return Err(invalid(
            "belongs to a query with another filter, key prefix or sort",
        ));
    }
    let key = Key::new(key).map_err(|_| not_issued())?;
    // Only the exact text issued: no trailing bytes, no other spelling of the same position.
    if encode_cursor(shape, &key, sort_value.as_ref())? != text {
        return Err(not_issued());
    }
    Ok(Some(CursorPosition { key, sort_value }))
}

/// A fingerprint of what a cursor's position means: the query's filter, key prefix and sort
/// (not its page size), as the first 8 bytes of the SHA-256 of their JSON form.
pub(crate) fn query_shape(query: &Query) -> i64 {
    let shape = Query {
        filter: query.filter.clone(),
        key_prefix: query.key_prefix.clone().filter(|p| !p.is_empty()),
        sort: query.sort.clone(),
        limit: None,
        cursor: None,
    };
    let digest = Sha256::digest(query_to_json(&shape).to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_le_bytes(first)
}

//! The errors of filter parsing, all [`Error::InvalidQuery`]: a syntax error names the JSON line
//! and column, a semantic one the JSON path of the offending node (`at $.a.$in[1]: ...`), and
//! each describes what it found in plain words ("got an array").

use asterope_core::Error;
use serde_json::Value as Json;

/// An invalid-query error at a JSON path.
pub(super) fn invalid(at: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidQuery {
        reason: format!("at {at}: {reason}"),
    }
}

/// The reason inside a core error, without its kind prefix.
pub(super) fn reason_of(error: Error) -> String {
    match error {
        // The JSON bridge wraps timestamp errors (an `InvalidArgument`) as text.
        Error::InvalidMetadata { reason } => match reason.strip_prefix("invalid argument: ") {
            Some(inner) => inner.to_string(),
            None => reason,
        },
        Error::InvalidQuery { reason } | Error::InvalidArgument { reason } => reason,
        other => other.to_string(),
    }
}

pub(super) fn syntax_error(error: &serde_json::Error) -> Error {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full);
    Error::InvalidQuery {
        reason: format!("invalid JSON at line {line}, column {column}: {message}"),
    }
}

pub(super) fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use crate::filter::test_support::parse_err;

    #[test]
    fn json_syntax_errors_name_line_and_column() {
        let message = parse_err("{\n  \"a\": 1,\n  \"b\": }");
        assert!(message.contains("line 3, column 8"), "{message}");
        assert!(!message.contains("line 3 column 8"), "{message}");
        let message = parse_err("");
        assert!(message.contains("line 1, column 0"), "{message}");
    }

    #[test]
    fn semantic_errors_name_the_json_path() {
        let cases = [
            (
                r#"{"study_date": {"$gtx": 1}}"#,
                r#"at $.study_date.$gtx: unknown operator "$gtx""#,
            ),
            (r#"{"$nor": []}"#, r#"at $.$nor: unknown operator "$nor""#),
            (r#"{"$gt": 1}"#, "at $.$gt: $gt is a field operator"),
            (r#"[1]"#, "at $: a filter must be a JSON object, got an array"),
            (r#"{"a": {"$in": 1}}"#, "at $.a.$in: $in takes an array of values, got a number"),
            (r#"{"a": {"$nin": {}}}"#, "at $.a.$nin: $nin takes an array of values, got an object"),
            (r#"{"a": {"$exists": 1}}"#, "at $.a.$exists: $exists takes true or false, got a number"),
            (r#"{"a": {"$prefix": 1}}"#, "at $.a.$prefix: $prefix takes a string, got a number"),
            (r#"{"$and": []}"#, "at $.$and: $and takes a non-empty array of filters, got an empty array"),
            (r#"{"$or": {}}"#, "at $.$or: $or takes a non-empty array of filters, got an object"),
            (r#"{"$or": [{"a": 1}, 5]}"#, "at $.$or[1]: a filter must be a JSON object, got a number"),
            (r#"{"$not": 5}"#, "at $.$not: a filter must be a JSON object, got a number"),
            (r#"{"a": {"$not": 5}}"#, "at $.a.$not: $not takes an operator object"),
            (r#"{"a": {"$not": {"b": 1}}}"#, "at $.a.$not: $not takes an operator object"),
            (r#"{"a": {"$gt": 1, "b": 2}}"#, "at $.a: an object mixes operators"),
            (r#"{"a": {"$gt": [1]}}"#, "at $.a.$gt: $gt takes a number, string, boolean, timestamp or binary, got an array"),
            (r#"{"a": {"$lte": null}}"#, "at $.a.$lte: $lte takes a number, string, boolean, timestamp or binary, got null"),
            (r#"{"a": {"$and": [{"b": 1}]}}"#, "at $.a.$and: $and combines whole filters"),
            (r#"{"a..b": 1}"#, r#"at $.a..b: field path "a..b" has an empty segment"#),
            (r#"{"": 1}"#, "at $.: empty field path"),
            (r#"{"d": {"$gt": {"$date": "yesterday"}}}"#, r#"at $.d.$gt: invalid timestamp "yesterday""#),
            (r#"{"a": {"$in": [1, {"$base64": "!!"}]}}"#, "at $.a.$in[1]: invalid $base64 value"),
        ];
        for (text, expected) in cases {
            let message = parse_err(text);
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.starts_with("invalid query: at $"), "{message}");
        }
    }
}

//! Helpers shared by the filter module's unit tests.

use asterope_core::{Filter, Timestamp, Value};
use serde_json::Value as Json;

use crate::parse_filter;

pub(super) fn date(text: &str) -> Value {
    Value::Timestamp(Timestamp::parse(text).unwrap())
}

pub(super) fn parse(json: Json) -> Filter {
    let text = json.to_string();
    parse_filter(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub(super) fn parse_err(text: &str) -> String {
    let err = parse_filter(text).unwrap_err();
    assert_eq!(err.code(), "invalid_query", "{text}: {err}");
    err.to_string()
}

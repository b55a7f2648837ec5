//! Parsing the JSON syntax into a [`Filter`]: a recursive descent over the JSON tree that checks
//! [`MAX_FILTER_DEPTH`] before every step of recursion and counts nodes against
//! [`MAX_FILTER_NODES`] and list lengths against [`MAX_IN_LIST_LEN`] as it goes, so an oversized
//! filter is refused before it is built.

use asterope_core::{
    Error, FieldPath, Filter, Predicate, Result, Value, MAX_FILTER_DEPTH, MAX_FILTER_NODES,
    MAX_IN_LIST_LEN,
};
use serde_json::{Map, Value as Json};

use super::error::{invalid, json_kind, reason_of, syntax_error};
use crate::json::{is_tagged_literal, value_from_json_literal, value_kind};

/// The operators allowed on a field, for the hint when one is used at the top level.
const FIELD_OPERATORS: [&str; 10] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix",
];

/// Parses a filter from JSON text.
///
/// Malformed JSON is reported with its line and column; a well-formed but invalid filter with
/// the JSON path of the offending node (`at $.study_date.$gtx: unknown operator "$gtx"`). Both
/// are [`Error::InvalidQuery`]. JSON nested deeper than serde_json's limit of 128 is refused by
/// the JSON parser itself, so no input can exhaust the stack.
pub fn parse_filter(text: &str) -> Result<Filter> {
    let json =
        crate::strict_json::parse_unrepeated(text.as_bytes()).map_err(|e| syntax_error(&e))?;
    crate::strict_json::refuse_oversized_integers(text.as_bytes())
        .map_err(|reason| Error::InvalidQuery { reason })?;
    filter_from_json(json)
}

/// Converts a parsed JSON value into a filter, checking [`MAX_FILTER_DEPTH`] before each
/// level of recursion, [`MAX_FILTER_NODES`] and [`MAX_IN_LIST_LEN`].
pub fn filter_from_json(json: Json) -> Result<Filter> {
    FilterParser { nodes: 0 }.filter(json, "$", 1)
}

/// Object entries in key order, whatever order serde_json keeps, so that the AST of an
/// implicit AND does not depend on how the text was written.
fn sorted_entries(map: Map<String, Json>) -> Vec<(String, Json)> {
    let mut entries: Vec<(String, Json)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// What the value of a field entry is.
enum FieldValue {
    /// An object of operators.
    Operators(Map<String, Json>),
    /// A literal: implicit `$eq`.
    Literal(Json),
}

fn classify_field_value(json: Json, at: &str) -> Result<FieldValue> {
    let Json::Object(map) = json else {
        return Ok(FieldValue::Literal(json));
    };
    if map.is_empty() || is_tagged_literal(&map) {
        return Ok(FieldValue::Literal(Json::Object(map)));
    }
    let operators = map.keys().filter(|k| k.starts_with('$')).count();
    if operators == map.len() {
        Ok(FieldValue::Operators(map))
    } else if operators == 0 {
        Ok(FieldValue::Literal(Json::Object(map)))
    } else {
        Err(invalid(
            at,
            "an object mixes operators (keys starting with $) and field names; \
             use {\"$eq\": {...}} to match a document literally",
        ))
    }
}

/// The recursive-descent parser. `depth` is the AST depth of the node being built (see
/// [`Filter::depth`]) and is checked on entry to every function that recurses.
struct FilterParser {
    nodes: usize,
}

/// Refuses a node deeper than [`MAX_FILTER_DEPTH`]; called before every step of recursion.
fn check_depth(at: &str, depth: usize) -> Result<()> {
    if depth > MAX_FILTER_DEPTH {
        return Err(invalid(
            at,
            format!("filter is nested more than {MAX_FILTER_DEPTH} levels deep"),
        ));
    }
    Ok(())
}

impl FilterParser {
    fn count_node(&mut self, at: &str) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_FILTER_NODES {
            return Err(invalid(
                at,
                format!("filter has more than {MAX_FILTER_NODES} nodes"),
            ));
        }
        Ok(())
    }

    /// A filter object.
    fn filter(&mut self, json: Json, at: &str, depth: usize) -> Result<Filter> {
        check_depth(at, depth)?;
        let Json::Object(map) = json else {
            return Err(invalid(
                at,
                format!("a filter must be a JSON object, got {}", json_kind(&json)),
            ));
        };
        let mut entries = sorted_entries(map);
        if entries.len() > 1 {
            self.count_node(at)?;
            let children = entries
                .into_iter()
                .map(|(key, value)| self.entry(key, value, at, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Filter::And(children));
        }
        match entries.pop() {
            Some((key, value)) => self.entry(key, value, at, depth),
            None => {
                self.count_node(at)?;
                Ok(Filter::True)
            }
        }
    }

    /// One entry of a filter object: a logical operator or a field condition.
    fn entry(&mut self, key: String, value: Json, parent: &str, depth: usize) -> Result<Filter> {
        let at = format!("{parent}.{key}");
        check_depth(&at, depth)?;
        match key.as_str() {
            "$and" | "$or" => {
                self.count_node(&at)?;
                let Json::Array(items) = value else {
                    return Err(invalid(
                        &at,
                        format!(
                            "{key} takes a non-empty array of filters, got {}",
                            json_kind(&value)
                        ),
                    ));
                };
                if items.is_empty() {
                    return Err(invalid(
                        &at,
                        format!("{key} takes a non-empty array of filters, got an empty array"),
                    ));
                }
                let filters = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.filter(item, &format!("{at}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if key == "$and" {
                    Filter::And(filters)
                } else {
                    Filter::Or(filters)
                })
            }
            "$not" => {
                self.count_node(&at)?;
                Ok(Filter::Not(Box::new(self.filter(value, &at, depth + 1)?)))
            }
            op if FIELD_OPERATORS.contains(&op) => Err(invalid(
                &at,
                format!(
                    "{op} is a field operator; put it inside a field, as in {{\"field\": {{\"{op}\": ...}}}}"
                ),
            )),
            op if op.starts_with('$') => Err(invalid(&at, format!("unknown operator {op:?}"))),
            _ => {
                let path = FieldPath::parse(&key).map_err(|e| invalid(&at, reason_of(e)))?;
                self.count_node(&at)?;
                let predicate = self.field_value(value, &at, depth + 1)?;
                Ok(Filter::Field { path, predicate })
            }
        }
    }

    /// The value of a field entry: an operator object, or a literal meaning `$eq`.
    fn field_value(&mut self, value: Json, at: &str, depth: usize) -> Result<Predicate> {
        check_depth(at, depth)?;
        match classify_field_value(value, at)? {
            FieldValue::Operators(map) => self.operator_object(map, at, depth),
            FieldValue::Literal(json) => {
                self.count_node(at)?;
                Ok(Predicate::Eq(literal(json, at)?))
            }
        }
    }

    /// A non-empty object whose keys all start with `$`.
    fn operator_object(
        &mut self,
        map: Map<String, Json>,
        at: &str,
        depth: usize,
    ) -> Result<Predicate> {
        check_depth(at, depth)?;
        let mut entries = sorted_entries(map);
        if entries.len() > 1 {
            self.count_node(at)?;
            let predicates = entries
                .into_iter()
                .map(|(op, operand)| self.operator(op, operand, at, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Predicate::All(predicates));
        }
        match entries.pop() {
            Some((op, operand)) => self.operator(op, operand, at, depth),
            None => Err(invalid(at, "empty operator object")),
        }
    }

    /// One field operator and its operand.
    fn operator(
        &mut self,
        op: String,
        operand: Json,
        parent: &str,
        depth: usize,
    ) -> Result<Predicate> {
        let at = format!("{parent}.{op}");
        check_depth(&at, depth)?;
        self.count_node(&at)?;
        let wrong_operand = |wanted: &str, got: &Json| {
            invalid(&at, format!("{op} takes {wanted}, got {}", json_kind(got)))
        };
        match op.as_str() {
            "$eq" => Ok(Predicate::Eq(literal(operand, &at)?)),
            "$ne" => Ok(Predicate::Ne(literal(operand, &at)?)),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let value = literal(operand, &at)?;
                if matches!(value, Value::Nil | Value::Array(_) | Value::Map(_)) {
                    return Err(invalid(
                        &at,
                        format!(
                            "{op} takes a number, string, boolean, timestamp or binary, got {}",
                            value_kind(&value)
                        ),
                    ));
                }
                Ok(match op.as_str() {
                    "$gt" => Predicate::Gt(value),
                    "$gte" => Predicate::Gte(value),
                    "$lt" => Predicate::Lt(value),
                    _ => Predicate::Lte(value),
                })
            }
            "$in" | "$nin" => {
                let Json::Array(items) = operand else {
                    return Err(wrong_operand("an array of values", &operand));
                };
                if items.len() > MAX_IN_LIST_LEN {
                    return Err(invalid(
                        &at,
                        format!(
                            "{op} has {} values, more than the limit of {MAX_IN_LIST_LEN}",
                            items.len()
                        ),
                    ));
                }
                let values = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| literal(item, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if op == "$in" {
                    Predicate::In(values)
                } else {
                    Predicate::Nin(values)
                })
            }
            "$exists" => match operand {
                Json::Bool(present) => Ok(Predicate::Exists(present)),
                other => Err(wrong_operand("true or false", &other)),
            },
            "$prefix" => match operand {
                Json::String(prefix) => Ok(Predicate::Prefix(prefix)),
                other => Err(wrong_operand("a string", &other)),
            },
            "$not" => {
                match classify_field_value(operand, &at)? {
                    FieldValue::Operators(map) => Ok(Predicate::Not(Box::new(
                        self.operator_object(map, &at, depth + 1)?,
                    ))),
                    FieldValue::Literal(other) => Err(wrong_operand(
                        "an operator object such as {\"$gt\": 5}",
                        &other,
                    )),
                }
            }
            "$and" | "$or" => Err(invalid(
                &at,
                format!("{op} combines whole filters and cannot be applied to a field"),
            )),
            _ => Err(invalid(&at, format!("unknown operator {op:?}"))),
        }
    }
}

/// A literal operand through the JSON bridge, with errors placed at `at`.
fn literal(json: Json, at: &str) -> Result<Value> {
    value_from_json_literal(json).map_err(|e| invalid(at, reason_of(e)))
}

#[cfg(test)]
mod tests {
    use asterope_core::{and, field, not, or, Metadata};
    use serde_json::json;

    use super::*;
    use crate::filter::test_support::{date, parse, parse_err};
    use crate::filter_to_json;

    #[test]
    fn the_example_from_the_docs() {
        let parsed = parse(json!({
            "patient_id": "12345",
            "study_date": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}
        }));
        let built = field("patient_id")
            .eq("12345")
            .and(field("study_date").gt(date("2024-01-01T00:00:00Z")));
        assert_eq!(parsed, built);
    }

    #[test]
    fn every_operator_parses_like_the_builder() {
        let cases: Vec<(Json, Filter)> = vec![
            (json!({}), Filter::True),
            (json!({"a": 1}), field("a").eq(1)),
            (json!({"a": {"$eq": 1.5}}), field("a").eq(1.5)),
            (json!({"a": null}), field("a").eq(Value::Nil)),
            (
                json!({"a": [1, "x"]}),
                field("a").eq(Value::Array(vec![1.into(), "x".into()])),
            ),
            (
                json!({"a": {"b": 1}}),
                field("a").eq(Value::Map([("b".into(), Value::Int(1))].into())),
            ),
            (json!({"a": {}}), field("a").eq(Value::Map(Metadata::new()))),
            (json!({"a": {"$ne": "x"}}), field("a").ne("x")),
            (json!({"a": {"$gt": 1}}), field("a").gt(1)),
            (json!({"a": {"$gte": "m"}}), field("a").gte("m")),
            (json!({"a": {"$lt": true}}), field("a").lt(true)),
            (json!({"a": {"$lte": 2.5}}), field("a").lte(2.5)),
            (
                json!({"a": {"$in": [1, "x", null]}}),
                field("a").is_in([Value::Int(1), "x".into(), Value::Nil]),
            ),
            (
                json!({"a": {"$nin": []}}),
                field("a").not_in(Vec::<Value>::new()),
            ),
            (json!({"a": {"$exists": false}}), field("a").exists(false)),
            (
                json!({"a": {"$prefix": "scan/"}}),
                field("a").prefix("scan/"),
            ),
            (
                json!({"raw": {"$base64": "AAEC"}}),
                field("raw").eq(Value::Binary(vec![0, 1, 2])),
            ),
            (
                json!({"raw": {"$lt": {"$base64": "AAEC"}}}),
                field("raw").lt(Value::Binary(vec![0, 1, 2])),
            ),
            (
                json!({"d": {"$date": "2024-01-31"}}),
                field("d").eq(date("2024-01-31T00:00:00Z")),
            ),
            (
                json!({"s.series.count": {"$gt": 1, "$lt": 5}}),
                field("s.series.count").matching(Predicate::All(vec![
                    Predicate::Gt(1.into()),
                    Predicate::Lt(5.into()),
                ])),
            ),
            (
                json!({"slices": {"$not": {"$gt": 5}}}),
                field("slices").matching(Predicate::Not(Box::new(Predicate::Gt(5.into())))),
            ),
            (
                json!({"$not": {"slices": {"$gt": 5}}}),
                not(field("slices").gt(5)),
            ),
            (
                json!({"$and": [{"a": 1}, {"b": 2}]}),
                and([field("a").eq(1), field("b").eq(2)]),
            ),
            (json!({"$or": [{"a": 1}]}), or([field("a").eq(1)])),
            (
                json!({"b": 2, "a": 1, "$or": [{"c": 3}, {"d": 4}]}),
                and([
                    or([field("c").eq(3), field("d").eq(4)]),
                    field("a").eq(1),
                    field("b").eq(2),
                ]),
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(parse(json.clone()), expected, "{json}");
            assert_eq!(filter_from_json(json.clone()).unwrap(), expected, "{json}");
            assert_eq!(parse(filter_to_json(&expected)), expected, "{json}");
        }
    }

    #[test]
    fn nesting_limit() {
        // At the limit: a field with 30 field-level $not around a $gt is 32 deep.
        let ok = format!(
            "{{\"a\": {}{{\"$gt\": 1}}{}}}",
            "{\"$not\": ".repeat(MAX_FILTER_DEPTH - 2),
            "}".repeat(MAX_FILTER_DEPTH - 2)
        );
        assert_eq!(parse_filter(&ok).unwrap().depth(), MAX_FILTER_DEPTH);
        let too_deep = format!(
            "{{\"a\": {}{{\"$gt\": 1}}{}}}",
            "{\"$not\": ".repeat(MAX_FILTER_DEPTH - 1),
            "}".repeat(MAX_FILTER_DEPTH - 1)
        );
        let message = parse_err(&too_deep);
        assert!(message.contains("nested more than 32 levels"), "{message}");
        assert!(message.contains("at $.a.$not.$not"), "{message}");

        // Top-level $not chains: 31 wrap True to depth 32.
        let nots = |n: usize| format!("{}{{}}{}", "{\"$not\": ".repeat(n), "}".repeat(n));
        assert_eq!(parse_filter(&nots(31)).unwrap().depth(), 32);
        let message = parse_err(&nots(32));
        assert!(message.contains("nested more than 32 levels"), "{message}");
        // Deeper than serde_json's own limit of 128, caught while reading the text.
        let message = parse_err(&nots(200));
        assert!(message.contains("recursion limit"), "{message}");
        // Built as a value (no text), the parser's own check stops it at once.
        let mut deep = json!({});
        for _ in 0..100 {
            deep = json!({ "$not": deep });
        }
        let err = filter_from_json(deep).unwrap_err();
        assert!(err.to_string().contains("nested more than 32"), "{err}");
    }

    #[test]
    fn enormous_nesting_is_an_error_not_a_stack_overflow() {
        for bomb in [
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            format!(
                "{}{{}}{}",
                "{\"$not\":".repeat(100_000),
                "}".repeat(100_000)
            ),
            format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000)),
            format!(
                "{{\"$and\":{}{{}}{}}}",
                "[{\"$and\":".repeat(50_000),
                "}]".repeat(50_000)
            ),
        ] {
            let message = parse_err(&bomb);
            assert!(message.contains("recursion limit"), "{message}");
            assert!(message.contains("line 1, column"), "{message}");
        }
        // Literal operands nested deeper than the metadata limit.
        let literal = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        let message = parse_err(&literal);
        assert!(message.contains("at $.a: nested more than"), "{message}");
    }

    #[test]
    fn list_and_node_limits() {
        let values: Vec<i64> = (0..=i64::try_from(MAX_IN_LIST_LEN).unwrap()).collect();
        let message = parse_err(&json!({"a": {"$in": values}}).to_string());
        assert!(
            message.contains("at $.a.$in: $in has 10001 values, more than the limit of 10000"),
            "{message}"
        );
        let at_limit = json!({"a": {"$nin": &values[1..]}});
        assert!(parse(at_limit).check_limits().is_ok());

        // 5,000 fields are 10,001 nodes (the AND and two per field).
        let fields: Map<String, Json> = (0..MAX_FILTER_NODES / 2)
            .map(|i| (format!("f{i}"), json!(1)))
            .collect();
        let message = parse_err(&Json::Object(fields).to_string());
        assert!(message.contains("more than 10000 nodes"), "{message}");
        let fields: Map<String, Json> = (0..MAX_FILTER_NODES / 2 - 1)
            .map(|i| (format!("f{i}"), json!(1)))
            .collect();
        assert_eq!(
            parse(Json::Object(fields)).node_count(),
            MAX_FILTER_NODES - 1
        );
    }

    #[test]
    fn parsed_filters_evaluate() {
        let doc = crate::metadata_from_json_str(
            r#"{"patient_id":"12345","study_date":{"$date":"2024-03-01T00:00:00Z"},
                "slices":120,"tags":["ct","head"],"study":{"series":[{"count":3},{"count":10}]}}"#,
        )
        .unwrap();
        let cases = [
            (
                r#"{"patient_id": "12345", "study_date": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}}"#,
                true,
            ),
            (r#"{"study_date": {"$lt": {"$date": "2024-01-01"}}}"#, false),
            (r#"{"slices": 120.0}"#, true),
            (r#"{"slices": {"$gt": 100, "$lt": 119.5}}"#, false),
            (r#"{"tags": "head"}"#, true),
            (r#"{"tags": {"$prefix": "he"}}"#, true),
            (r#"{"study.series.count": {"$gte": 10}}"#, true),
            (r#"{"missing": {"$ne": 1}}"#, true),
            (r#"{"missing": {"$nin": [1]}}"#, true),
            (r#"{"missing": null}"#, true),
            (r#"{"missing": {"$exists": true}}"#, false),
            (r#"{"slices": {"$not": {"$gt": 5}}}"#, false),
            (r#"{"$not": {"slices": {"$gt": 500}}}"#, true),
            (
                r#"{"$or": [{"slices": 1}, {"tags": {"$in": ["mr", "ct"]}}]}"#,
                true,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_filter(text).unwrap().matches(&doc),
                expected,
                "{text}"
            );
        }
    }
}

//! The JSON syntax of metadata filters: parsing into asterope-core's [`Filter`] with errors that
//! name the position (JSON line and column, or the JSON path of the offending node), the
//! filter limits enforced while parsing, and printing a [`Filter`] back to JSON.
//!
//! The syntax, in the style of MongoDB (docs/QUERY.md has the full reference):
//!
//! * a filter is a JSON object; its entries are an implicit AND, in key order;
//! * `"field.path": literal` means `$eq`; `"field.path": {"$op": operand, ...}` applies operators
//!   (an object whose keys all start with `$`; `{"$date": ..}` and `{"$base64": ..}` stay
//!   literals, as in the JSON bridge);
//! * `$and` / `$or` take non-empty arrays of filters, top-level `$not` takes a filter, and
//!   field-level `$not` takes an operator object.

use asterope_core::{
    Error, FieldPath, Filter, Predicate, Result, Value, MAX_FILTER_DEPTH, MAX_FILTER_NODES,
    MAX_IN_LIST_LEN,
};
use serde_json::{Map, Value as Json};

use crate::json::{is_tagged_literal, value_from_json_literal, value_kind, value_to_json};

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

/// Prints a filter as JSON that [`parse_filter`] reads back.
///
/// Filters as the parser or the builder produce them round-trip exactly. Others are printed as
/// an equivalent filter: an empty `And` as `{}`, an empty `Or` as `{"$not": {}}`, and a field
/// predicate that no operator object can hold (an `All` repeating an operator, or an empty one)
/// as `$and`/`$not` of single-operator field filters. Values the JSON bridge cannot carry
/// (NaN and infinite floats) print as `null`.
pub fn filter_to_json(filter: &Filter) -> Json {
    match filter {
        Filter::True => Json::Object(Map::new()),
        Filter::And(filters) if filters.is_empty() => Json::Object(Map::new()),
        Filter::And(filters) => single("$and", filter_list_to_json(filters)),
        Filter::Or(filters) if filters.is_empty() => single("$not", Json::Object(Map::new())),
        Filter::Or(filters) => single("$or", filter_list_to_json(filters)),
        Filter::Not(inner) => single("$not", filter_to_json(inner)),
        Filter::Field { path, predicate } => field_to_json(path, predicate),
    }
}

fn filter_list_to_json(filters: &[Filter]) -> Json {
    Json::Array(filters.iter().map(filter_to_json).collect())
}

fn single(key: impl Into<String>, value: Json) -> Json {
    let mut map = Map::new();
    map.insert(key.into(), value);
    Json::Object(map)
}

fn field_to_json(path: &FieldPath, predicate: &Predicate) -> Json {
    if let Predicate::Eq(value) = predicate {
        // A map literal would read back as an operator object or a tagged literal: spell `$eq`.
        if !matches!(value, Value::Map(_)) {
            return single(path.to_string(), value_to_json(value));
        }
    }
    match operator_object(predicate) {
        Some(operators) => single(path.to_string(), Json::Object(operators)),
        None => match predicate {
            Predicate::Not(inner) => single("$not", field_to_json(path, inner)),
            Predicate::All(predicates) if !predicates.is_empty() => single(
                "$and",
                Json::Array(predicates.iter().map(|p| field_to_json(path, p)).collect()),
            ),
            // An empty `All` holds for every document. (Other predicates always have an
            // operator object.)
            _ => Json::Object(Map::new()),
        },
    }
}

/// The operator object of a predicate, or `None` if it cannot be one (an `All` that is empty
/// or repeats an operator, or a `Not` of such).
fn operator_object(predicate: &Predicate) -> Option<Map<String, Json>> {
    let operand = match predicate {
        Predicate::Eq(v)
        | Predicate::Ne(v)
        | Predicate::Gt(v)
        | Predicate::Gte(v)
        | Predicate::Lt(v)
        | Predicate::Lte(v) => value_to_json(v),
        Predicate::In(values) | Predicate::Nin(values) => {
            Json::Array(values.iter().map(value_to_json).collect())
        }
        Predicate::Exists(present) => Json::Bool(*present),
        Predicate::Prefix(prefix) => Json::String(prefix.clone()),
        Predicate::Not(inner) => Json::Object(operator_object(inner)?),
        Predicate::All(predicates) => {
            if predicates.is_empty() {
                return None;
            }
            let mut merged = Map::new();
            for p in predicates {
                for (op, operand) in operator_object(p)? {
                    if merged.insert(op, operand).is_some() {
                        return None;
                    }
                }
            }
            return Some(merged);
        }
    };
    let mut map = Map::new();
    map.insert(predicate.operator_name().to_string(), operand);
    Some(map)
}

/// An invalid-query error at a JSON path.
fn invalid(at: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidQuery {
        reason: format!("at {at}: {reason}"),
    }
}

/// The reason inside a core error, without its kind prefix.
fn reason_of(error: Error) -> String {
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

fn syntax_error(error: &serde_json::Error) -> Error {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full);
    Error::InvalidQuery {
        reason: format!("invalid JSON at line {line}, column {column}: {message}"),
    }
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
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
    use asterope_core::{and, field, not, or, Metadata, Text, Timestamp};
    use serde_json::json;

    use super::*;

    fn date(text: &str) -> Value {
        Value::Timestamp(Timestamp::parse(text).unwrap())
    }

    fn parse(json: Json) -> Filter {
        let text = json.to_string();
        parse_filter(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn parse_err(text: &str) -> String {
        let err = parse_filter(text).unwrap_err();
        assert_eq!(err.code(), "invalid_query", "{text}: {err}");
        err.to_string()
    }

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
    fn filter_to_json_shapes() {
        assert_eq!(
            filter_to_json(&field("a").eq(1).and(field("b").gt(2))),
            json!({"$and": [{"a": 1}, {"b": {"$gt": 2}}]})
        );
        let map_literal = Value::Map([("$gt".into(), Value::Int(1))].into());
        let filter = field("a").eq(map_literal);
        assert_eq!(filter_to_json(&filter), json!({"a": {"$eq": {"$gt": 1}}}));
        assert_eq!(parse(filter_to_json(&filter)), filter);
        assert_eq!(
            filter_to_json(&field("d").eq(date("2024-01-31T12:00:00Z"))),
            json!({"d": {"$date": "2024-01-31T12:00:00Z"}})
        );
    }

    #[test]
    fn non_canonical_filters_print_as_equivalents() {
        let doc: Metadata = [("n".into(), Value::Int(3))].into();
        let repeated = field("n").matching(Predicate::All(vec![
            Predicate::Gt(1.into()),
            Predicate::Gt(2.into()),
        ]));
        let printed = filter_to_json(&repeated);
        assert_eq!(
            printed,
            json!({"$and": [{"n": {"$gt": 1}}, {"n": {"$gt": 2}}]})
        );
        let negated = field("n").matching(Predicate::Not(Box::new(Predicate::All(vec![
            Predicate::Gt(1.into()),
            Predicate::Gt(5.into()),
        ]))));
        let empty_all = field("n").matching(Predicate::All(vec![]));
        for filter in [
            repeated,
            negated,
            empty_all.clone(),
            not(empty_all),
            and([]),
            or([]),
        ] {
            let reparsed = parse(filter_to_json(&filter));
            assert_eq!(reparsed.matches(&doc), filter.matches(&doc), "{filter:?}");
            assert_eq!(
                reparsed.matches(&Metadata::new()),
                filter.matches(&Metadata::new()),
                "{filter:?}"
            );
        }
    }

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

    mod properties {
        use std::cmp::Ordering;

        use proptest::prelude::*;

        use super::*;

        /// The values documents and operands are drawn from: few enough that equalities and
        /// int/float coincidences are common.
        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Nil),
                any::<bool>().prop_map(Value::Bool),
                (-2i64..=2).prop_map(Value::Int),
                prop_oneof![Just(-1.5), Just(0.0), Just(1.0), Just(2.0), Just(2.5)]
                    .prop_map(Value::Float),
                prop_oneof![Just(""), Just("x"), Just("xy"), Just("y")]
                    .prop_map(|s| Value::String(s.into())),
                (0i64..2, prop_oneof![Just(0u32), Just(500_000_000)]).prop_map(|(secs, nanos)| {
                    Value::Timestamp(Timestamp {
                        secs: 1_700_000_000 + secs,
                        nanos,
                    })
                }),
                prop_oneof![Just(vec![]), Just(vec![1u8])].prop_map(Value::Binary),
            ]
        }

        fn key() -> impl Strategy<Value = Text> {
            prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(Text::from)
        }

        /// A value of a document: scalars, arrays, and maps two levels deep.
        fn doc_value() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(2, 12, 3, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                    proptest::collection::btree_map(key(), inner, 0..3).prop_map(Value::Map),
                ]
            })
        }

        fn document() -> impl Strategy<Value = Metadata> {
            proptest::collection::btree_map(key(), doc_value(), 0..=3)
        }

        /// Mostly short paths, so that they often reach something.
        fn path() -> impl Strategy<Value = FieldPath> {
            let segments = prop_oneof![
                3 => proptest::collection::vec(key(), 1),
                2 => proptest::collection::vec(key(), 2),
                1 => proptest::collection::vec(key(), 3),
            ];
            segments.prop_map(|segments| FieldPath::new(&segments.join(".")))
        }

        /// Operands for equality: scalars, and now and then a small array or map.
        fn literal() -> impl Strategy<Value = Value> {
            prop_oneof![
                4 => scalar(),
                1 => proptest::collection::vec(scalar(), 0..3).prop_map(Value::Array),
                1 => proptest::collection::btree_map(key(), scalar(), 0..2).prop_map(Value::Map),
            ]
        }

        fn range_operand() -> impl Strategy<Value = Value> {
            scalar().prop_filter("range operands are not null", |v| *v != Value::Nil)
        }

        /// A leaf predicate (one operator).
        fn leaf_predicate() -> impl Strategy<Value = Predicate> {
            prop_oneof![
                literal().prop_map(Predicate::Eq),
                literal().prop_map(Predicate::Ne),
                range_operand().prop_map(Predicate::Gt),
                range_operand().prop_map(Predicate::Gte),
                range_operand().prop_map(Predicate::Lt),
                range_operand().prop_map(Predicate::Lte),
                proptest::collection::vec(literal(), 0..3).prop_map(Predicate::In),
                proptest::collection::vec(literal(), 0..3).prop_map(Predicate::Nin),
                any::<bool>().prop_map(Predicate::Exists),
                prop_oneof![Just(""), Just("x"), Just("y")]
                    .prop_map(|s| Predicate::Prefix(s.to_string())),
            ]
        }

        /// Predicates in the canonical form of the parser: an `All` has two or more distinct
        /// operators, in name order, none of them an `All`.
        fn predicate() -> impl Strategy<Value = Predicate> {
            leaf_predicate().prop_recursive(3, 10, 3, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|p| Predicate::Not(Box::new(p))),
                    proptest::collection::vec(inner, 2..4).prop_filter_map(
                        "an All needs distinct operators",
                        |predicates| {
                            let mut predicates: Vec<Predicate> = predicates
                                .into_iter()
                                .filter(|p| !matches!(p, Predicate::All(_)))
                                .collect();
                            predicates.sort_by_key(Predicate::operator_name);
                            predicates.dedup_by_key(|p| p.operator_name());
                            (predicates.len() >= 2).then_some(Predicate::All(predicates))
                        }
                    ),
                ]
            })
        }

        fn filter() -> impl Strategy<Value = Filter> {
            let leaf = prop_oneof![
                1 => Just(Filter::True),
                8 => (path(), predicate())
                    .prop_map(|(path, predicate)| Filter::Field { path, predicate }),
            ];
            leaf.prop_recursive(3, 16, 3, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
                    proptest::collection::vec(inner.clone(), 1..4).prop_map(Filter::Or),
                    inner.prop_map(|f| Filter::Not(Box::new(f))),
                ]
            })
        }

        // ---- The reference evaluator: the documented semantics, written out naively. ----

        /// Values a path reaches: descend maps; at an array before the last segment, descend
        /// into each element that is a map.
        fn reference_reach(value: &Value, rest: &[String], out: &mut Vec<Value>) {
            let Some((head, tail)) = rest.split_first() else {
                out.push(value.clone());
                return;
            };
            match value {
                Value::Map(map) => {
                    if let Some(child) = map.get(head.as_str()) {
                        reference_reach(child, tail, out);
                    }
                }
                Value::Array(items) => {
                    for item in items {
                        if let Value::Map(map) = item {
                            if let Some(child) = map.get(head.as_str()) {
                                reference_reach(child, tail, out);
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        fn as_number(value: &Value) -> Option<f64> {
            match value {
                #[allow(clippy::cast_precision_loss)] // the generated ints are tiny
                Value::Int(n) => Some(*n as f64),
                Value::Float(x) => Some(*x),
                _ => None,
            }
        }

        fn reference_equal(a: &Value, b: &Value) -> bool {
            if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
                return x == y;
            }
            match (a, b) {
                (Value::Array(x), Value::Array(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| reference_equal(p, q))
                }
                (Value::Map(x), Value::Map(y)) => {
                    x.len() == y.len()
                        && x.iter()
                            .zip(y)
                            .all(|((ka, va), (kb, vb))| ka == kb && reference_equal(va, vb))
                }
                (Value::Array(_) | Value::Map(_), _) | (_, Value::Array(_) | Value::Map(_)) => {
                    false
                }
                _ => a == b,
            }
        }

        fn reference_order(a: &Value, b: &Value) -> Option<Ordering> {
            if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
                return x.partial_cmp(&y);
            }
            match (a, b) {
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
                (Value::Binary(x), Value::Binary(y)) => Some(x.cmp(y)),
                (Value::Timestamp(x), Value::Timestamp(y)) => {
                    Some((x.secs, x.nanos).cmp(&(y.secs, y.nanos)))
                }
                _ => None,
            }
        }

        /// What a predicate sees: every reached value, and the elements of reached arrays.
        fn candidates(reached: &[Value]) -> Vec<Value> {
            let mut out = Vec::new();
            for value in reached {
                out.push(value.clone());
                if let Value::Array(items) = value {
                    out.extend(items.iter().cloned());
                }
            }
            out
        }

        fn reference_eq(operand: &Value, reached: &[Value]) -> bool {
            (reached.is_empty() && *operand == Value::Nil)
                || candidates(reached)
                    .iter()
                    .any(|c| reference_equal(c, operand))
        }

        fn reference_range(operand: &Value, reached: &[Value], wanted: &[Ordering]) -> bool {
            candidates(reached)
                .iter()
                .any(|c| reference_order(c, operand).is_some_and(|o| wanted.contains(&o)))
        }

        fn reference_predicate(predicate: &Predicate, reached: &[Value]) -> bool {
            use Ordering::{Equal, Greater, Less};
            match predicate {
                Predicate::Eq(v) => reference_eq(v, reached),
                Predicate::Ne(v) => !reference_eq(v, reached),
                Predicate::Gt(v) => reference_range(v, reached, &[Greater]),
                Predicate::Gte(v) => reference_range(v, reached, &[Greater, Equal]),
                Predicate::Lt(v) => reference_range(v, reached, &[Less]),
                Predicate::Lte(v) => reference_range(v, reached, &[Less, Equal]),
                Predicate::In(vs) => vs.iter().any(|v| reference_eq(v, reached)),
                Predicate::Nin(vs) => !vs.iter().any(|v| reference_eq(v, reached)),
                Predicate::Exists(present) => reached.is_empty() != *present,
                Predicate::Prefix(prefix) => candidates(reached)
                    .iter()
                    .any(|c| matches!(c, Value::String(s) if s.starts_with(prefix.as_str()))),
                Predicate::Not(inner) => !reference_predicate(inner, reached),
                Predicate::All(ps) => ps.iter().all(|p| reference_predicate(p, reached)),
            }
        }

        fn reference_matches(filter: &Filter, doc: &Metadata) -> bool {
            match filter {
                Filter::True => true,
                Filter::And(fs) => fs.iter().all(|f| reference_matches(f, doc)),
                Filter::Or(fs) => fs.iter().any(|f| reference_matches(f, doc)),
                Filter::Not(f) => !reference_matches(f, doc),
                Filter::Field { path, predicate } => {
                    let mut reached = Vec::new();
                    reference_reach(&Value::Map(doc.clone()), path.segments(), &mut reached);
                    reference_predicate(predicate, &reached)
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn matches_agrees_with_the_reference(
                filter in filter(),
                docs in proptest::collection::vec(document(), 1..6),
            ) {
                for doc in &docs {
                    prop_assert_eq!(
                        filter.matches(doc),
                        reference_matches(&filter, doc),
                        "document {:?}", doc
                    );
                }
            }

            #[test]
            fn single_predicates_agree_with_the_reference(
                path in path(),
                predicate in leaf_predicate(),
                docs in proptest::collection::vec(document(), 1..8),
            ) {
                let filter = Filter::Field { path, predicate };
                for doc in &docs {
                    prop_assert_eq!(
                        filter.matches(doc),
                        reference_matches(&filter, doc),
                        "document {:?}", doc
                    );
                }
            }

            #[test]
            fn json_round_trip(filter in filter()) {
                let json = filter_to_json(&filter);
                prop_assert_eq!(filter_from_json(json.clone())?, filter.clone());
                prop_assert_eq!(parse_filter(&json.to_string())?, filter.clone());
                prop_assert!(filter.check_limits().is_ok());
            }

            #[test]
            fn any_json_text_parses_or_fails_cleanly(text in "[{}\\[\\]\"$a-c:,0-9 ]{0,40}") {
                if let Err(err) = parse_filter(&text) {
                    prop_assert_eq!(err.code(), "invalid_query");
                }
            }
        }
    }
}

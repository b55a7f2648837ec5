//! Printing a [`Filter`] as JSON that the parser reads back: canonical filters round-trip
//! exactly, the others print as an equivalent filter.

use asterope_core::{FieldPath, Filter, Predicate, Value};
use serde_json::{Map, Value as Json};

use crate::json::value_to_json;

/// Prints a filter as JSON that [`parse_filter`](crate::parse_filter) reads back.
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

#[cfg(test)]
mod tests {
    use asterope_core::{and, field, not, or, Metadata};
    use serde_json::json;

    use super::*;
    use crate::filter::test_support::{date, parse};

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
}

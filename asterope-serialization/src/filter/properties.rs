//! Property tests of filters: evaluation ([`Filter::matches`]) agrees with a naive reference
//! evaluator written from the documented semantics, printing round-trips through parsing, and
//! any JSON text either parses or fails with `invalid_query`.

use std::cmp::Ordering;

use asterope_core::{FieldPath, Filter, Metadata, Predicate, Text, Timestamp, Value};
use proptest::prelude::*;

use crate::{filter_from_json, filter_to_json, parse_filter};

/// The values documents and operands are drawn from: few enough that equalities and
/// int/float coincidences are common.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..=2).prop_map(Value::Int),
        prop_oneof![Just(-1.5), Just(0.0), Just(1.0), Just(2.0), Just(2.5)].prop_map(Value::Float),
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
        prop_oneof![Just(""), Just("x"), Just("y")].prop_map(|s| Predicate::Prefix(s.to_string())),
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
        (Value::Array(_) | Value::Map(_), _) | (_, Value::Array(_) | Value::Map(_)) => false,
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

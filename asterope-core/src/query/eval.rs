//! Evaluation of filters against a metadata document: [`Filter::matches`] and
//! [`Predicate::matches_values`].
//!
//! A predicate looks at every value its path reached and, for each value that is an array, at
//! each of its elements; it matches when any of them does (equality also compares a whole array
//! against an array operand). Equality uses the total order of `order`; range operators only
//! compare within the operand's class, so a type mismatch is no match, never an error. A missing
//! field matches `$eq: null` and the negations (`$ne`, `$nin`, `Not`).

use std::cmp::Ordering;

use super::order::range_compare;
use crate::{compare_values, Filter, Metadata, Predicate, Value};

impl Filter {
    /// Whether the document satisfies the filter.
    ///
    /// Evaluation recurses once per nesting level; filters from the JSON parser are at most
    /// [`MAX_FILTER_DEPTH`](crate::MAX_FILTER_DEPTH) deep, and [`Filter::check_limits`] checks
    /// hand-built ones.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        match self {
            Filter::True => true,
            Filter::And(filters) => filters.iter().all(|f| f.matches(metadata)),
            Filter::Or(filters) => filters.iter().any(|f| f.matches(metadata)),
            Filter::Not(inner) => !inner.matches(metadata),
            Filter::Field { path, predicate } => predicate.matches_values(&path.resolve(metadata)),
        }
    }
}

impl Predicate {
    /// Whether the predicate holds for the values a path reached (see
    /// [`FieldPath::resolve`](crate::FieldPath::resolve)).
    pub fn matches_values(&self, values: &[&Value]) -> bool {
        match self {
            Predicate::Eq(operand) => equality_matches(operand, values),
            Predicate::Ne(operand) => !equality_matches(operand, values),
            Predicate::Gt(operand) => range_matches(operand, values, Ordering::is_gt),
            Predicate::Gte(operand) => range_matches(operand, values, Ordering::is_ge),
            Predicate::Lt(operand) => range_matches(operand, values, Ordering::is_lt),
            Predicate::Lte(operand) => range_matches(operand, values, Ordering::is_le),
            Predicate::In(operands) => operands.iter().any(|o| equality_matches(o, values)),
            Predicate::Nin(operands) => !operands.iter().any(|o| equality_matches(o, values)),
            Predicate::Exists(wanted) => values.is_empty() != *wanted,
            Predicate::Prefix(prefix) => any_candidate(
                values,
                |v| matches!(v, Value::String(s) if s.starts_with(prefix.as_str())),
            ),
            Predicate::Not(inner) => !inner.matches_values(values),
            Predicate::All(predicates) => predicates.iter().all(|p| p.matches_values(values)),
        }
    }
}

/// Calls `test` on every candidate: each reached value, and each element of a reached array.
fn any_candidate(values: &[&Value], mut test: impl FnMut(&Value) -> bool) -> bool {
    values.iter().any(|value| {
        test(value) || matches!(value, Value::Array(items) if items.iter().any(&mut test))
    })
}

fn equality_matches(operand: &Value, values: &[&Value]) -> bool {
    if values.is_empty() {
        return matches!(operand, Value::Nil);
    }
    any_candidate(values, |v| compare_values(v, operand) == Ordering::Equal)
}

fn range_matches(operand: &Value, values: &[&Value], accept: fn(Ordering) -> bool) -> bool {
    any_candidate(values, |v| range_compare(v, operand).is_some_and(accept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_fixtures::{array, doc, sample, ts};
    use crate::{and, field, not, or, Timestamp};

    #[test]
    fn equality_and_inequality() {
        let m = sample();
        assert!(field("patient_id").eq("12345").matches(&m));
        assert!(!field("patient_id").eq("1234").matches(&m));
        assert!(!field("patient_id").eq(12345).matches(&m));
        assert!(field("patient_id").ne("1").matches(&m));
        assert!(!field("patient_id").ne("12345").matches(&m));
        assert!(field("raw").eq(Value::Binary(vec![1, 2, 3])).matches(&m));
        assert!(field("contrast").eq(true).matches(&m));
        assert!(field("nothing").eq(Value::Nil).matches(&m));
    }

    #[test]
    fn range_type_mismatch_is_no_match() {
        let m = sample();
        assert!(!field("patient_id").gt(1).matches(&m));
        assert!(!field("patient_id").lt(1).matches(&m));
        assert!(!field("slices").gt("a").matches(&m));
        assert!(!field("slices").lt("a").matches(&m));
        assert!(!field("nothing").gte(Value::Nil).matches(&m));
        assert!(!field("study_date").gt(0).matches(&m));
        assert!(field("patient_id").gt("1").matches(&m));
        assert!(field("contrast").gt(false).matches(&m));
        assert!(field("raw").lt(Value::Binary(vec![1, 3])).matches(&m));
        assert!(!field("dose").gt(f64::NAN).matches(&m));
        assert!(!field("dose").lt(f64::NAN).matches(&m));
    }

    #[test]
    fn timestamps_compare_in_time_order() {
        let m = sample();
        assert!(field("study_date").gt(ts(1_700_000_000)).matches(&m));
        assert!(field("study_date").lt(ts(1_704_067_201)).matches(&m));
        let later = Value::Timestamp(Timestamp {
            secs: 1_704_067_200,
            nanos: 1,
        });
        assert!(field("study_date").lt(later).matches(&m));
        assert!(!field("study_date").gt(ts(1_704_067_200)).matches(&m));
        let before_epoch = Value::Timestamp(Timestamp {
            secs: -1,
            nanos: 999_999_999,
        });
        assert_eq!(compare_values(&before_epoch, &ts(0)), Ordering::Less);
    }

    #[test]
    fn dotted_paths_and_arrays_match_any() {
        let m = sample();
        assert!(field("study.series.count").eq(3).matches(&m));
        assert!(field("study.series.count").gt(5).matches(&m));
        assert!(!field("study.series.count").gt(10).matches(&m));
        assert!(field("study.series.kind").eq("axial").matches(&m));
        assert!(field("study.series.kind").exists(true).matches(&m));
        assert!(field("study.missing").exists(false).matches(&m));
        assert!(field("tags").eq("head").matches(&m));
        assert!(field("tags")
            .eq(array(&["ct".into(), "head".into()]))
            .matches(&m));
        assert!(!field("tags")
            .eq(array(&["head".into(), "ct".into()]))
            .matches(&m));
        assert!(field("tags").prefix("he").matches(&m));
        assert!(field("tags").is_in(["x", "ct"]).matches(&m));
        assert!(!field("tags").not_in(["x", "ct"]).matches(&m));
        assert!(!field("tags").ne("ct").matches(&m));
        // A scalar on the way ends the path.
        assert!(field("slices.x").exists(false).matches(&m));
        // Operators on one field may be satisfied by different elements.
        let both = Predicate::All(vec![
            Predicate::Gt(Value::Int(5)),
            Predicate::Lt(Value::Int(5)),
        ]);
        assert!(field("study.series.count").matching(both).matches(&m));
        // Nested arrays are searched one level deep only.
        let nested = doc(&[("a", array(&[array(&[1.into()])]))]);
        assert!(field("a").eq(array(&[1.into()])).matches(&nested));
        assert!(!field("a").eq(1).matches(&nested));
    }

    #[test]
    fn missing_fields() {
        let m = sample();
        assert!(field("absent").ne("x").matches(&m));
        assert!(field("absent").not_in(["x"]).matches(&m));
        assert!(field("absent").eq(Value::Nil).matches(&m));
        assert!(!field("absent").ne(Value::Nil).matches(&m));
        assert!(field("absent").is_in([Value::Nil]).matches(&m));
        assert!(!field("absent").eq("x").matches(&m));
        assert!(!field("absent").gt(0).matches(&m));
        assert!(!field("absent").prefix("").matches(&m));
        assert!(!field("absent").exists(true).matches(&m));
        assert!(field("absent").exists(false).matches(&m));
        assert!(field("nothing").exists(true).matches(&m));
    }

    #[test]
    fn prefix_is_for_strings_only() {
        let m = sample();
        assert!(field("patient_id").prefix("123").matches(&m));
        assert!(field("patient_id").prefix("").matches(&m));
        assert!(!field("patient_id").prefix("124").matches(&m));
        assert!(!field("slices").prefix("1").matches(&m));
    }

    #[test]
    fn both_forms_of_not() {
        let m = sample();
        let not_gt = |n: i32| Predicate::Not(Box::new(Predicate::Gt(n.into())));
        assert!(field("slices").matching(not_gt(200)).matches(&m));
        assert!(!field("slices").matching(not_gt(5)).matches(&m));
        assert!(field("absent").matching(not_gt(5)).matches(&m));
        assert!(field("patient_id").matching(not_gt(5)).matches(&m));
        assert!(not(field("slices").gt(200)).matches(&m));
        assert!(!not(field("slices").gt(5)).matches(&m));
        assert!(!not(Filter::True).matches(&m));
    }

    #[test]
    fn logical_combinations() {
        let m = sample();
        let yes = field("slices").eq(120);
        let no = field("slices").eq(1);
        assert!(and([yes.clone(), yes.clone()]).matches(&m));
        assert!(!and([yes.clone(), no.clone()]).matches(&m));
        assert!(or([no.clone(), yes.clone()]).matches(&m));
        assert!(!or([no.clone(), no.clone()]).matches(&m));
        assert!(and([]).matches(&m));
        assert!(!or([]).matches(&m));
        assert!(Filter::True.matches(&m));
        assert!(Filter::default().matches(&Metadata::new()));
        let chained = yes.clone().and(no.clone()).and(yes.clone());
        assert_eq!(chained, and([yes.clone(), no.clone(), yes.clone()]));
        assert_eq!(no.clone().or(yes.clone()), or([no, yes]));
    }
}

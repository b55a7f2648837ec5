//! The total order of [`Value`]s ([`compare_values`]) used for sorting and for equality in
//! filters, and the within-class order ([`range_compare`]) that range operators use: numbers
//! compare exactly across ints and floats, strings and binaries bytewise, timestamps in time
//! order.

use std::cmp::Ordering;

use crate::Value;

/// Orders two values of the same comparable class (numbers, strings, binaries, booleans,
/// timestamps); `None` across classes, for containers and nulls, and when a NaN is involved.
pub(super) fn range_compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Binary(x), Value::Binary(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        _ => compare_numbers(a, b),
    }
}

/// Exact numeric order across ints and floats; `None` if either is not a number or is NaN.
fn compare_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => compare_int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => compare_int_float(*y, *x).map(Ordering::reverse),
        _ => None,
    }
}

/// Compares an integer with a float without rounding the integer; `None` for NaN.
fn compare_int_float(int: i64, float: f64) -> Option<Ordering> {
    /// 2^63, exactly representable as a float; `i64::MAX < TWO_POW_63`.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if float < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // In [-2^63, 2^63) and integral, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole_int = whole as i64;
    Some(int.cmp(&whole_int).then_with(|| {
        // Equal whole parts: the fraction decides.
        if float > whole {
            Ordering::Less
        } else if float < whole {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

/// Rank of a value's type class in the total order of [`compare_values`].
fn class_rank(value: &Value) -> u8 {
    match value {
        Value::Nil => 0,
        Value::Int(_) | Value::Float(_) => 1,
        Value::String(_) => 2,
        Value::Binary(_) => 3,
        Value::Bool(_) => 4,
        Value::Timestamp(_) => 5,
        Value::Array(_) => 6,
        Value::Map(_) => 7,
    }
}

/// The total order of values used for sorting and for equality in filters.
///
/// Values of different type classes order by class:
/// null < numbers < strings < binaries < booleans < timestamps < arrays < maps.
/// Within a class:
///
/// * numbers compare by mathematical value across ints and floats (`1 == 1.0`, exactly, also for
///   integers beyond 2^53); NaN equals NaN and sorts before every other number; `-0.0 == 0.0`;
/// * strings and binaries compare bytewise; `false < true`; timestamps in time order;
/// * arrays compare element by element, then by length (a prefix sorts first);
/// * maps compare entry by entry in key order (key bytewise, then value), then by size.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    let by_class = class_rank(a).cmp(&class_rank(b));
    if by_class != Ordering::Equal {
        return by_class;
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare_values(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Map(x), Value::Map(y)) => x
            .iter()
            .zip(y)
            .map(|((ka, va), (kb, vb))| {
                ka.as_bytes()
                    .cmp(kb.as_bytes())
                    .then_with(|| compare_values(va, vb))
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => range_compare(a, b).unwrap_or_else(|| {
            // Same class and not comparable: both null, or a NaN is involved.
            let is_nan = |v: &Value| matches!(v, Value::Float(f) if f.is_nan());
            is_nan(b).cmp(&is_nan(a))
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::field;
    use crate::query::test_fixtures::{array, map, sample, ts};
    use crate::{Text, Timestamp};

    #[test]
    fn numbers_compare_across_int_and_float() {
        let m = sample();
        assert!(field("slices").eq(120.0).matches(&m));
        assert!(field("slices").lt(120.5).matches(&m));
        assert!(field("slices").gt(119.9).matches(&m));
        assert!(field("slices").gte(120.0).matches(&m));
        assert!(field("slices").lte(120).matches(&m));
        assert!(!field("slices").lt(120).matches(&m));
        assert!(field("dose").gt(0).matches(&m));
        assert!(field("dose").lt(1).matches(&m));
        assert!(field("dose")
            .is_in([Value::Int(1), Value::Float(0.5)])
            .matches(&m));
        // Exact comparison beyond 2^53: i64::MAX is below 2^63 as a float.
        assert_eq!(
            compare_values(&Value::Int(i64::MAX), &Value::Float(2f64.powi(63))),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Int(i64::MIN), &Value::Float(-(2f64.powi(63)))),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(
                &Value::Int((1 << 53) + 1),
                &Value::Float(9_007_199_254_740_992.0)
            ),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Value::Float(-1.5), &Value::Int(-1)),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Float(f64::INFINITY), &Value::Int(i64::MAX)),
            Ordering::Greater
        );
    }

    #[test]
    fn total_order_of_values() {
        let ascending = [
            Value::Nil,
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(-3),
            Value::Float(-0.5),
            Value::Int(0),
            Value::Float(2.5),
            Value::Int(3),
            Value::String(Text::default()),
            Value::String("B".into()),
            Value::String("a".into()),
            Value::String("é".into()),
            Value::Binary(vec![]),
            Value::Binary(vec![0]),
            Value::Bool(false),
            Value::Bool(true),
            ts(-5),
            ts(7),
            array(&[]),
            array(&[1.into()]),
            array(&[1.into(), 0.into()]),
            array(&[2.into()]),
            map(&[]),
            map(&[("a", 2.into())]),
            map(&[("a", 2.into()), ("b", 0.into())]),
            map(&[("b", 0.into())]),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(compare_values(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(
            compare_values(&Value::Float(f64::NAN), &Value::Float(f64::NAN)),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(&Value::Float(-0.0), &Value::Int(0)),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(
                &array(&[1.into(), 2.5.into()]),
                &array(&[1.0.into(), 2.5.into()])
            ),
            Ordering::Equal
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            any::<i64>().prop_map(Value::Int),
            prop_oneof![
                Just(f64::NAN),
                Just(-0.0),
                Just(f64::INFINITY),
                (-3i32..3).prop_map(|n| f64::from(n) / 2.0),
                any::<f64>(),
            ]
            .prop_map(Value::Float),
            "[ab]{0,2}".prop_map(Value::from),
            proptest::collection::vec(0u8..3, 0..3).prop_map(Value::Binary),
            (-2i64..2, 0u32..2)
                .prop_map(|(secs, nanos)| Value::Timestamp(Timestamp { secs, nanos })),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[ab]", inner, 0..3)
                    .prop_map(|m| Value::Map(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn compare_values_is_a_total_order(a in arb_value(), b in arb_value(), c in arb_value()) {
            prop_assert_eq!(compare_values(&a, &b), compare_values(&b, &a).reverse());
            prop_assert_eq!(compare_values(&a, &a), Ordering::Equal);
            let mut sorted = [a, b, c];
            sorted.sort_by(compare_values);
            prop_assert!(compare_values(&sorted[0], &sorted[2]).is_le());
            prop_assert!(compare_values(&sorted[0], &sorted[1]).is_le());
            prop_assert!(compare_values(&sorted[1], &sorted[2]).is_le());
        }

        #[test]
        fn int_float_comparison_is_exact(i in any::<i64>(), f in any::<f64>()) {
            let expected = if f.is_nan() {
                Ordering::Greater
            } else {
                // i128 holds every i64 and every integral f64 below 2^127 exactly.
                let whole = f.trunc();
                if whole >= 1.7e38 {
                    Ordering::Less
                } else if whole <= -1.7e38 {
                    Ordering::Greater
                } else {
                    #[allow(clippy::cast_possible_truncation)]
                    let whole_int = whole as i128;
                    i128::from(i).cmp(&whole_int).then(
                        0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
                    )
                }
            };
            prop_assert_eq!(compare_values(&Value::Int(i), &Value::Float(f)), expected);
        }
    }

    #[test]
    fn map_keys_compare_bytewise() {
        let a = Value::Map(BTreeMap::from([("B".into(), Value::Nil)]));
        let b = Value::Map(BTreeMap::from([("a".into(), Value::Nil)]));
        assert_eq!(compare_values(&a, &b), Ordering::Less);
    }
}

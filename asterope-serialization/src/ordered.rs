//! Order-preserving, self-delimiting byte encoding of scalar metadata values, for the keys of
//! secondary indexes.
//!
//! An index key is the index path, the encoded value, then the object key; comparing keys
//! bytewise must therefore order values as [`compare_values`](asterope_core::compare_values)
//! does, and the encoded value must carry its own length. The layout is one type-class tag byte,
//! ranked as `compare_values` ranks the classes (null < numbers < strings < binaries < booleans <
//! timestamps), then:
//!
//! * null: nothing;
//! * numbers (ints and floats share one class): the value as an `f64` (ints converted with
//!   `as f64`, rounding to nearest) in 8 order-preserving big-endian bytes: the sign bit flipped
//!   for positives, every bit flipped for negatives. `-0.0` is written as `0.0`; every NaN is
//!   written as eight zero bytes, below `-inf`, because `compare_values` sorts NaN before every
//!   other number;
//! * strings and binaries: the bytes with `0x00` escaped as `0x00 0xFF`, then the terminator
//!   `0x00 0x01`, so a value sorts before its extensions;
//! * booleans: `0` or `1`;
//! * timestamps: the seconds as a big-endian `i64` with the sign bit flipped, then the
//!   nanoseconds as a big-endian `u32`.
//!
//! The number encoding is monotone but not injective: integers beyond 2^53 that round to the same
//! `f64` (and such an integer and that `f64`) share an encoding, although `compare_values` tells
//! them apart. An index lookup may therefore return a few extra candidates at the edges of a
//! range, never miss one; the query executor re-checks every candidate against the predicate.
//! Every other class is encoded injectively.

use asterope_core::Value;

/// Tag of null.
const TAG_NIL: u8 = 0x01;
/// Tag of numbers, ints and floats alike.
const TAG_NUMBER: u8 = 0x02;
/// Tag of strings.
const TAG_STRING: u8 = 0x03;
/// Tag of binaries.
const TAG_BINARY: u8 = 0x04;
/// Tag of booleans.
const TAG_BOOL: u8 = 0x05;
/// Tag of timestamps.
const TAG_TIMESTAMP: u8 = 0x06;

/// Escape byte inside strings and binaries; always followed by [`ESCAPED_ZERO`] or
/// [`TERMINATOR`].
const ESCAPE: u8 = 0x00;
/// Follows [`ESCAPE`] for a zero byte of the value.
const ESCAPED_ZERO: u8 = 0xFF;
/// Follows [`ESCAPE`] at the end of the value.
const TERMINATOR: u8 = 0x01;

/// Sign bit of a 64-bit word.
const SIGN_BIT: u64 = 1 << 63;

/// Appends the order-preserving encoding of a scalar to `out` and returns `true`; returns
/// `false`, appending nothing, for arrays and maps, which are not indexable as a whole.
///
/// For scalars `a` and `b`, `compare_values(a, b)` being `Less` implies the encoding of `a` is
/// bytewise at most that of `b` (strictly less unless both are numbers that round to the same
/// `f64`), and `Equal` implies equal encodings. See the module documentation for the layout.
pub fn encode_ordered(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Nil => out.push(TAG_NIL),
        #[allow(clippy::cast_precision_loss)] // Documented: rounding keeps the order monotone.
        Value::Int(n) => encode_number(*n as f64, out),
        Value::Float(f) => encode_number(*f, out),
        Value::String(s) => {
            out.push(TAG_STRING);
            escape_into(s.as_bytes(), out);
            out.extend_from_slice(&[ESCAPE, TERMINATOR]);
        }
        Value::Binary(bytes) => {
            out.push(TAG_BINARY);
            escape_into(bytes, out);
            out.extend_from_slice(&[ESCAPE, TERMINATOR]);
        }
        Value::Bool(b) => out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]),
        Value::Timestamp(t) => {
            out.push(TAG_TIMESTAMP);
            let secs = u64::from_be_bytes(t.secs.to_be_bytes()) ^ SIGN_BIT;
            out.extend_from_slice(&secs.to_be_bytes());
            out.extend_from_slice(&t.nanos.to_be_bytes());
        }
        Value::Array(_) | Value::Map(_) => return false,
    }
    true
}

/// Appends the tag and escaped bytes of `prefix` without the terminator: exactly the strings that
/// start with `prefix` have encodings that start with these bytes (for `$prefix` index scans).
pub fn encode_string_prefix(prefix: &str, out: &mut Vec<u8>) {
    out.push(TAG_STRING);
    escape_into(prefix.as_bytes(), out);
}

/// The length of the one encoded value at the start of `bytes`, or `None` if it is malformed or
/// truncated (an unknown tag, a boolean byte other than 0 or 1, a bad escape, a missing
/// terminator). Bytes after the value are ignored.
pub fn ordered_len(bytes: &[u8]) -> Option<usize> {
    let (&tag, body) = bytes.split_first()?;
    let body_len = match tag {
        TAG_NIL => 0,
        TAG_NUMBER => fixed(body, 8)?,
        TAG_STRING | TAG_BINARY => escaped_len(body)?,
        TAG_BOOL => match body.first()? {
            0 | 1 => 1,
            _ => return None,
        },
        TAG_TIMESTAMP => fixed(body, 12)?,
        _ => return None,
    };
    Some(1 + body_len)
}

/// `len` if `body` holds at least that many bytes.
fn fixed(body: &[u8], len: usize) -> Option<usize> {
    (body.len() >= len).then_some(len)
}

/// Length of an escaped byte string, terminator included.
fn escaped_len(body: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        match *body.get(i)? {
            ESCAPE => match *body.get(i + 1)? {
                ESCAPED_ZERO => i += 2,
                TERMINATOR => return Some(i + 2),
                _ => return None,
            },
            _ => i += 1,
        }
    }
}

/// Appends `bytes` with every zero byte escaped.
fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        if byte == 0 {
            out.extend_from_slice(&[ESCAPE, ESCAPED_ZERO]);
        } else {
            out.push(byte);
        }
    }
}

/// Appends the number tag and the order-preserving form of `f`.
fn encode_number(f: f64, out: &mut Vec<u8>) {
    out.push(TAG_NUMBER);
    let word = if f.is_nan() {
        // Below every other number, as in `compare_values`; `-inf` encodes as 0x000F_FFFF_...
        0
    } else {
        // `-0.0 + 0.0` is `0.0`, and adding zero changes no other value.
        let bits = (f + 0.0).to_bits();
        if bits & SIGN_BIT == 0 {
            bits ^ SIGN_BIT
        } else {
            !bits
        }
    };
    out.extend_from_slice(&word.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;
    use std::collections::BTreeMap;

    use asterope_core::{compare_values, Timestamp};
    use proptest::prelude::*;

    use super::*;

    fn enc(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_ordered(value, &mut out), "{value:?} is a scalar");
        out
    }

    fn prefix_enc(prefix: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_string_prefix(prefix, &mut out);
        out
    }

    fn ts(secs: i64, nanos: u32) -> Value {
        Value::Timestamp(Timestamp { secs, nanos })
    }

    /// Both are numbers and at least one is an int (the only pairs that may collide).
    fn may_collide(a: &Value, b: &Value) -> bool {
        let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
        number(a) && number(b) && (matches!(a, Value::Int(_)) || matches!(b, Value::Int(_)))
    }

    #[test]
    fn hand_picked_values_are_in_order() {
        let ordered = [
            Value::Nil,
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(i64::MIN),
            Value::Float(-1.5),
            Value::Int(-1),
            Value::Float(-f64::from_bits(1)),
            Value::Int(0),
            Value::Float(f64::from_bits(1)),
            Value::Float(f64::MIN_POSITIVE),
            Value::Float(0.5),
            Value::Int(1),
            Value::Float(1.5),
            Value::Int(1 << 53),
            Value::Float(1e300),
            Value::Float(f64::INFINITY),
            Value::from(""),
            Value::from("\0"),
            Value::from("\0\0"),
            Value::from("\0a"),
            Value::from("\x01"),
            Value::from("a"),
            Value::from("a\0"),
            Value::from("a\x01"),
            Value::from("ab"),
            Value::from("b"),
            Value::from("é"),
            Value::Binary(vec![]),
            Value::Binary(vec![0]),
            Value::Binary(vec![0, 0xFF]),
            Value::Binary(vec![0xFE]),
            Value::Binary(vec![0xFF]),
            Value::Binary(vec![0xFF, 0]),
            Value::Bool(false),
            Value::Bool(true),
            ts(i64::MIN, 0),
            ts(-1, 999_999_999),
            ts(0, 0),
            ts(0, 1),
            ts(1, 0),
            ts(i64::MAX, 999_999_999),
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(compare_values(a, b), Ordering::Less, "{a:?} < {b:?}");
            assert!(enc(a) < enc(b), "enc({a:?}) < enc({b:?})");
        }
    }

    #[test]
    fn exact_layouts() {
        assert_eq!(enc(&Value::Nil), [TAG_NIL]);
        assert_eq!(enc(&Value::Int(0)), [TAG_NUMBER, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(enc(&Value::Float(-0.0)), enc(&Value::Int(0)));
        assert_eq!(
            enc(&Value::Float(f64::NAN)),
            [TAG_NUMBER, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(enc(&Value::Float(-f64::NAN)), enc(&Value::Float(f64::NAN)));
        assert_eq!(
            enc(&Value::from("a\0b")),
            [TAG_STRING, b'a', 0x00, 0xFF, b'b', 0x00, 0x01]
        );
        assert_eq!(enc(&Value::Binary(vec![])), [TAG_BINARY, 0x00, 0x01]);
        assert_eq!(enc(&Value::Bool(true)), [TAG_BOOL, 1]);
        assert_eq!(
            enc(&ts(-1, 7)),
            [
                TAG_TIMESTAMP,
                0x7F,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0xFF,
                0,
                0,
                0,
                7
            ]
        );
        assert_eq!(prefix_enc("a\0"), [TAG_STRING, b'a', 0x00, 0xFF]);
    }

    #[test]
    fn huge_ints_share_an_encoding_with_their_rounding() {
        let (int, float) = (
            Value::Int((1 << 53) + 1),
            Value::Float(9_007_199_254_740_992.0),
        );
        assert_eq!(compare_values(&int, &float), Ordering::Greater);
        assert_eq!(enc(&int), enc(&float));
        assert_eq!(
            enc(&Value::Int(i64::MAX)),
            enc(&Value::Float(9.223_372_036_854_776e18))
        );
    }

    #[test]
    fn containers_are_not_encoded() {
        let mut out = vec![7];
        assert!(!encode_ordered(&Value::Array(vec![Value::Nil]), &mut out));
        assert!(!encode_ordered(&Value::Map(BTreeMap::new()), &mut out));
        assert_eq!(out, [7]);
    }

    #[test]
    fn malformed_encodings_have_no_length() {
        for bad in [
            &[][..],
            &[0x00],
            &[0x07],
            &[TAG_NUMBER, 0, 0, 0, 0, 0, 0, 0],
            &[TAG_STRING, b'a'],
            &[TAG_STRING, b'a', 0x00],
            &[TAG_STRING, 0x00, 0x02],
            &[TAG_BINARY, 0x00, 0xFF],
            &[TAG_BOOL],
            &[TAG_BOOL, 2],
            &[TAG_TIMESTAMP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(ordered_len(bad), None, "{bad:?}");
        }
        assert_eq!(ordered_len(&[TAG_NIL, 0xAA]), Some(1));
        assert_eq!(ordered_len(&[TAG_STRING, 0x00, 0x01, 0x00, 0x01]), Some(3));
    }

    #[test]
    fn prefix_scans_select_extensions() {
        assert!(enc(&Value::from("abc")).starts_with(&prefix_enc("ab")));
        assert!(enc(&Value::from("ab")).starts_with(&prefix_enc("ab")));
        assert!(enc(&Value::from("ab")).starts_with(&prefix_enc("")));
        assert!(!enc(&Value::from("a")).starts_with(&prefix_enc("ab")));
        assert!(!enc(&Value::from("a")).starts_with(&prefix_enc("a\0")));
        assert!(!enc(&Value::Binary(b"ab".to_vec())).starts_with(&prefix_enc("a")));
    }

    /// Integers crowded around the edges where `as f64` rounds.
    fn int() -> impl Strategy<Value = i64> {
        const TWO_53: i64 = 1 << 53;
        prop_oneof![
            -3i64..3,
            any::<i64>(),
            i64::MIN..i64::MIN + 2048,
            i64::MAX - 2048..=i64::MAX,
            TWO_53 - 4..TWO_53 + 4,
            -TWO_53 - 4..-TWO_53 + 4,
        ]
    }

    fn float() -> impl Strategy<Value = f64> {
        let special = prop::sample::select(vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7FF0_0000_0000_0001), // A signalling NaN.
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
        ]);
        prop_oneof![
            special,
            any::<f64>(),
            (-6i32..6).prop_map(|n| f64::from(n) / 2.0),
            (any::<bool>(), 1u64..1 << 52).prop_map(|(negative, mantissa)| {
                let subnormal = f64::from_bits(mantissa);
                if negative {
                    -subnormal
                } else {
                    subnormal
                }
            }),
            (int(), prop::sample::select(vec![-0.5, 0.0, 0.5]))
                .prop_map(|(n, fraction)| n as f64 + fraction),
        ]
    }

    /// Strings over a small alphabet with zero bytes and multi-byte characters, so that common
    /// prefixes are frequent.
    fn string() -> impl Strategy<Value = String> {
        let chars = prop::sample::select(vec!['\0', '\x01', 'a', 'b', '\u{7f}', 'é', '\u{10000}']);
        prop_oneof![
            3 => proptest::collection::vec(chars, 0..5).prop_map(|c| c.into_iter().collect()),
            1 => any::<String>(),
        ]
    }

    fn binary() -> impl Strategy<Value = Vec<u8>> {
        let bytes = prop::sample::select(vec![0x00, 0x01, b'a', 0xFE, 0xFF]);
        prop_oneof![
            3 => proptest::collection::vec(bytes, 0..5),
            1 => proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    fn timestamp() -> impl Strategy<Value = Value> {
        let secs = prop_oneof![-2i64..2, any::<i64>(), Just(i64::MIN), Just(i64::MAX)];
        let nanos = prop_oneof![0u32..2, 999_999_998u32..1_000_000_000, 0u32..1_000_000_000];
        (secs, nanos).prop_map(|(secs, nanos)| ts(secs, nanos))
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => Just(Value::Nil),
            1 => any::<bool>().prop_map(Value::Bool),
            3 => int().prop_map(Value::Int),
            3 => float().prop_map(Value::Float),
            3 => string().prop_map(Value::from),
            2 => binary().prop_map(Value::Binary),
            2 => timestamp(),
        ]
    }

    fn check_pair(a: &Value, b: &Value) -> Result<(), TestCaseError> {
        let (ea, eb) = (enc(a), enc(b));
        match compare_values(a, b) {
            Ordering::Equal => prop_assert_eq!(&ea, &eb, "{:?} == {:?}", a, b),
            Ordering::Less if may_collide(a, b) => {
                prop_assert!(ea <= eb, "{:?} < {:?}", a, b);
            }
            Ordering::Less => prop_assert!(ea < eb, "{:?} < {:?}", a, b),
            Ordering::Greater if may_collide(a, b) => {
                prop_assert!(ea >= eb, "{:?} > {:?}", a, b);
            }
            Ordering::Greater => prop_assert!(ea > eb, "{:?} > {:?}", a, b),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn encoding_is_monotone(a in scalar(), b in scalar()) {
            check_pair(&a, &b)?;
        }

        #[test]
        fn encoding_is_monotone_among_numbers(
            a in prop_oneof![int().prop_map(Value::Int), float().prop_map(Value::Float)],
            b in prop_oneof![int().prop_map(Value::Int), float().prop_map(Value::Float)],
        ) {
            check_pair(&a, &b)?;
        }

        #[test]
        fn encoding_is_monotone_within_a_class(
            (a, b) in prop_oneof![
                (string(), string()).prop_map(|(a, b)| (Value::from(a), Value::from(b))),
                (binary(), binary()).prop_map(|(a, b)| (Value::Binary(a), Value::Binary(b))),
                (timestamp(), timestamp()),
            ],
        ) {
            check_pair(&a, &b)?;
        }

        #[test]
        fn encoding_is_self_delimiting(
            a in scalar(),
            suffix in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let encoded = enc(&a);
            let mut bytes = encoded.clone();
            bytes.extend_from_slice(&suffix);
            prop_assert_eq!(ordered_len(&bytes), Some(encoded.len()));
            prop_assert_eq!(ordered_len(&encoded[..encoded.len() - 1]), None);
        }

        #[test]
        fn string_prefix_selects_exactly_the_extensions(s in string(), p in string()) {
            let encoded = enc(&Value::from(s.clone()));
            prop_assert_eq!(s.starts_with(&p), encoded.starts_with(&prefix_enc(&p)));
            let (head, _) = s.split_at(s.char_indices().nth(1).map_or(s.len(), |(i, _)| i));
            prop_assert!(encoded.starts_with(&prefix_enc(head)));
        }
    }
}

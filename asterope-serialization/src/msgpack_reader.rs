//! A direct MessagePack reader over a byte slice, for the hot read paths (stored records are
//! decoded for every row a query or listing returns).
//!
//! It decodes exactly what [`crate::decode`] would produce, without the serde visitor machinery
//! and without temporary buffers: strings are validated in place and copied once into their
//! `String`. Anything it does not recognise (an unexpected marker, invalid UTF-8, an unknown
//! extension, nesting deeper than [`MAX_READER_DEPTH`]) makes it return `None`; callers then
//! fall back to the serde decoder, which either handles the case or names the error. So this
//! reader is an accelerator, never the authority on what is valid.

use asterope_core::{Metadata, Text, Timestamp, Value};

/// Deepest nesting the reader decodes itself (deeper documents go to the serde decoder).
pub const MAX_READER_DEPTH: usize = 64;

/// MessagePack extension type of timestamps.
const TIMESTAMP_EXT: i8 = -1;

/// What [`MsgpackReader::element_header`] learnt of a value.
struct ElementHeader {
    /// Values that follow as its elements (a map counts keys and values).
    elements: usize,
    /// Whether it is a map or an array (one more level of nesting, even when empty).
    container: bool,
}

/// A cursor over MessagePack bytes.
#[derive(Debug, Clone)]
pub struct MsgpackReader<'a> {
    rest: &'a [u8],
}

impl<'a> MsgpackReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> MsgpackReader<'a> {
        MsgpackReader { rest: bytes }
    }

    /// Whether every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.rest.is_empty()
    }

    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn be_len(&mut self, width: usize) -> Option<usize> {
        match width {
            1 => self.byte().map(usize::from),
            2 => self.array().map(|b| usize::from(u16::from_be_bytes(b))),
            _ => self
                .array()
                .and_then(|b| usize::try_from(u32::from_be_bytes(b)).ok()),
        }
    }

    /// Steps over the marker byte just looked at (nothing when the input is already empty).
    fn skip_marker(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }

    /// Consumes a nil if one is next; true if it did.
    pub fn nil(&mut self) -> bool {
        if self.rest.first() == Some(&0xc0) {
            self.skip_marker();
            true
        } else {
            false
        }
    }

    /// The length of a map.
    pub fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x80..=0x8f => Some(usize::from(m & 0x0f)),
            0xde => self.be_len(2),
            0xdf => self.be_len(4),
            _ => None,
        }
    }

    /// A string.
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.str_bytes()?).ok()
    }

    /// A string's bytes, not checked to be UTF-8: for comparing against known names.
    pub fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be_len(1)?,
            0xda => self.be_len(2)?,
            0xdb => self.be_len(4)?,
            _ => return None,
        };
        self.take(len)
    }

    /// A byte string.
    pub fn bin(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            0xc4 => self.be_len(1)?,
            0xc5 => self.be_len(2)?,
            0xc6 => self.be_len(4)?,
            _ => return None,
        };
        self.take(len)
    }

    /// An integer as `i128`, whatever its encoded width and sign.
    fn integer(&mut self) -> Option<i128> {
        Some(match self.byte()? {
            m @ 0x00..=0x7f => i128::from(m),
            m @ 0xe0..=0xff => i128::from(i8::from_be_bytes([m])),
            0xcc => i128::from(self.byte()?),
            0xcd => i128::from(u16::from_be_bytes(self.array()?)),
            0xce => i128::from(u32::from_be_bytes(self.array()?)),
            0xcf => i128::from(u64::from_be_bytes(self.array()?)),
            0xd0 => i128::from(i8::from_be_bytes(self.array()?)),
            0xd1 => i128::from(i16::from_be_bytes(self.array()?)),
            0xd2 => i128::from(i32::from_be_bytes(self.array()?)),
            0xd3 => i128::from(i64::from_be_bytes(self.array()?)),
            _ => return None,
        })
    }

    /// An unsigned integer.
    pub fn u64(&mut self) -> Option<u64> {
        u64::try_from(self.integer()?).ok()
    }

    /// A signed integer.
    pub fn i64(&mut self) -> Option<i64> {
        i64::try_from(self.integer()?).ok()
    }

    /// A metadata document: a map of field names to values.
    pub fn metadata(&mut self) -> Option<Metadata> {
        self.map_body(1)
    }

    fn map_body(&mut self, depth: usize) -> Option<Metadata> {
        let len = self.map_len()?;
        let mut map = Metadata::new();
        for _ in 0..len {
            let name = self.str()?;
            let value = self.value_at(depth + 1)?;
            map.insert(Text::from(name), value);
        }
        Some(map)
    }

    /// The fields of a metadata document whose names `wanted` accepts (given as bytes); the
    /// others are skipped without being decoded.
    pub fn metadata_fields(&mut self, wanted: impl Fn(&[u8]) -> bool) -> Option<Metadata> {
        let len = self.map_len()?;
        let mut map = Metadata::new();
        for _ in 0..len {
            let name = self.str_bytes()?;
            if wanted(name) {
                let name = std::str::from_utf8(name).ok()?;
                let value = self.value_at(2)?;
                map.insert(Text::from(name), value);
            } else {
                self.skip_value()?;
            }
        }
        Some(map)
    }

    /// Steps over one value of any kind (checking its structure, not its contents).
    pub fn skip_value(&mut self) -> Option<()> {
        // Values still to step over: a container adds its elements.
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            pending += self.element_header()?.elements;
        }
        Some(())
    }

    /// Whether the value ahead nests maps and arrays at most `limit` levels deep, found without
    /// recursion (so a hostile document cannot exhaust the stack of whoever checks it). A value
    /// whose structure breaks off or is malformed within the limit counts as within it: the
    /// decoder that runs next names what is wrong.
    pub fn nests_within(&mut self, limit: usize) -> bool {
        // Elements still to step over in each open container, innermost last.
        let mut open: Vec<usize> = vec![1];
        while let Some(remaining) = open.last_mut() {
            if *remaining == 0 {
                open.pop();
                continue;
            }
            *remaining -= 1;
            let Some(header) = self.element_header() else {
                return true;
            };
            if header.container {
                if open.len() > limit {
                    return false;
                }
                open.push(header.elements);
            }
        }
        true
    }

    /// Reads one value's marker and steps over its scalar bytes: what follows is its elements.
    fn element_header(&mut self) -> Option<ElementHeader> {
        let marker = self.byte()?;
        let (skip, elements, container) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, false),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f), true),
            0x90..=0x9f => (0, usize::from(marker & 0x0f), true),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0, false),
            0xcc | 0xd0 => (1, 0, false),
            0xcd | 0xd1 => (2, 0, false),
            0xca | 0xce | 0xd2 => (4, 0, false),
            0xcb | 0xcf | 0xd3 => (8, 0, false),
            0xc4 | 0xd9 => (self.be_len(1)?, 0, false),
            0xc5 | 0xda => (self.be_len(2)?, 0, false),
            0xc6 | 0xdb => (self.be_len(4)?, 0, false),
            0xdc => (0, self.be_len(2)?, true),
            0xdd => (0, self.be_len(4)?, true),
            0xde => (0, 2 * self.be_len(2)?, true),
            0xdf => (0, 2 * self.be_len(4)?, true),
            0xd4..=0xd8 => (1 + (1 << (marker - 0xd4)), 0, false),
            0xc7 => (1 + self.be_len(1)?, 0, false),
            0xc8 => (1 + self.be_len(2)?, 0, false),
            0xc9 => (1 + self.be_len(4)?, 0, false),
            _ => return None,
        };
        self.take(skip)?;
        // Every element takes at least one byte: a count beyond the input is malformed.
        if elements > self.rest.len() {
            return None;
        }
        Some(ElementHeader {
            elements,
            container,
        })
    }

    /// Any value, as [`Value`]'s serde decoding would produce it.
    pub fn value(&mut self) -> Option<Value> {
        self.value_at(1)
    }

    fn value_at(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_READER_DEPTH {
            return None;
        }
        let marker = *self.rest.first()?;
        Some(match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => {
                let n = self.integer()?;
                // As serde decodes it: above i64::MAX an unsigned integer becomes a float.
                #[allow(clippy::cast_precision_loss)]
                i64::try_from(n).map_or_else(|_| Value::Float(n as f64), Value::Int)
            }
            0x80..=0x8f | 0xde | 0xdf => Value::Map(self.map_body(depth)?),
            0x90..=0x9f | 0xdc | 0xdd => {
                self.skip_marker();
                let len = match marker {
                    0xdc => self.be_len(2)?,
                    0xdd => self.be_len(4)?,
                    m => usize::from(m & 0x0f),
                };
                // Every element takes at least one byte: no allocation beyond the input's size.
                let mut items = Vec::with_capacity(len.min(self.rest.len()));
                for _ in 0..len {
                    items.push(self.value_at(depth + 1)?);
                }
                Value::Array(items)
            }
            0xa0..=0xbf | 0xd9..=0xdb => Value::String(self.str()?.into()),
            0xc4..=0xc6 => Value::Binary(self.bin()?.to_vec()),
            0xc0 => {
                self.skip_marker();
                Value::Nil
            }
            0xc2 | 0xc3 => {
                self.skip_marker();
                Value::Bool(marker == 0xc3)
            }
            0xca => {
                self.skip_marker();
                Value::Float(f32::from_be_bytes(self.array()?).into())
            }
            0xcb => {
                self.skip_marker();
                Value::Float(f64::from_be_bytes(self.array()?))
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                self.skip_marker();
                let len = match marker {
                    0xc7 => self.be_len(1)?,
                    0xc8 => self.be_len(2)?,
                    0xc9 => self.be_len(4)?,
                    m => 1 << (m - 0xd4),
                };
                let kind = i8::from_be_bytes([self.byte()?]);
                let payload = self.take(len)?;
                if kind != TIMESTAMP_EXT {
                    return None;
                }
                Value::Timestamp(Timestamp::from_ext_payload(payload)?)
            }
            _ => return None,
        })
    }

    /// A [`Timestamp`] encoded as a struct: the map `{"secs": i64, "nanos": u32}`.
    pub fn timestamp_struct(&mut self) -> Option<Timestamp> {
        let (mut secs, mut nanos) = (None, None);
        for _ in 0..self.map_len()? {
            match self.str_bytes()? {
                b"secs" => secs = Some(self.i64()?),
                b"nanos" => nanos = Some(u32::try_from(self.u64()?).ok()?),
                _ => return None,
            }
        }
        Some(Timestamp {
            secs: secs?,
            nanos: nanos?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::{decode, encode};
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN never equals itself", |x| !x.is_nan())
                .prop_map(Value::Float),
            ".{0,40}".prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
            (any::<i64>(), 0u32..1_000_000_000)
                .prop_map(|(secs, nanos)| Value::Timestamp(Timestamp { secs, nanos })),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,12}", inner, 0..8)
                    .prop_map(|m| Value::Map(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_what_serde_reads(doc in proptest::collection::btree_map(".{0,12}", value(), 0..10)) {
            let bytes = encode(&doc).unwrap();
            let mut reader = MsgpackReader::new(&bytes);
            let fast = reader.metadata();
            prop_assert!(reader.is_at_end());
            let slow: Metadata = decode(&bytes, "metadata").unwrap();
            prop_assert_eq!(fast, Some(slow));
        }

        #[test]
        fn never_disagrees_with_serde_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Whatever the reader accepts, serde accepts the same way.
            if let Some(fast) = MsgpackReader::new(&bytes).value() {
                let slow: Value = decode(&bytes, "value").unwrap();
                prop_assert!(fast == slow || matches!((&fast, &slow), (Value::Float(a), Value::Float(b)) if a.is_nan() && b.is_nan()));
            }
        }
    }

    proptest! {
        #[test]
        fn skips_exactly_one_value(doc in proptest::collection::btree_map(".{0,12}", value(), 0..10), keep in ".{0,12}") {
            let doc: Metadata = doc.into_iter().map(|(k, v)| (k.into(), v)).collect();
            let mut bytes = encode(&doc).unwrap();
            bytes.push(0xc3);
            let mut reader = MsgpackReader::new(&bytes);
            prop_assert_eq!(reader.skip_value(), Some(()));
            prop_assert_eq!(reader.rest, &[0xc3][..]);
            // Selecting fields gives exactly those of the full document.
            let selected = MsgpackReader::new(&bytes).metadata_fields(|name| name < keep.as_bytes());
            let mut expected = doc.clone();
            expected.retain(|name, _| name.as_str() < keep.as_str());
            prop_assert_eq!(selected, Some(expected));
        }
    }

    #[test]
    fn nesting_is_measured_without_recursion() {
        let nested = |levels: usize| {
            let mut bytes = vec![0x91; levels];
            bytes.push(0x80);
            bytes
        };
        // `levels` arrays around an empty map: levels + 1 containers deep.
        assert!(MsgpackReader::new(&nested(63)).nests_within(64));
        assert!(!MsgpackReader::new(&nested(64)).nests_within(64));
        assert!(!MsgpackReader::new(&nested(1_000_000)).nests_within(64));
        // Siblings do not add up; a map's values nest like array elements.
        assert!(MsgpackReader::new(&[0x92, 0x91, 0x80, 0x91, 0x80]).nests_within(3));
        assert!(!MsgpackReader::new(&[0x81, 0xa1, b'a', 0x91, 0x80]).nests_within(2));
        // Malformed within the limit is left to the decoder to name.
        assert!(MsgpackReader::new(&[0x92, 0xc1]).nests_within(4));
    }

    #[test]
    fn skipping_refuses_truncated_and_bomb_lengths() {
        // A string cut short, an array claiming 2^32-1 elements, a reserved marker.
        for bytes in [
            &[0xa5, b'a'][..],
            &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xc1],
        ] {
            assert_eq!(MsgpackReader::new(bytes).skip_value(), None, "{bytes:?}");
        }
    }

    #[test]
    fn every_integer_width_and_the_u64_edge() {
        let cases: Vec<(Vec<u8>, Value)> = vec![
            (vec![0x05], Value::Int(5)),
            (vec![0xff], Value::Int(-1)),
            (vec![0xcc, 200], Value::Int(200)),
            (vec![0xcd, 1, 0], Value::Int(256)),
            (vec![0xd0, 0x80], Value::Int(-128)),
            (vec![0xd1, 0xff, 0x00], Value::Int(-256)),
            (
                vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                {
                    #[allow(clippy::cast_precision_loss)]
                    Value::Float(u64::MAX as f64)
                },
            ),
            (vec![0xca, 0x3f, 0xc0, 0, 0], Value::Float(1.5)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(MsgpackReader::new(&bytes).value(), Some(expected.clone()));
            assert_eq!(decode::<Value>(&bytes, "value").unwrap(), expected);
        }
    }

    #[test]
    fn leaves_the_unusual_to_serde() {
        // Invalid UTF-8 in a string, an unknown extension, a truncated string, a reserved marker.
        for bytes in [
            &[0xa2, 0xff, 0xfe][..],
            &[0xd4, 0x05, 0x00],
            &[0xa5, b'a'],
            &[0xc1],
        ] {
            assert_eq!(MsgpackReader::new(bytes).value(), None, "{bytes:?}");
        }
        let mut deep = Value::Int(1);
        for _ in 0..MAX_READER_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(MsgpackReader::new(&encode(&deep).unwrap()).value(), None);
    }
}

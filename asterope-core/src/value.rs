//! The metadata value model: the MessagePack data model, with timestamps.
//!
//! Metadata documents are maps from field names to [`Value`]s. Values serialize through serde so
//! that MessagePack (via rmp-serde) keeps every type, timestamps included: they use the MessagePack
//! timestamp extension (type -1).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// A metadata document: field name to value.
pub type Metadata = BTreeMap<Text, Value>;

/// The strings of metadata (field names and string values): a `String` that keeps up to 24
/// bytes inline, so that a decoded document of short names and values allocates little.
/// `"text".into()` and `Text::from(string)` make one; it derefs to `str`.
pub type Text = compact_str::CompactString;

/// A metadata value.
///
/// Integers are signed 64-bit; an unsigned MessagePack integer above `i64::MAX` is read as a float.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Absent / null.
    Nil,
    /// Boolean.
    Bool(bool),
    /// Signed integer.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// UTF-8 string.
    String(Text),
    /// Raw bytes.
    Binary(Vec<u8>),
    /// Ordered list.
    Array(Vec<Value>),
    /// Nested document.
    Map(Metadata),
    /// A point in time, nanosecond precision.
    Timestamp(Timestamp),
}

impl Value {
    /// Nesting depth: scalars are 0, a container is one more than its deepest child.
    pub fn depth(&self) -> usize {
        match self {
            Value::Array(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Map(map) => 1 + map.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s.into())
    }
}
impl From<Text> for Value {
    fn from(s: Text) -> Value {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Int(n.into())
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Float(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Value {
        Value::Timestamp(t)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(n.into())
    }
}
impl From<f32> for Value {
    fn from(n: f32) -> Value {
        Value::Float(n.into())
    }
}
impl From<time::OffsetDateTime> for Value {
    fn from(t: time::OffsetDateTime) -> Value {
        Value::Timestamp(t.into())
    }
}
/// A list of values: `Value::from(vec!["a", "b"])` is an array of two strings. (A `Vec<u8>`
/// is not a list of numbers here but has no conversion: say [`Value::Binary`] for bytes.)
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}
/// `None` is [`Value::Nil`]; `Some(v)` is `v`'s value.
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(option: Option<T>) -> Value {
        option.map_or(Value::Nil, Into::into)
    }
}

/// The largest metadata integer is `i64::MAX`, so a `u64` converts only when it is at most that:
/// a fallible conversion, hence `TryFrom` and not `From`. Above it the error is
/// [`Error::InvalidMetadata`] naming the number (never a rounded float).
impl TryFrom<u64> for Value {
    type Error = Error;

    fn try_from(n: u64) -> Result<Value> {
        i64::try_from(n)
            .map(Value::Int)
            .map_err(|_| integer_out_of_range(n))
    }
}

/// The error of an integer that metadata cannot hold: integers are signed 64-bit.
pub(crate) fn integer_out_of_range(n: impl fmt::Display) -> Error {
    Error::InvalidMetadata {
        reason: format!(
            "integer {n} is outside the signed 64-bit range of metadata integers \
             ({}..={})",
            i64::MIN,
            i64::MAX
        ),
    }
}

/// Seconds and nanoseconds since the Unix epoch (UTC).
///
/// Through serde it is the map `{"secs": .., "nanos": ..}` (the stored record format). The
/// struct's serde name is `$asterope::Timestamp`, which no format writes out; the typed-metadata
/// serializer recognizes it, so a `Timestamp` field of a typed document is stored as a
/// [`Value::Timestamp`] and read back from one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename = "$asterope::Timestamp")]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before).
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

/// MessagePack extension type of timestamps.
pub(crate) const TIMESTAMP_EXT: i8 = -1;
/// rmp-serde's magic newtype name for extension values.
pub(crate) const EXT_STRUCT: &str = "_ExtStruct";
/// The serde name of [`Timestamp`] (must equal its `#[serde(rename)]`).
pub(crate) const TIMESTAMP_STRUCT: &str = "$asterope::Timestamp";

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        let now = time::OffsetDateTime::now_utc();
        Timestamp {
            secs: now.unix_timestamp(),
            nanos: now.nanosecond(),
        }
    }

    /// Parses RFC 3339 (`2024-01-31T12:00:00Z`, fractional seconds and offsets allowed) or a bare
    /// date (`2024-01-31`, midnight UTC).
    pub fn parse(text: &str) -> Result<Timestamp> {
        use time::format_description::well_known::Rfc3339;
        let parsed = time::OffsetDateTime::parse(text, &Rfc3339).or_else(|_| {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format).map(|d| d.midnight().assume_utc())
        });
        let datetime = parsed.map_err(|e| Error::InvalidArgument {
            reason: format!("invalid timestamp {text:?} (expected RFC 3339): {e}"),
        })?;
        Ok(Timestamp {
            secs: datetime.unix_timestamp(),
            nanos: datetime.nanosecond(),
        })
    }

    /// RFC 3339 text in UTC.
    pub fn to_rfc3339(&self) -> String {
        use time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::from_unix_timestamp(self.secs)
            .ok()
            .and_then(|t| t.replace_nanosecond(self.nanos).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}.{:09}", self.secs, self.nanos))
    }

    /// Encodes as the 12-byte MessagePack timestamp-96 payload.
    pub(crate) fn to_ext_payload(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.nanos.to_be_bytes());
        out[4..].copy_from_slice(&self.secs.to_be_bytes());
        out
    }

    /// Decodes any of the MessagePack timestamp payload forms (32, 64 or 96 bits): the payload
    /// of extension type -1.
    pub fn from_ext_payload(payload: &[u8]) -> Option<Timestamp> {
        match payload.len() {
            4 => {
                let secs = u32::from_be_bytes(payload.try_into().ok()?);
                Some(Timestamp {
                    secs: secs.into(),
                    nanos: 0,
                })
            }
            8 => {
                let raw = u64::from_be_bytes(payload.try_into().ok()?);
                let nanos = u32::try_from(raw >> 34).ok()?;
                let secs = i64::try_from(raw & 0x3_ffff_ffff).ok()?;
                (nanos < 1_000_000_000).then_some(Timestamp { secs, nanos })
            }
            12 => {
                let nanos = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?);
                let secs = i64::from_be_bytes(payload.get(4..)?.try_into().ok()?);
                (nanos < 1_000_000_000).then_some(Timestamp { secs, nanos })
            }
            _ => None,
        }
    }
}

impl From<time::OffsetDateTime> for Timestamp {
    fn from(t: time::OffsetDateTime) -> Timestamp {
        Timestamp {
            secs: t.unix_timestamp(),
            nanos: t.nanosecond(),
        }
    }
}

/// A timestamp as a UTC date-time; [`Error::InvalidMetadata`] beyond the years `time` can hold
/// (±9999) or with nanoseconds out of range.
impl TryFrom<Timestamp> for time::OffsetDateTime {
    type Error = Error;

    fn try_from(t: Timestamp) -> Result<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp(t.secs)
            .ok()
            .and_then(|d| d.replace_nanosecond(t.nanos).ok())
            .ok_or_else(|| Error::InvalidMetadata {
                reason: format!(
                    "timestamp {}.{:09} s is outside the range of a date-time",
                    t.secs, t.nanos
                ),
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Nil => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(n) => serializer.serialize_i64(*n),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::String(s) => serializer.serialize_str(s),
            Value::Binary(b) => serializer.serialize_bytes(b),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, v)?;
                }
                out.end()
            }
            // For JSON and other text formats: the JSON bridge's tagged form, not the
            // MessagePack extension's `[-1, [bytes]]`.
            Value::Timestamp(t) if serializer.is_human_readable() => {
                let mut out = serializer.serialize_map(Some(1))?;
                out.serialize_entry(DATE_TAG, &t.to_rfc3339())?;
                out.end()
            }
            Value::Timestamp(t) => serializer.serialize_newtype_struct(
                EXT_STRUCT,
                &(TIMESTAMP_EXT, serde_bytes::Bytes::new(&t.to_ext_payload())),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Value, D::Error> {
        let human_readable = deserializer.is_human_readable();
        deserializer.deserialize_any(ValueVisitor { human_readable })
    }
}

/// Reads any value; in a human-readable format (JSON) the map `{"$date": RFC 3339}` is a
/// timestamp, as in the JSON bridge.
struct ValueVisitor {
    human_readable: bool,
}

/// The tag of a timestamp in text formats (the JSON bridge's `{"$date": ..}`).
const DATE_TAG: &str = "$date";

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(n))
    }
    fn visit_u64<E>(self, n: u64) -> std::result::Result<Value, E> {
        #[allow(clippy::cast_precision_loss)] // documented: above i64::MAX becomes a float
        Ok(i64::try_from(n).map_or(Value::Float(n as f64), Value::Int))
    }
    fn visit_f64<E>(self, x: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::String(s.into()))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> std::result::Result<Value, E> {
        Ok(Value::Binary(b.to_vec()))
    }
    fn visit_byte_buf<E>(self, b: Vec<u8>) -> std::result::Result<Value, E> {
        Ok(Value::Binary(b))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((k, v)) = access.next_entry::<Text, Value>()? {
            map.insert(k, v);
        }
        if self.human_readable && map.len() == 1 {
            if let Some(Value::String(date)) = map.get(DATE_TAG) {
                return Timestamp::parse(date)
                    .map(Value::Timestamp)
                    .map_err(de::Error::custom);
            }
        }
        Ok(Value::Map(map))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        let (tag, payload): (i8, serde_bytes::ByteBuf) = Deserialize::deserialize(d)?;
        if tag != TIMESTAMP_EXT {
            return Err(de::Error::custom(format!(
                "unsupported MessagePack extension type {tag}"
            )));
        }
        Timestamp::from_ext_payload(&payload)
            .map(Value::Timestamp)
            .ok_or_else(|| de::Error::custom("malformed MessagePack timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_formats_carry_timestamps_as_tagged_dates_and_msgpack_as_extensions() {
        let t = Timestamp::parse("2024-01-31T12:00:00.5Z").unwrap();
        let value = Value::Array(vec![Value::Timestamp(t), Value::from("x")]);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"[{"$date":"2024-01-31T12:00:00.5Z"},"x"]"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), value);
        let map = serde_json::from_str::<Value>(r#"{"$date":"x","y":1}"#).unwrap();
        assert!(matches!(map, Value::Map(m) if m.len() == 2));
    }

    #[test]
    fn u64_converts_only_up_to_i64_max() {
        assert_eq!(
            Value::try_from(i64::MAX as u64).unwrap(),
            Value::Int(i64::MAX)
        );
        let error = Value::try_from(i64::MAX as u64 + 1).unwrap_err();
        assert_eq!(error.code(), "invalid_metadata");
        assert!(error.to_string().contains("9223372036854775808"), "{error}");
        assert_eq!(
            Value::from(vec![Some(1), None]),
            Value::Array(vec![Value::Int(1), Value::Nil])
        );
    }
}

//! Metadata into typed values: a serde [`Deserializer`](serde::Deserializer) reading a
//! [`Value`], so that a metadata document fills any `T: DeserializeOwned` ([`from_metadata`]).
//!
//! The inverse of the mapping in [`to_value`](crate::to_value): a [`Value::Timestamp`] fills a
//! [`Timestamp`] field (or a `time::OffsetDateTime` under `#[serde(with = "as_timestamp")]`) and a
//! `Value` field; [`Value::Binary`] fills `serde_bytes` buffers and a plain `Vec<u8>`; a
//! [`Value::Int`] fills any integer type it fits (and floats); `Nil` fills an `Option` as `None`
//! (so does a missing field). Everything else is refused with [`Error::InvalidMetadata`] naming
//! what was found and what was expected.
//!
//! One limit, shared with rmp-serde: a timestamp inside a `#[serde(flatten)]` field or an
//! untagged enum cannot be read, because serde buffers those through its own representation,
//! which has no timestamp (the error says "expected struct Timestamp").

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use crate::value::{EXT_STRUCT, TIMESTAMP_EXT, TIMESTAMP_STRUCT};
use crate::value_ser::kind;
use crate::{Error, Metadata, Result, Value};

/// Reads a typed value out of a metadata [`Value`] (mapping in the module doc).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(ValueDeserializer(value))
}

/// Reads a typed value (a struct, usually) out of a metadata document.
pub fn from_metadata<T: DeserializeOwned>(metadata: Metadata) -> Result<T> {
    from_value(Value::Map(metadata))
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error::InvalidMetadata {
            reason: msg.to_string(),
        }
    }
}

/// The deserializer behind [`from_value`]: owns the value it reads.
struct ValueDeserializer(Value);

impl<'de> IntoDeserializer<'de, Error> for ValueDeserializer {
    type Deserializer = ValueDeserializer;
    fn into_deserializer(self) -> ValueDeserializer {
        self
    }
}

/// rmp-serde's extension form of a timestamp, `[-1, payload]`, which `Value`'s own
/// `Deserialize` reads.
fn extension_form(t: crate::Timestamp) -> ValueDeserializer {
    ValueDeserializer(Value::Array(vec![
        Value::Int(TIMESTAMP_EXT.into()),
        Value::Binary(t.to_ext_payload().to_vec()),
    ]))
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = Error;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Nil => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(n) => visitor.visit_i64(n),
            Value::Float(x) => visitor.visit_f64(x),
            Value::String(s) => visitor.visit_string(s.into()),
            Value::Binary(b) => visitor.visit_byte_buf(b),
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Map(map) => visitor.visit_map(Map {
                entries: map.into_iter(),
                pending: None,
            }),
            Value::Timestamp(t) => visitor.visit_newtype_struct(extension_form(t)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Value::Timestamp(t) if name == EXT_STRUCT => {
                visitor.visit_newtype_struct(extension_form(t))
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Value::Timestamp(t) if name == TIMESTAMP_STRUCT => {
                let mut parts = Metadata::new();
                parts.insert("secs".into(), Value::Int(t.secs));
                parts.insert("nanos".into(), Value::Int(t.nanos.into()));
                ValueDeserializer(Value::Map(parts)).deserialize_struct(name, fields, visitor)
            }
            Value::Map(_) | Value::Array(_) => self.deserialize_any(visitor),
            other => Err(mismatch(&other, &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            // A plain `Vec<u8>` (no serde_bytes) reads binary too.
            Value::Binary(bytes) => visitor.visit_seq(Seq(bytes
                .into_iter()
                .map(|b| Value::Int(b.into()))
                .collect::<Vec<_>>()
                .into_iter())),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(Enum {
                variant: variant.into(),
                content: None,
            }),
            Value::Map(map) if map.len() == 1 => {
                let Some((variant, content)) = map.into_iter().next() else {
                    return Err(Error::internal("a one-entry map has no entry"));
                };
                visitor.visit_enum(Enum {
                    variant: variant.into(),
                    content: Some(content),
                })
            }
            other => Err(mismatch(&other, &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct map identifier
    }
}

/// "expected X, found Y" for a value of the wrong kind.
fn mismatch<'de, V: Visitor<'de>>(found: &Value, visitor: &V) -> Error {
    struct Expected<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> fmt::Display for Expected<'_, V> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
    }
    Error::InvalidMetadata {
        reason: format!("expected {}, found {}", Expected(visitor), kind(found)),
    }
}

/// The elements of an array.
struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.0
            .next()
            .map(|item| seed.deserialize(ValueDeserializer(item)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a map, keys as strings.
struct Map {
    entries: std::collections::btree_map::IntoIter<crate::Text, Value>,
    pending: Option<Value>,
}

impl<'de> MapAccess<'de> for Map {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(value);
        let key: de::value::StringDeserializer<Error> = String::from(key).into_deserializer();
        seed.deserialize(key).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let value = self
            .pending
            .take()
            .ok_or_else(|| Error::internal("map value read before its key"))?;
        seed.deserialize(ValueDeserializer(value))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An externally tagged enum: `"Variant"` or `{"Variant": content}`.
struct Enum {
    variant: String,
    content: Option<Value>,
}

impl<'de> EnumAccess<'de> for Enum {
    type Error = Error;
    type Variant = VariantContent;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantContent)> {
        let tag: de::value::StringDeserializer<Error> = self.variant.into_deserializer();
        let variant = seed.deserialize(tag)?;
        Ok((variant, VariantContent(self.content)))
    }
}

/// What follows an enum's tag.
struct VariantContent(Option<Value>);

impl VariantContent {
    fn content(self, what: &str) -> Result<ValueDeserializer> {
        self.0
            .map(ValueDeserializer)
            .ok_or_else(|| Error::InvalidMetadata {
                reason: format!("expected {what}, found a unit variant"),
            })
    }
}

impl<'de> VariantAccess<'de> for VariantContent {
    type Error = Error;
    fn unit_variant(self) -> Result<()> {
        match self.0 {
            None | Some(Value::Nil) => Ok(()),
            Some(other) => Err(Error::InvalidMetadata {
                reason: format!("expected a unit variant, found {}", kind(&other)),
            }),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.content("a newtype variant")?)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self.content("a tuple variant")?, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self.content("a struct variant")?, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;

    use crate::{as_timestamp, to_metadata, to_value, Timestamp};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Modality {
        Ct,
        Mr { tesla: f64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Series {
        count: u32,
        modality: Modality,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Study {
        patient_id: String,
        slices: i64,
        dose: f64,
        contrast: bool,
        taken: Timestamp,
        #[serde(with = "as_timestamp")]
        reported: OffsetDateTime,
        #[serde(with = "serde_bytes")]
        thumbnail: Vec<u8>,
        plain_bytes: Vec<u8>,
        series: Series,
        note: Option<String>,
        tags: Vec<String>,
        extra: Value,
    }

    fn study() -> Study {
        let t = Timestamp::parse("2024-01-31T12:00:00.123456789Z").unwrap();
        Study {
            patient_id: "12345".into(),
            slices: 120,
            dose: 0.5,
            contrast: true,
            taken: t,
            reported: OffsetDateTime::try_from(t).unwrap(),
            thumbnail: vec![0, 1, 255],
            plain_bytes: vec![7, 8],
            series: Series {
                count: 3,
                modality: Modality::Mr { tesla: 1.5 },
            },
            note: None,
            tags: vec!["a".into(), "b".into()],
            extra: Value::Timestamp(t),
        }
    }

    #[test]
    fn a_struct_maps_to_a_document_with_native_types_and_back() {
        let original = study();
        let document = to_metadata(&original).unwrap();
        let t = original.taken;
        assert_eq!(document["patient_id"], Value::from("12345"));
        assert_eq!(document["slices"], Value::Int(120));
        assert_eq!(document["dose"], Value::Float(0.5));
        assert_eq!(document["contrast"], Value::Bool(true));
        assert_eq!(document["taken"], Value::Timestamp(t));
        assert_eq!(document["reported"], Value::Timestamp(t));
        assert_eq!(document["extra"], Value::Timestamp(t));
        assert_eq!(document["thumbnail"], Value::Binary(vec![0, 1, 255]));
        assert_eq!(document["note"], Value::Nil);
        assert_eq!(document["tags"], Value::from(vec!["a", "b"]));
        let Value::Map(series) = &document["series"] else {
            panic!("series is {:?}", document["series"]);
        };
        assert_eq!(series["count"], Value::Int(3));
        let back: Study = from_metadata(document).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn binary_fills_a_plain_byte_vector_and_missing_options_are_none() {
        let mut document = to_metadata(&study()).unwrap();
        document.insert("plain_bytes".into(), Value::Binary(vec![9]));
        document.remove("note");
        let back: Study = from_metadata(document).unwrap();
        assert_eq!((back.plain_bytes, back.note), (vec![9], None));
    }

    #[test]
    fn integers_beyond_i64_are_refused_with_the_number() {
        for error in [
            to_value(&u64::MAX).unwrap_err(),
            to_value(&(i128::from(i64::MIN) - 1)).unwrap_err(),
            to_metadata(&std::collections::BTreeMap::from([("n", 1u128 << 64)])).unwrap_err(),
        ] {
            assert_eq!(error.code(), "invalid_metadata");
            assert!(error.to_string().contains("64-bit"), "{error}");
        }
        assert_eq!(to_value(&(i64::MAX as u64)).unwrap(), Value::Int(i64::MAX));
        let error = Value::try_from(u64::MAX).unwrap_err();
        assert!(
            error.to_string().contains("18446744073709551615"),
            "{error}"
        );
        assert_eq!(Value::try_from(7u64).unwrap(), Value::Int(7));
    }

    #[test]
    fn documents_that_do_not_fit_are_invalid_metadata() {
        let mut document = to_metadata(&study()).unwrap();
        document.insert("slices".into(), Value::from("many"));
        let error = from_metadata::<Study>(document).unwrap_err();
        assert_eq!(error.code(), "invalid_metadata");
        assert!(error.to_string().contains("expected i64"), "{error}");
        let error = from_value::<u8>(Value::Int(300)).unwrap_err();
        assert!(error.to_string().contains("300"), "{error}");
        let error = to_metadata(&5).unwrap_err();
        assert!(error.to_string().contains("struct or a map"), "{error}");
        let error = from_value::<Timestamp>(Value::from("yesterday")).unwrap_err();
        assert_eq!(error.code(), "invalid_metadata");
    }

    #[test]
    fn a_value_field_keeps_every_kind() {
        let value = Value::Array(vec![
            Value::Nil,
            Value::Binary(vec![1]),
            Value::Timestamp(Timestamp { secs: -1, nanos: 5 }),
            Value::from(Some(1.5)),
            Value::from(None::<i64>),
        ]);
        assert_eq!(to_value(&value).unwrap(), value);
        assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
    }
}

//! Typed values into metadata: a serde [`Serializer`] whose output is a [`Value`], so that any
//! `T: Serialize` becomes a metadata document ([`to_metadata`]) with its struct fields as the
//! document's fields.
//!
//! The mapping is the one MessagePack (rmp-serde, not human-readable) gives, which is how
//! metadata is stored:
//!
//! * integers of every width are [`Value::Int`]; one outside the signed 64-bit range
//!   (a `u64` above `i64::MAX`, an `i128`...) is refused with [`Error::InvalidMetadata`], never
//!   rounded to a float;
//! * `f32`/`f64` are [`Value::Float`]; `char` and strings [`Value::String`];
//! * bytes (`serde_bytes`) are [`Value::Binary`]; a plain `Vec<u8>` is an array of numbers;
//! * `None` and `()` are [`Value::Nil`]; `Some(v)` and newtype structs are their content;
//! * structs and maps (string or integer keys) are [`Value::Map`], sequences and tuples
//!   [`Value::Array`]; enum variants are externally tagged as in JSON (`"Unit"`,
//!   `{"Variant": content}`);
//! * a [`Timestamp`] (and a `time::OffsetDateTime` under `#[serde(with = "as_timestamp")]`) is a
//!   [`Value::Timestamp`], and so is a `Value::Timestamp` inside a `Value` field.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{self, Serialize};

use crate::value::{integer_out_of_range, EXT_STRUCT, TIMESTAMP_EXT, TIMESTAMP_STRUCT};
use crate::{Error, Metadata, Result, Text, Timestamp, Value};

/// Converts any serializable value to a metadata [`Value`] (mapping in the module doc).
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    value.serialize(ValueSerializer)
}

/// Converts a serializable struct or map to a metadata document; anything that does not
/// serialize as a map is refused with [`Error::InvalidMetadata`].
pub fn to_metadata<T: Serialize + ?Sized>(value: &T) -> Result<Metadata> {
    match to_value(value)? {
        Value::Map(map) => Ok(map),
        other => Err(Error::InvalidMetadata {
            reason: format!(
                "typed metadata must serialize as a struct or a map, not as {}",
                kind(&other)
            ),
        }),
    }
}

/// How a value's type is named in error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Binary(_) => "binary",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Timestamp(_) => "a timestamp",
    }
}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error::InvalidMetadata {
            reason: msg.to_string(),
        }
    }
}

/// The serializer behind [`to_value`].
struct ValueSerializer;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = SeqSerializer;
    type SerializeTupleStruct = SeqSerializer;
    type SerializeTupleVariant = VariantSerializer<SeqSerializer>;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = VariantSerializer<MapSerializer>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| integer_out_of_range(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value> {
        Value::try_from(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| integer_out_of_range(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value> {
        let mut buffer = [0u8; 4];
        Ok(Value::String(Text::from(&*v.encode_utf8(&mut buffer))))
    }
    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::String(v.into()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Binary(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Nil)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::Nil)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value> {
        Ok(Value::String(variant.into()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value> {
        let inner = value.serialize(self)?;
        if name == EXT_STRUCT {
            // A `Value::Timestamp` inside a `Value` field: `(-1, payload)`, as for rmp-serde.
            return timestamp_from_extension(&inner).map(Value::Timestamp);
        }
        Ok(inner)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value> {
        let mut map = BTreeMap::new();
        map.insert(Text::from(variant), value.serialize(self)?);
        Ok(Value::Map(map))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer> {
        Ok(SeqSerializer {
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSerializer> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSerializer> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSerializer<SeqSerializer>> {
        Ok(VariantSerializer {
            variant,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSerializer> {
        Ok(MapSerializer::new(None))
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<MapSerializer> {
        Ok(MapSerializer::new(Some(name)))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<VariantSerializer<MapSerializer>> {
        Ok(VariantSerializer {
            variant,
            inner: MapSerializer::new(None),
        })
    }
}

/// The timestamp of rmp-serde's extension form `[-1, payload]`.
fn timestamp_from_extension(value: &Value) -> Result<Timestamp> {
    let invalid = || Error::InvalidMetadata {
        reason: "a MessagePack extension value other than a timestamp".to_string(),
    };
    match value {
        Value::Array(parts) => match parts.as_slice() {
            [Value::Int(tag), Value::Binary(payload)] if *tag == i64::from(TIMESTAMP_EXT) => {
                Timestamp::from_ext_payload(payload).ok_or_else(invalid)
            }
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// The timestamp of a serialized [`Timestamp`] struct: the map `{secs, nanos}`.
fn timestamp_from_struct(map: &Metadata) -> Result<Timestamp> {
    match (map.get("secs"), map.get("nanos"), map.len()) {
        (Some(Value::Int(secs)), Some(Value::Int(nanos)), 2) => u32::try_from(*nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .map(|nanos| Timestamp { secs: *secs, nanos }),
        _ => None,
    }
    .ok_or_else(|| Error::InvalidMetadata {
        reason: "a timestamp needs whole seconds and nanoseconds below 10^9".to_string(),
    })
}

/// Collects the elements of a sequence, tuple or tuple struct.
struct SeqSerializer {
    items: Vec<Value>,
}

impl SeqSerializer {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items.push(value.serialize(ValueSerializer)?);
        Ok(())
    }
}

/// The three sequence-shaped serializer traits differ only in their method's name.
macro_rules! sequence_serializer {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqSerializer {
            type Ok = Value;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }
            fn end(self) -> Result<Value> {
                Ok(Value::Array(self.items))
            }
        }
    )*};
}

sequence_serializer!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// Collects the entries of a map or struct; a struct named like [`Timestamp`] becomes a
/// [`Value::Timestamp`].
struct MapSerializer {
    struct_name: Option<&'static str>,
    map: Metadata,
    pending_key: Option<Text>,
}

impl MapSerializer {
    fn new(struct_name: Option<&'static str>) -> MapSerializer {
        MapSerializer {
            struct_name,
            map: BTreeMap::new(),
            pending_key: None,
        }
    }

    fn finish(self) -> Result<Value> {
        if self.struct_name == Some(TIMESTAMP_STRUCT) {
            return timestamp_from_struct(&self.map).map(Value::Timestamp);
        }
        Ok(Value::Map(self.map))
    }
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        let key = match key.serialize(ValueSerializer)? {
            Value::String(text) => text,
            Value::Int(n) => n.to_string().into(),
            other => {
                return Err(Error::InvalidMetadata {
                    reason: format!(
                        "a map key must be a string or an integer, not {}",
                        kind(&other)
                    ),
                })
            }
        };
        self.pending_key = Some(key);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| Error::internal("map value serialized before its key"))?;
        self.map.insert(key, value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.map
            .insert(key.into(), value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        self.finish()
    }
}

/// A tuple or struct variant: its content, wrapped as `{variant: content}`.
struct VariantSerializer<S> {
    variant: &'static str,
    inner: S,
}

impl<S> VariantSerializer<S> {
    fn wrap(variant: &'static str, content: Value) -> Value {
        let mut map = BTreeMap::new();
        map.insert(Text::from(variant), content);
        Value::Map(map)
    }
}

impl ser::SerializeTupleVariant for VariantSerializer<SeqSerializer> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.inner.push(value)
    }
    fn end(self) -> Result<Value> {
        Ok(Self::wrap(self.variant, Value::Array(self.inner.items)))
    }
}

impl ser::SerializeStructVariant for VariantSerializer<MapSerializer> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Value> {
        Ok(Self::wrap(self.variant, Value::Map(self.inner.map)))
    }
}

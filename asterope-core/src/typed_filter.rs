//! Filters checked against a struct's own fields at compile time: what
//! `#[derive(asterope::Metadata)]` builds on.
//!
//! The derive gives a struct `StudyMeta` a `StudyMeta::fields()` returning a `StudyMetaFields`
//! with one public member per serialized field: a [`TypedField<T>`] for a field of type `T`
//! (its dotted path, `#[serde(rename)]` honoured), or, for a nested struct that derives it too,
//! that struct's fields under the path. So `StudyMeta::fields().patient_id.eq("12345")` builds
//! the same [`Filter`] as `field("patient_id").eq("12345")` or the JSON `{"patient_id":
//! "12345"}`, while a misspelt field is a compile error (no such member) and so is an operand
//! of another type (no [`Operand<T>`] impl).
//!
//! Which field types have accessors is [`TypedFields`]: the scalars metadata holds (strings,
//! integers, floats, booleans, [`Timestamp`], `time::OffsetDateTime`, `serde_bytes::ByteBuf`,
//! [`Value`]), `Option<T>`, `Vec<T>` and `Box<T>` of them (the accessor of `T`: conditions on
//! an array field apply to its elements, as in the query language), and derived structs.
//! Range operators exist only for types in [`Ordered`]; `prefix` only for strings.

use std::marker::PhantomData;

use crate::{FieldPath, Filter, Predicate, Text, Timestamp, Value};

/// A type whose values can be named in a typed filter: its accessor under a dotted path.
pub trait TypedFields {
    /// The accessor: a [`TypedField`] for a scalar, a generated `…Fields` struct for a struct.
    type Fields;

    /// The accessor of a value at `path` (`""` for the document itself).
    fn fields_at(path: &str) -> Self::Fields;
}

/// The path of field `name` inside the value at `parent` (`""` is the document itself). Used
/// by the derive.
#[doc(hidden)]
pub fn nested_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// One field of type `T` of a typed document, by path; each method yields a [`Filter`] whose
/// operand must be of the field's type.
pub struct TypedField<T> {
    path: FieldPath,
    field_type: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedField<T> {
    fn clone(&self) -> Self {
        TypedField {
            path: self.path.clone(),
            field_type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TypedField<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TypedField<{}>({})",
            std::any::type_name::<T>(),
            self.path
        )
    }
}

impl<T> TypedField<T> {
    /// The field at a dotted path.
    pub fn at(path: &str) -> TypedField<T> {
        TypedField {
            path: FieldPath::new(path),
            field_type: PhantomData,
        }
    }

    /// The field's dotted path.
    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    fn matching(&self, predicate: Predicate) -> Filter {
        Filter::Field {
            path: self.path.clone(),
            predicate,
        }
    }

    /// Equal to `value` (`$eq`; on an array field: any element equal).
    pub fn eq(&self, value: impl Operand<T>) -> Filter {
        self.matching(Predicate::Eq(value.into_operand()))
    }

    /// Not equal to `value`, or missing (`$ne`).
    pub fn ne(&self, value: impl Operand<T>) -> Filter {
        self.matching(Predicate::Ne(value.into_operand()))
    }

    /// Equal to any of `values` (`$in`).
    pub fn is_in<V: Operand<T>>(&self, values: impl IntoIterator<Item = V>) -> Filter {
        let values = values.into_iter().map(Operand::into_operand).collect();
        self.matching(Predicate::In(values))
    }

    /// Equal to none of `values`, or missing (`$nin`).
    pub fn not_in<V: Operand<T>>(&self, values: impl IntoIterator<Item = V>) -> Filter {
        let values = values.into_iter().map(Operand::into_operand).collect();
        self.matching(Predicate::Nin(values))
    }

    /// Present (`true`) or absent (`false`) (`$exists`); a null value is present.
    pub fn exists(&self, present: bool) -> Filter {
        self.matching(Predicate::Exists(present))
    }
}

impl<T: Ordered> TypedField<T> {
    /// Greater than `value` (`$gt`).
    pub fn gt(&self, value: impl Operand<T>) -> Filter {
        self.matching(Predicate::Gt(value.into_operand()))
    }

    /// Greater than or equal to `value` (`$gte`).
    pub fn gte(&self, value: impl Operand<T>) -> Filter {
        self.matching(Predicate::Gte(value.into_operand()))
    }

    /// Less than `value` (`$lt`).
    pub fn lt(&self, value: impl Operand<T>) -> Filter {
        self.matching(Predicate::Lt(value.into_operand()))
    }

    /// Less than or equal to `value` (`$lte`).
    pub fn lte(&self, value: impl Operand<T>) -> Filter {
        self.matching(Predicate::Lte(value.into_operand()))
    }
}

impl TypedField<String> {
    /// A string starting with `prefix` (`$prefix`).
    pub fn prefix(&self, prefix: impl Into<String>) -> Filter {
        self.matching(Predicate::Prefix(prefix.into()))
    }
}

/// A value that may be compared with a field of type `T`: `T` itself (and `&T`), plus `&str`
/// for strings and either time type for timestamps.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be compared with a metadata field of type `{T}`",
    label = "expected a `{T}` here, the type of the field"
)]
pub trait Operand<T> {
    /// The operand as a metadata value.
    fn into_operand(self) -> Value;
}

/// Field types with an order the range operators (`gt`, `gte`, `lt`, `lte`) follow: numbers,
/// strings, timestamps and bytes.
pub trait Ordered {}

/// A scalar field type: its accessor is a [`TypedField`], its own values (and references to
/// them) are operands; `$ordered` adds it to [`Ordered`].
macro_rules! scalar_fields {
    ($($t:ty => $to_value:expr, $ordered:tt;)*) => {$(
        impl TypedFields for $t {
            type Fields = TypedField<$t>;
            fn fields_at(path: &str) -> TypedField<$t> {
                TypedField::at(path)
            }
        }
        impl Operand<$t> for $t {
            fn into_operand(self) -> Value {
                let to_value: fn($t) -> Value = $to_value;
                to_value(self)
            }
        }
        impl Operand<$t> for &$t {
            fn into_operand(self) -> Value {
                <$t as Operand<$t>>::into_operand(self.clone())
            }
        }
        scalar_fields!(@ordered $t, $ordered);
    )*};
    (@ordered $t:ty, ordered) => { impl Ordered for $t {} };
    (@ordered $t:ty, unordered) => {};
}

scalar_fields! {
    String => Value::from, ordered;
    Text => Value::from, ordered;
    bool => Value::from, unordered;
    i8 => |n| Value::Int(n.into()), ordered;
    i16 => |n| Value::Int(n.into()), ordered;
    i32 => Value::from, ordered;
    i64 => Value::from, ordered;
    u8 => |n| Value::Int(n.into()), ordered;
    u16 => |n| Value::Int(n.into()), ordered;
    u32 => Value::from, ordered;
    u64 => unsigned_operand, ordered;
    f32 => Value::from, ordered;
    f64 => Value::from, ordered;
    Timestamp => Value::from, ordered;
    time::OffsetDateTime => Value::from, ordered;
    serde_bytes::ByteBuf => |b| Value::Binary(b.into_vec()), ordered;
}

/// A `u64` operand: an `Int` when it fits, else a float. No stored integer exceeds
/// `i64::MAX` (metadata refuses them), and numbers compare exactly across ints and floats, so
/// every comparison with a stored integer gives the answer the exact `u64` would.
fn unsigned_operand(n: u64) -> Value {
    #[allow(clippy::cast_precision_loss)] // exact for the comparisons made, see above
    Value::try_from(n).unwrap_or(Value::Float(n as f64))
}

impl Operand<String> for &str {
    fn into_operand(self) -> Value {
        Value::from(self)
    }
}

impl Operand<Text> for &str {
    fn into_operand(self) -> Value {
        Value::from(self)
    }
}

impl Operand<Timestamp> for time::OffsetDateTime {
    fn into_operand(self) -> Value {
        Value::from(self)
    }
}

impl Operand<time::OffsetDateTime> for Timestamp {
    fn into_operand(self) -> Value {
        Value::from(self)
    }
}

impl Operand<serde_bytes::ByteBuf> for &[u8] {
    fn into_operand(self) -> Value {
        Value::Binary(self.to_vec())
    }
}

/// A [`Value`] field takes any value.
impl TypedFields for Value {
    type Fields = TypedField<Value>;
    fn fields_at(path: &str) -> TypedField<Value> {
        TypedField::at(path)
    }
}

impl<V: Into<Value>> Operand<Value> for V {
    fn into_operand(self) -> Value {
        self.into()
    }
}

impl Ordered for Value {}

/// The accessor of the contained type: an absent value is a missing (or null) field, and the
/// conditions on an array apply to its elements.
macro_rules! wrapper_fields {
    ($($wrapper:ident),*) => {$(
        impl<T: TypedFields> TypedFields for $wrapper<T> {
            type Fields = T::Fields;
            fn fields_at(path: &str) -> T::Fields {
                T::fields_at(path)
            }
        }
    )*};
}

wrapper_fields!(Option, Vec, Box);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field;

    #[test]
    fn typed_fields_build_the_same_filters_as_the_untyped_builder() {
        let t = Timestamp { secs: 5, nanos: 0 };
        let name = TypedField::<String>::at("patient.name");
        assert_eq!(name.eq("x"), field("patient.name").eq("x"));
        assert_eq!(
            name.is_in(["a", "b"]),
            field("patient.name").is_in(["a", "b"])
        );
        assert_eq!(name.prefix("x"), field("patient.name").prefix("x"));
        assert_eq!(
            <Option<Timestamp>>::fields_at("t").gte(t),
            field("t").gte(t)
        );
        assert_eq!(
            <Vec<u64>>::fields_at(&nested_path("a", "n")).lt(7),
            field("a.n").lt(7)
        );
        assert_eq!(
            <u64>::fields_at("n").gt(u64::MAX),
            field("n").gt(Value::Float(u64::MAX as f64))
        );
        assert_eq!(
            <bool>::fields_at("b").exists(false),
            field("b").exists(false)
        );
    }
}

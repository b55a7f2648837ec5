//! The metadata predicate query language: the [`Filter`] AST and its evaluation against a
//! metadata document, the total order of [values](crate::Value) used for sorting
//! ([`compare_values`]), the typed builder ([`field`], [`and`], [`or`], [`not`]), the [`Query`]
//! request (filter, key prefix, sort, limit, cursor) and the limits every filter must respect.
//!
//! Semantics follow MongoDB:
//!
//! * A [`FieldPath`] such as `study.series.count` descends into nested maps. When a value along
//!   the path is an array, the lookup continues into every element of it that is a map; the
//!   value at the end of the path, when it is an array, stands for each of its elements too.
//!   A predicate matches when **any** of the values so reached matches (for equality the whole
//!   array also compares against an array operand).
//! * Numbers compare across [`Value::Int`](crate::Value::Int) and
//!   [`Value::Float`](crate::Value::Float) exactly (`1 == 1.0`, `2 < 2.5`, no rounding of large
//!   integers); timestamps compare in time order; strings and binaries bytewise; `false < true`.
//! * Range operators (`$gt`, `$gte`, `$lt`, `$lte`) only match values of the operand's class
//!   (numbers, strings, binaries, booleans or timestamps); any other value is simply no match,
//!   never an error. `NaN` matches no range operator.
//! * `$eq: null` matches a null value and a missing field; `$ne` and `$nin` are the negations of
//!   `$eq` and `$in`, so they match a missing field.
//!
//! The JSON syntax of filters lives in asterope-serialization; the index planner in
//! asterope-storage.
//!
//! Each concept has its own module: `path` ([`FieldPath`]), `predicate` ([`Predicate`]),
//! `filter` (the [`Filter`] AST and its limits), `eval` (matching a document), `order`
//! ([`compare_values`]), `builder` ([`field`], [`and`], [`or`], [`not`]) and `request`
//! ([`Query`], [`SortSpec`]).

mod builder;
mod eval;
mod filter;
mod order;
mod path;
mod predicate;
mod request;
#[cfg(test)]
mod test_fixtures;

pub use builder::{and, field, not, or, FieldCondition};
pub use filter::{Filter, MAX_FILTER_DEPTH, MAX_FILTER_NODES, MAX_IN_LIST_LEN};
pub use order::compare_values;
pub use path::FieldPath;
pub use predicate::Predicate;
pub use request::{Query, SortSpec};

//! Shared vocabulary of Asterope.
//!
//! Everything that both sides of the product speak lives here: validated [`Key`]s, the
//! [`ObjectInfo`] record a caller sees, the MessagePack-shaped metadata [`Value`] model, the one
//! [`Error`] enum with stable machine-readable codes, and the object-safe async [`ObjectOps`] and
//! [`Store`] traits.
//! The embedded `Database` (asterope-storage) implements [`Store`]; so does the network client.
//!
//! Blob bodies travel as [`ByteStream`]s of chunks in both directions, so no implementation ever
//! needs to hold a whole blob in memory.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod digest;
mod error;
mod error_body;
mod key;
mod object;
pub mod protocol;
mod query;
mod states;
mod store;
mod transaction;
mod typed;
mod typed_filter;
mod value;
mod value_de;
mod value_ser;

pub use digest::Sha256Digest;
pub use error::{Error, Result};
pub use error_body::ErrorBody;
pub use key::Key;
pub use object::{
    ByteRange, Condition, GetOptions, ListOptions, ListPage, ObjectInfo, PutOptions,
    DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT,
};
pub use query::{
    and, compare_values, field, not, or, FieldCondition, FieldPath, Filter, Predicate, Query,
    SortSpec, MAX_FILTER_DEPTH, MAX_FILTER_NODES, MAX_IN_LIST_LEN,
};
pub use states::{IndexState, PlanAccess};
pub use store::{ByteStream, GetResult, ObjectOps, Store, StoreExt};
pub use transaction::{CompactionReport, IndexInfo, QueryPage, QueryPlan, StoreStats, Transaction};
pub use typed::{as_timestamp, TypedObject, TypedPage, TypedStoreExt};
#[doc(hidden)]
pub use typed_filter::nested_path;
pub use typed_filter::{Operand, Ordered, TypedField, TypedFields};
pub use value::{Metadata, Text, Timestamp, Value};
pub use value_de::{from_metadata, from_value};
pub use value_ser::{to_metadata, to_value};

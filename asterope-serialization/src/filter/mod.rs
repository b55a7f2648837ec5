//! The JSON syntax of metadata filters: parsing into asterope-core's
//! [`Filter`](asterope_core::Filter) with errors that name the position (JSON line and column, or
//! the JSON path of the offending node), the filter limits enforced while parsing, and printing a
//! filter back to JSON.
//!
//! The syntax, in the style of MongoDB (docs/QUERY.md has the full reference):
//!
//! * a filter is a JSON object; its entries are an implicit AND, in key order;
//! * `"field.path": literal` means `$eq`; `"field.path": {"$op": operand, ...}` applies operators
//!   (an object whose keys all start with `$`; `{"$date": ..}` and `{"$base64": ..}` stay
//!   literals, as in the JSON bridge);
//! * `$and` / `$or` take non-empty arrays of filters, top-level `$not` takes a filter, and
//!   field-level `$not` takes an operator object.
//!
//! `parse` reads the syntax into a filter, enforcing the filter limits as it goes; `error` builds
//! its errors, each naming where in the text or the JSON tree it arose; `print` writes a filter
//! back as JSON that `parse` reads to the same filter.

mod error;
mod parse;
mod print;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_support;

pub use parse::{filter_from_json, parse_filter};
pub use print::filter_to_json;

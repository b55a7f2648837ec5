//! Serialization of Asterope: MessagePack for metadata and stored records, and the JSON bridge
//! for users who speak JSON (the CLI, curl), and the [`wire`] contract of the HTTP protocol.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod filter;
mod header;
mod json;
mod msgpack;
mod msgpack_reader;
mod ordered;
mod strict_json;
pub mod wire;

pub use filter::{filter_from_json, filter_to_json, parse_filter};
pub use header::{
    metadata_from_header_json, metadata_to_header_json, MAX_HEADER_LIST_BYTES,
    MAX_METADATA_HEADER_BYTES,
};
pub use json::{metadata_from_json, metadata_from_json_str, metadata_to_json, value_to_json};
pub use msgpack::{
    decode, decode_versioned, encode, encode_versioned, validate_metadata, MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
};
pub use msgpack_reader::{MsgpackReader, MAX_READER_DEPTH};
pub use ordered::{encode_ordered, encode_string_prefix, ordered_len};
pub use strict_json::{parse_json, parse_msgpack_as_json};
pub use wire::query::{query_from_json, query_to_json};

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod body;

pub use asterope_client::{Client, ClientBuilder};
pub use asterope_core::*;
/// `#[derive(asterope::Metadata)]`: compile-time checked filters from a metadata struct's own
/// fields (`StudyMeta::fields().patient_id.eq("12345")`). The derive macro shares its name with
/// the [`Metadata`](type@Metadata) document type; they live in different namespaces.
pub use asterope_derive::Metadata;
pub use asterope_network::{serve, Access, Cors, ServerConfig, Tokens};
/// The JSON syntax of filters and the JSON bridge of metadata (`{"$date": ..}`,
/// `{"$base64": ..}` for the types JSON lacks).
pub use asterope_serialization::{
    filter_to_json, metadata_from_json, metadata_from_json_str, metadata_to_json, parse_filter,
    value_to_json,
};
pub use asterope_storage::{
    CompactionSchedule, DamagedBlob, Database, DatabaseBuilder, SpaceStats, VerifyReport,
};

//! The embedded Asterope database.
//!
//! A [`Database`] owns one data directory:
//!
//! ```text
//! <dir>/LOCK            exclusive lock: one process at a time
//! <dir>/extents/*.ext   preallocated extent files holding blob bytes
//! <dir>/meta/           the metadata B+tree (sled): one MessagePack record per key
//! ```
//!
//! Blob bytes are written with positioned writes into space handed out by an allocator, hashed
//! (SHA-256) on another core as they arrive, made durable with `fdatasync`, and only then
//! published by committing the metadata record: **the metadata commit is the commit point**. A
//! process killed at any moment leaves either the old object or the new one; space written but
//! never committed is free again when the directory is next opened, because free space is
//! derived from the committed records.
//!
//! Reads slice a read-only memory mapping of the extent and hand out [`bytes::Bytes`] chunks
//! that own the mapping and the reader's pin, so a download copies nothing and memory stays
//! bounded by the chunk size. Space of a deleted or overwritten blob, or of a staged write that
//! is dropped, is reused only once every reader that could still see it has finished, so the
//! bytes a block's CRC was checked over stay the bytes handed out.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> asterope_core::Result<()> {
//! use asterope_core::{Key, Metadata, StoreExt};
//! use asterope_storage::Database;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(dir.path())?;
//! let key = Key::new("scans/ct-0001.dcm")?;
//! let mut meta = Metadata::new();
//! meta.insert("patient_id".into(), "12345".into());
//! db.put_bytes(&key, "pixel data".into(), meta).await?;
//! let (info, bytes) = db.get_bytes(&key).await?;
//! assert_eq!((info.size, &bytes[..]), (10, &b"pixel data"[..]));
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod alloc;
mod backend;
mod blob;
mod blob_ledger;
mod commit;
mod compact;
mod database;
mod engine;
mod extent;
#[cfg(feature = "fault-injection")]
pub mod fault;
mod index;
mod index_build;
mod index_catalog;
mod integrity;
mod keys;
mod lock;
mod meta;
mod mmap;
mod mvcc;
mod objects;
mod posting;
mod query;
mod query_cursor;
mod query_row;
mod reader;
mod record;
mod recovery;
mod space;
mod store;
mod top_k;
mod txn;
mod upgrade;
mod writer;

pub use compact::CompactionSchedule;
pub use database::{Database, DatabaseBuilder, SpaceStats};
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub use index_catalog::declare_unreadable_index;
pub use integrity::{DamagedBlob, VerifyReport};
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub use upgrade::downgrade_to_format2;

/// Decodes a stored version record, for the fuzzer: malformed input must be an error, never a
/// panic.
#[doc(hidden)]
pub fn decode_record_for_fuzzing(bytes: &[u8]) -> bool {
    record::VersionRecord::decode(bytes).is_ok()
}

//! Transactions, query results and index descriptions: the MVCC half of the [`Store`] API.
//!
//! [`Store`]: crate::Store

use serde::{Deserialize, Serialize};

use crate::{ObjectInfo, ObjectOps, Result};

/// One page of query results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryPage {
    /// Matching objects, in the query's order.
    pub objects: Vec<ObjectInfo>,
    /// Continuation token of the next page; `None` at the end.
    pub next: Option<String>,
}

/// How a query is (or would be) executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryPlan {
    /// `"index"` or `"scan"`.
    pub access: String,
    /// The indexed field used, for an index plan.
    pub index: Option<String>,
    /// Human-readable description, e.g. `index patient_id (equality)`.
    pub detail: String,
}

/// Space and object accounting of a store. Serialized with these field names by
/// `GET /v1/stats` and `asterope stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Objects visible now.
    pub objects: u64,
    /// Sum of their sizes.
    pub logical_bytes: u64,
    /// Bytes of extent space in use (blobs, including versions kept for readers); a blob
    /// shared by several keys counts once.
    pub physical_bytes: u64,
    /// Extent bytes free for new blobs.
    pub free_bytes: u64,
    /// Bytes the extent files occupy on disk (free ranges given back to the filesystem are not
    /// counted).
    pub disk_bytes: u64,
    /// Bytes not stored thanks to content deduplication: the sizes of visible objects minus
    /// the sizes of the distinct blobs they share.
    pub dedup_saved_bytes: u64,
    /// Extent files.
    pub extents: u64,
    /// Bytes of deleted or overwritten blobs waiting for running readers before reuse.
    pub garbage_bytes: u64,
}

/// What one compaction pass did. Serialized with these field names by `POST /v1/compact` and
/// `asterope compact`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionReport {
    /// Live bytes copied out of sparse extents.
    pub moved_bytes: u64,
    /// Blobs moved (wholly or in part).
    pub moved_blobs: u64,
    /// Extent files deleted because nothing in them was in use any more.
    pub extents_removed: u64,
    /// Drop in the disk space occupied by the extent files.
    pub disk_bytes_released: u64,
}

/// State of a secondary index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexInfo {
    /// The indexed field path (dotted).
    pub field: String,
    /// `"building"` (filling from existing objects; queries scan meanwhile), `"ready"`, or
    /// `"failed"` (the build could not complete: queries scan, the index can only be dropped).
    pub state: String,
}

/// An interactive transaction with snapshot isolation: the [`ObjectOps`] at a snapshot.
///
/// Reads see the snapshot taken at `begin` plus the transaction's own writes. Writes are staged
/// (blob bytes are written to free space right away, but nothing is visible to others) and
/// applied atomically by [`Transaction::commit`], which fails with
/// [`Error::Conflict`](crate::Error::Conflict) if another transaction committed one of the
/// written keys after this one began (first committer wins). Dropping a transaction without
/// committing rolls it back.
#[async_trait::async_trait]
pub trait Transaction: ObjectOps {
    /// The commit version this transaction reads at.
    fn snapshot_version(&self) -> u64;
    /// Applies every staged write atomically and durably; returns the commit version.
    async fn commit(self: Box<Self>) -> Result<u64>;
    /// Discards every staged write.
    async fn rollback(self: Box<Self>) -> Result<()>;
}

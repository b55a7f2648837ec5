//! The `ObjectOps` and `Store` traits: the one API of Asterope, embedded or networked.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};

use crate::{
    CompactionReport, Condition, GetOptions, IndexInfo, Key, ListOptions, ListPage, Metadata,
    ObjectInfo, PutOptions, Query, QueryPage, QueryPlan, StoreStats, Transaction,
};
use crate::{Error, Result};

/// A blob body in flight: chunks of bytes, each possibly failing.
///
/// Producers choose the chunk size; consumers must not assume one. A stream ending with an `Err`
/// means the body is incomplete or invalid and must not be treated as the object.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// The answer of [`ObjectOps::get`]: the object's description and its (possibly ranged) body.
pub struct GetResult {
    /// The object as of the read.
    pub info: ObjectInfo,
    /// The byte range of the blob that `body` carries.
    pub range: Range<u64>,
    /// The bytes of `range`, in order.
    pub body: ByteStream,
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl GetResult {
    /// Collects the body into one buffer. Meant for small objects: it holds the whole range in
    /// memory.
    pub async fn bytes(self) -> Result<Bytes> {
        let capacity = usize::try_from(self.range.end - self.range.start).unwrap_or(0);
        let mut out = BytesMut::with_capacity(capacity.min(64 << 20));
        let mut body = self.body;
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }
}

/// The object operations: put, read, describe, delete and re-describe objects by key, and list,
/// query, count and explain over them.
///
/// This is the one home of these operations. Both the whole store ([`Store`]) and an open
/// [`Transaction`] implement it, with the same semantics and error codes: on a store each write
/// commits on its own; inside a transaction it is staged and reads see the snapshot plus the
/// transaction's own writes. Object-safe: servers and callers use it as `&dyn ObjectOps`.
#[async_trait::async_trait]
pub trait ObjectOps: Send + Sync {
    /// Stores `body` under `key`, replacing any previous object atomically. The object becomes
    /// visible (and durable) only when the whole body has arrived and passed the checks of
    /// `options`; on any error nothing changes.
    ///
    /// Returns the object as written. On a [`Store`] its `version` is the commit version of
    /// the write. Inside a [`Transaction`] the write is only staged: the returned description
    /// is the staged state the transaction now reads, whose `version` is `0` (a commit version
    /// is assigned only by [`Transaction::commit`]).
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo>;

    /// Reads an object, streaming its bytes.
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult>;

    /// Describes an object without reading its bytes.
    async fn head(&self, key: &Key) -> Result<ObjectInfo>;

    /// Deletes an object. [`Error::NotFound`] if there is none.
    async fn delete(&self, key: &Key, condition: Condition) -> Result<()>;

    /// Replaces the metadata document of an existing object, keeping its blob. Returns the
    /// object as written (staged inside a transaction, with `version` `0`, as for
    /// [`ObjectOps::put`]).
    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo>;

    /// Lists objects in key order, one page at a time.
    async fn list(&self, options: ListOptions) -> Result<ListPage>;

    /// Runs a metadata query, one page at a time.
    async fn query(&self, query: &Query) -> Result<QueryPage>;

    /// Counts the objects a query selects (ignoring sort, limit and cursor).
    async fn count(&self, query: &Query) -> Result<u64>;

    /// Tells how a query would be executed: through which index, or by a scan. Inside a
    /// transaction, an index declared or finished after it began is not used.
    async fn explain(&self, query: &Query) -> Result<QueryPlan>;
}

/// An object store: the [`ObjectOps`] on the current state, plus the operations on the whole
/// store (indexes, transactions, accounting, compaction).
///
/// Implemented by the embedded `asterope_storage::Database` and by `asterope_client::Client`
/// with the same semantics and error codes. Object-safe: use it as `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: ObjectOps {
    /// Declares a secondary index on a field path and fills it from existing objects in the
    /// background; queries use it once it is ready.
    async fn create_index(&self, field: &str) -> Result<IndexInfo>;

    /// Removes a secondary index.
    async fn drop_index(&self, field: &str) -> Result<()>;

    /// The declared indexes.
    async fn list_indexes(&self) -> Result<Vec<IndexInfo>>;

    /// Starts a transaction with snapshot isolation.
    async fn begin(&self) -> Result<Box<dyn Transaction>>;

    /// Object and space accounting. Counts objects by reading every record: O(objects).
    async fn stats(&self) -> Result<StoreStats>;

    /// Reclaims space now: moves the live blobs out of sparse extents, deletes extents left
    /// empty, and gives free ranges back to the filesystem. Readers and writers keep going
    /// meanwhile. (It also runs in the background; this runs a pass on demand.)
    async fn compact(&self) -> Result<CompactionReport>;
}

/// Conveniences over any [`Store`].
#[async_trait::async_trait]
pub trait StoreExt: Store {
    /// Stores an in-memory buffer.
    async fn put_bytes(&self, key: &Key, bytes: Bytes, metadata: Metadata) -> Result<ObjectInfo> {
        let size = u64::try_from(bytes.len()).map_err(|_| Error::internal("buffer too large"))?;
        let body = stream::once(async move { Ok(bytes) }).boxed();
        let options = PutOptions::default()
            .with_metadata(metadata)
            .with_size(size);
        self.put(key, body, options).await
    }

    /// Reads a whole object into memory, verifying its SHA-256.
    async fn get_bytes(&self, key: &Key) -> Result<(ObjectInfo, Bytes)> {
        let result = self.get(key, GetOptions::default()).await?;
        let info = result.info.clone();
        Ok((info, result.bytes().await?))
    }

    /// Lists every object under `prefix`, following cursors.
    async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut objects = Vec::new();
        let mut cursor = None;
        loop {
            let options = ListOptions::default()
                .with_prefix(prefix)
                .with_cursor(cursor);
            let page = self.list(options).await?;
            objects.extend(page.objects);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(objects),
            }
        }
    }
}

impl<T: Store + ?Sized> StoreExt for T {}

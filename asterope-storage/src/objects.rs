//! Object reads and writes shared by the [`asterope_core::Store`] operations and
//! transactions: streaming an object at a snapshot, running a query at a snapshot (with a
//! transaction's staged writes overlaid), and writing a put's bytes before its commit.
//!
//! Invariants kept here:
//! - A read pins the space **before** it looks the blob up, so bytes moved or freed meanwhile
//!   stay readable until the stream ends.
//! - A put's bytes are written, synced and checked (size, digest, deduplication twin) outside
//!   the commit lock; the commit only publishes them.

use std::sync::Arc;

use asterope_core::{
    ByteStream, Error, Filter, GetOptions, GetResult, Key, ListOptions, PutOptions, Query, Result,
};

use crate::blob::BlobLayout;
use crate::commit::Write;
use crate::engine::Engine;
use crate::integrity::find_twin;
use crate::query::{Overlay, Page, QueryContext};
use crate::reader::BlobReader;
use crate::record::ObjectRecord;
use crate::writer::write_blob;

/// Streams an object. `layout` is where its bytes are: `None` looks the record's blob up
/// (a staged put passes its own). The read pin is taken before the lookup, so a blob moved
/// by compaction meanwhile keeps its old bytes until this reader is done.
pub(crate) fn get_at(
    engine: &Engine,
    key: &Key,
    record: Option<ObjectRecord>,
    layout: Option<BlobLayout>,
    options: GetOptions,
) -> Result<GetResult> {
    let record = record.ok_or_else(|| Error::NotFound {
        key: key.to_string(),
    })?;
    let range = match options.range {
        Some(range) => range.resolve(record.size)?,
        None => 0..record.size,
    };
    let pin = engine.space.pin();
    let layout = match layout {
        Some(layout) => layout,
        None => engine.blob_layout(key, &record)?,
    };
    let info = record.info(key.clone());
    let reader = BlobReader {
        space: Arc::clone(&engine.space),
        pin,
        layout,
        size: record.size,
    };
    // Bytes known to be gone (an extent file truncated under the store) fail the read
    // before anything is sent, rather than midway through the stream.
    reader.check_present(range.clone())?;
    let body = reader.stream(range.clone(), options.verify.then(|| key.clone()));
    Ok(GetResult { info, range, body })
}

/// Runs `f` with a query context at snapshot version `snapshot`.
pub(crate) fn with_query<T>(
    engine: &Engine,
    snapshot: u64,
    overlay: Option<&Overlay>,
    f: impl FnOnce(&QueryContext<'_>) -> Result<T>,
) -> Result<T> {
    let indexes = engine.indexes();
    let context = QueryContext {
        meta: &engine.meta,
        indexes: &indexes,
        snapshot,
        overlay,
    };
    f(&context)
}

/// Writes a blob for a put, checking size and digest (the caller has checked the metadata).
pub(crate) async fn write_put(
    engine: &Arc<Engine>,
    body: ByteStream,
    options: &PutOptions,
) -> Result<Write> {
    let written = write_blob(Arc::clone(&engine.space), body, options.size).await?;
    let late = options
        .sha256_after_body
        .as_ref()
        .and_then(|slot| slot.get());
    for expected in options.sha256.iter().chain(late) {
        if *expected != written.sha256 {
            return Err(Error::ChecksumMismatch {
                expected: expected.to_hex(),
                actual: written.sha256.to_hex(),
            });
        }
    }
    // Checked now, outside the commit lock: reading the twin back may take a while.
    let engine = Arc::clone(engine);
    let (sha256, size, block_crcs) = (written.sha256, written.size, written.block_crcs);
    let (twin, block_crcs) = tokio::task::spawn_blocking(move || {
        find_twin(&engine, sha256, size, &block_crcs).map(|twin| (twin, block_crcs))
    })
    .await
    .map_err(|e| Error::internal(format!("deduplication check failed: {e}")))??;
    Ok(Write::Put {
        reservation: written.reservation,
        size,
        sha256,
        block_crcs,
        metadata: options.metadata.clone(),
        twin,
    })
}

/// A page of a listing: its only argument a query could refuse is the cursor, which is a list
/// argument (`invalid_argument`), not a query.
pub(crate) fn list_page(q: &QueryContext<'_>, query: &Query) -> Result<Page> {
    q.page(query).map_err(|e| match e {
        Error::InvalidQuery { reason } => Error::InvalidArgument { reason },
        other => other,
    })
}

/// The query a listing runs.
pub(crate) fn list_query(options: &ListOptions) -> Result<Query> {
    let limit = options.effective_limit()?;
    Ok(Query {
        filter: Filter::True,
        key_prefix: Some(options.prefix.clone()),
        sort: None,
        limit: Some(limit),
        cursor: options.cursor.clone(),
    })
}

//! Checking stored blobs against their checksums: before deduplication shares a blob, and on
//! demand for the whole store ([`Database::verify_blobs`]).
//!
//! **Deduplication never shares damaged bytes.** A put whose content is already stored reads
//! the stored blob back and compares its block CRCs with those of the bytes just received
//! (whose SHA-256 was checked as they arrived, so they are the content). If they differ, or the
//! stored blob cannot be read, the put *repairs* it: the blob keeps its id, and so every key
//! that shares it, but its entry is pointed at the fresh copy, and the damaged runs are retired.
//! The read-back costs one read of the blob per deduplicated put (from the page cache, usually),
//! outside the commit lock; a put that finds no stored twin pays nothing.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use asterope_core::{Error, Key, Result, Sha256Digest};
use sha2::{Digest, Sha256};

use crate::alloc::Run;
use crate::blob::{BlobEntry, BlobId, CHECKSUM_BLOCK};
use crate::database::Database;
use crate::engine::Engine;
use crate::keys::{blob_id_of, blob_key, content_key, BLOB_PREFIX};
use crate::meta::MetaStore;
use crate::mvcc::decode_version_footprint;
use crate::reader::read_runs;
use crate::space::Space;

/// A stored blob with the same content as a put, as found (and checked) before its commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Twin {
    pub(crate) id: BlobId,
    /// Its bytes do not match the put's (or cannot be read): the put repairs it.
    pub(crate) damaged: bool,
}

/// A stored blob whose bytes no longer match their checksums, with the keys it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedBlob {
    /// The content it should hold.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// The keys whose newest version names it (several when deduplication shares it).
    pub keys: Vec<Key>,
    /// Stable code of the problem: `corrupt` (bytes differ) or `io_error` (unreadable).
    pub code: &'static str,
    /// What is wrong, for people.
    pub reason: String,
}

/// What [`Database::verify_blobs`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blobs read.
    pub blobs_checked: u64,
    /// Bytes read.
    pub bytes_checked: u64,
    /// The damaged ones.
    pub damaged: Vec<DamagedBlob>,
}

/// The blob the content table names for this content, if any.
pub(crate) fn content_owner(
    meta: &MetaStore,
    sha256: Sha256Digest,
    size: u64,
) -> Result<Option<BlobId>> {
    let Some(value) = meta.get(&content_key(&sha256, size))? else {
        return Ok(None);
    };
    Ok(<[u8; 16]>::try_from(&value[..]).map(BlobId).ok())
}

/// Finds the stored blob a put of this content would share, and checks its bytes against the
/// put's block CRCs. `None`: deduplication is off, the blob is empty, or nothing is stored.
pub(crate) fn find_twin(
    engine: &Engine,
    sha256: Sha256Digest,
    size: u64,
    block_crcs: &[u32],
) -> Result<Option<Twin>> {
    if !engine.dedup || size == 0 {
        return Ok(None);
    }
    // Pinned before the lookup: the runs read below cannot be reused meanwhile.
    let _pin = engine.space.pin();
    let Some(id) = content_owner(&engine.meta, sha256, size)? else {
        return Ok(None);
    };
    let Some(entry) = engine.meta.get(&blob_key(&id))? else {
        return Ok(None);
    };
    let entry = BlobEntry::decode(&entry)?;
    let damaged = entry.size != size
        || damage(&engine.space, &entry.layout.runs, size, block_crcs, None).is_some();
    Ok(Some(Twin { id, damaged }))
}

/// What is wrong with the bytes stored in `runs`, checked block by block against `block_crcs`
/// (and as a whole against `sha256`, if given); `None` if nothing.
fn damage(
    space: &Space,
    runs: &[Run],
    size: u64,
    block_crcs: &[u32],
    sha256: Option<Sha256Digest>,
) -> Option<(&'static str, String)> {
    if u64::try_from(block_crcs.len()).ok() != Some(size.div_ceil(CHECKSUM_BLOCK)) {
        return Some(("corrupt", "its block checksums do not cover it".into()));
    }
    let mut hasher = Sha256::new();
    for (block, expected) in (0u64..).zip(block_crcs) {
        let range = block * CHECKSUM_BLOCK..((block + 1) * CHECKSUM_BLOCK).min(size);
        let bytes = match read_runs(space, runs, range.clone()) {
            Ok(bytes) => bytes,
            Err(e) => return Some((e.code(), e.to_string())),
        };
        let actual = crc32fast::hash(&bytes);
        if actual != *expected {
            let reason = format!(
                "block {block} (bytes {}..{}) has CRC {actual:08x}, expected {expected:08x}",
                range.start, range.end
            );
            return Some(("corrupt", reason));
        }
        if sha256.is_some() {
            hasher.update(&bytes);
        }
    }
    let actual = Sha256Digest(hasher.finalize().into());
    match sha256 {
        Some(expected) if expected != actual => Some((
            "corrupt",
            format!("its bytes hash to {actual}, recorded sha256 is {expected}"),
        )),
        _ => None,
    }
}

impl Database {
    /// Reads every stored blob and checks it against its block CRCs and SHA-256; reports each
    /// damaged one with the keys it serves. Putting the original content again (under any
    /// key) repairs a damaged blob for all of them.
    pub async fn verify_blobs(&self) -> Result<VerifyReport> {
        let engine = Arc::clone(&self.engine);
        let snapshot = engine.snapshot();
        tokio::task::spawn_blocking(move || {
            let (mut report, ids) = verify_all(&engine)?;
            if report.damaged.is_empty() {
                return Ok(report);
            }
            // Which keys name each damaged blob.
            let by_id: HashMap<BlobId, usize> = ids.into_iter().zip(0..).collect();
            for item in crate::mvcc::scan_at(&engine.meta, Bound::Unbounded, snapshot.version) {
                let (key, _, encoded) = item?;
                let Some(footprint) = decode_version_footprint(key.as_bytes(), &encoded)? else {
                    continue;
                };
                let found = footprint.blob.and_then(|id| by_id.get(&id));
                if let Some(damaged) = found.and_then(|&at| report.damaged.get_mut(at)) {
                    damaged.keys.push(key);
                }
            }
            Ok(report)
        })
        .await
        .map_err(|e| Error::internal(format!("verify task failed: {e}")))?
    }
}

/// Checks every blob; the report, and the id of each damaged blob in report order.
fn verify_all(engine: &Engine) -> Result<(VerifyReport, Vec<BlobId>)> {
    let mut report = VerifyReport::default();
    let mut ids = Vec::new();
    for entry in engine.meta.scan_prefix(BLOB_PREFIX) {
        let (tree_key, value) = entry?;
        let id = blob_id_of(&tree_key).ok_or_else(|| Error::internal("malformed blob key"))?;
        let blob = BlobEntry::decode(&value)?;
        // Each blob under its own pin: a blob moved by compaction meanwhile keeps its old runs.
        let pin = engine.space.pin();
        let problem = damage(
            &engine.space,
            &blob.layout.runs,
            blob.size,
            &blob.layout.block_crcs,
            Some(blob.sha256),
        );
        drop(pin);
        report.blobs_checked += 1;
        report.bytes_checked += blob.size;
        if let Some((code, reason)) = problem {
            ids.push(id);
            report.damaged.push(DamagedBlob {
                sha256: blob.sha256,
                size: blob.size,
                keys: Vec::new(),
                code,
                reason: format!("blob {}: {reason}", id.to_hex()),
            });
        }
    }
    Ok((report, ids))
}

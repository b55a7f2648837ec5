//! The recovery scan run when a data directory opens.
//!
//! No snapshot survives a restart, so opening keeps only the newest version of every key and
//! drops everything older, tombstones, the index entries of what is dropped, and blobs no
//! surviving version names. It recounts every blob's references from the surviving versions
//! and marks their runs used in the space: every other byte of the extents is free, which also
//! reclaims the space of writes that never committed.
//!
//! Invariants kept here:
//! - After recovery, a blob entry's `refs` equals the number of versions naming it, and every
//!   content-table entry names a surviving blob.
//! - The space marks used exactly the runs of surviving blobs (runs that overlap are corruption,
//!   reported, never silently shared).
//! - The cleanup is one batch, flushed before the directory is used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use asterope_core::{Error, Result};

use crate::blob::{BlobEntry, BlobId};
use crate::index::Index;
use crate::keys::{
    blob_id_of, latest_key, split_version_key, BLOB_PREFIX, CONTENT_PREFIX, ORACLE_KEY,
    USER_REGION_START,
};
use crate::meta::{BatchOp, MetaStore};
use crate::mvcc::{decode_version, decode_version_footprint};
use crate::space::Space;

/// Recovers the directory (see the module doc), applying `garbage` (cleanup already found by
/// the caller) with its own. Returns the last committed version.
pub(crate) fn recover(
    meta: &MetaStore,
    space: &Space,
    indexes: &BTreeMap<String, Index>,
    mut garbage: Vec<BatchOp>,
) -> Result<u64> {
    let mut last_committed = meta.get_counter(ORACLE_KEY, "version oracle")?;
    let mut refs: HashMap<BlobId, u64> = HashMap::new();
    let mut current: Option<Vec<u8>> = None;
    for entry in meta.range(
        Bound::Included(USER_REGION_START.to_vec()),
        Bound::Unbounded,
    ) {
        let (tree_key, value) = entry?;
        let (key, version) =
            split_version_key(&tree_key).ok_or_else(|| Error::internal("malformed version key"))?;
        last_committed = last_committed.max(version);
        let newest = current.as_deref() != Some(key);
        if newest {
            let current_key = current.get_or_insert_with(Vec::new);
            current_key.clear();
            current_key.extend_from_slice(key);
        }
        // The newest version of a live key only counts its blob: no need to decode it all.
        if newest {
            if let Some(footprint) = decode_version_footprint(key, &value)? {
                if let Some(blob) = footprint.blob {
                    *refs.entry(blob).or_insert(0) += 1;
                }
                continue;
            }
        }
        // Older versions, and a newest version that is a tombstone (the key goes entirely),
        // are garbage once no snapshot survives: they go with their index entries.
        if newest {
            garbage.push((latest_key(key), None));
        }
        garbage.push((tree_key.to_vec(), None));
        if let Some(record) = decode_version(key, &value)?.into_object() {
            for index in indexes.values() {
                let entries = index.entries(key, version, &record.metadata);
                garbage.extend(entries.into_iter().map(|k| (k, None)));
            }
        }
    }
    recount_blobs(meta, space, &refs, &mut garbage)?;
    if !garbage.is_empty() {
        meta.apply(garbage)?;
        meta.flush()?;
    }
    Ok(last_committed)
}

/// Sets every blob's reference count to `refs` (the surviving versions naming it), drops the
/// blobs none names with their content-table entries, and marks the others' space used.
fn recount_blobs(
    meta: &MetaStore,
    space: &Space,
    refs: &HashMap<BlobId, u64>,
    garbage: &mut Vec<BatchOp>,
) -> Result<()> {
    let mut surviving = HashSet::new();
    for entry in meta.scan_prefix(BLOB_PREFIX) {
        let (tree_key, value) = entry?;
        let id = blob_id_of(&tree_key).ok_or_else(|| Error::internal("malformed blob key"))?;
        let mut blob = BlobEntry::decode(&value)?;
        match refs.get(&id).copied().unwrap_or(0) {
            0 => garbage.push((tree_key.to_vec(), None)),
            count => {
                if blob.refs != count {
                    blob.refs = count;
                    garbage.push((tree_key.to_vec(), Some(blob.encode()?)));
                }
                space
                    .mark_used(&blob.layout.runs)
                    .map_err(|reason| Error::Corrupt {
                        key: format!("blob {}", id.to_hex()),
                        reason,
                    })?;
                surviving.insert(id);
            }
        }
    }
    for entry in meta.scan_prefix(CONTENT_PREFIX) {
        let (tree_key, value) = entry?;
        let names_survivor =
            <[u8; 16]>::try_from(&value[..]).is_ok_and(|id| surviving.contains(&BlobId(id)));
        if !names_survivor {
            garbage.push((tree_key.to_vec(), None));
        }
    }
    Ok(())
}

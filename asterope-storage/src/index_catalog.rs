//! The catalog of secondary indexes: loading the definitions when a directory opens,
//! declaring an index, dropping one, and how an index is presented to users. Filling a declared
//! index is `index_build.rs`.
//!
//! Invariants kept here:
//! - A definition that cannot be read back, or names a field no longer accepted, loads as a
//!   failed index (persisted so), never as an error of the open.
//! - Every declaration gets a generation of its own, so the key prefixes of an incarnation are
//!   untouched by the cleanup of an earlier one on the same field; generations no definition
//!   names (a drop cut short by a crash) are swept on open.
//! - Declarations and drops change the index set under the commit lock: a commit sees an index
//!   either in all of its keys or in none.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use asterope_core::{Error, FieldPath, IndexInfo, IndexState, Result};
use asterope_serialization::{decode, encode};

use crate::engine::Engine;
use crate::index::{successor, Index, IndexDef};
use crate::index_build::{build_index, INDEX_BUILD_BATCH};
use crate::keys::{
    generation_of, index_def_key, split_index_entry, GENERATION_ENTRY_PREFIX,
    GENERATION_POSTING_PREFIX, INDEX_DEF_PREFIX, INDEX_GENERATION_KEY,
};
use crate::meta::{BatchOp, MetaStore};

/// Reads every index definition. One that cannot be used is kept as a failed index (persisted
/// by the returned batch) rather than failing the open; a definition whose name is not UTF-8
/// (never written by this crate) is removed.
pub(crate) fn load_definitions(
    meta: &MetaStore,
) -> Result<(BTreeMap<String, Index>, Vec<BatchOp>)> {
    let mut indexes = BTreeMap::new();
    let mut repairs = Vec::new();
    for entry in meta.scan_prefix(INDEX_DEF_PREFIX) {
        let (key, value) = entry?;
        let Ok(field) = std::str::from_utf8(key.get(INDEX_DEF_PREFIX.len()..).unwrap_or_default())
        else {
            repairs.push((key.to_vec(), None));
            continue;
        };
        let mut def = match decode::<IndexDef>(&value, "index definition") {
            Ok(def) => def,
            Err(e) => {
                IndexDef::building(None).into_failed(format!("its definition cannot be read: {e}"))
            }
        };
        if def.failed.is_none() {
            if let Err(e) = FieldPath::parse(field) {
                def = def.into_failed(format!("its field path is refused: {e}"));
            }
        }
        if def.failed.is_some() {
            repairs.push((key.to_vec(), Some(encode(&def)?)));
        }
        indexes.insert(field.to_string(), Index::new(field, def));
    }
    sweep_orphan_generations(meta, &indexes)?;
    Ok((indexes, repairs))
}

/// Removes the entries and posting lists of index generations no definition names any more
/// (left by a drop interrupted by a crash). One seek per generation present.
fn sweep_orphan_generations(meta: &MetaStore, indexes: &BTreeMap<String, Index>) -> Result<()> {
    let live: std::collections::HashSet<u64> =
        indexes.values().filter_map(|i| i.def.generation).collect();
    for region in [GENERATION_ENTRY_PREFIX, GENERATION_POSTING_PREFIX] {
        let mut from = region.to_vec();
        loop {
            let first = meta
                .range(Bound::Included(from), Bound::Excluded(successor(region)))
                .next()
                .transpose()?;
            let Some((tree_key, _)) = first else { break };
            let Some(generation) = generation_of(&tree_key, region) else {
                break; // nothing well-formed follows in this region
            };
            let prefix = [region, &generation.to_be_bytes()].concat();
            if !live.contains(&generation) {
                tracing::warn!("removing the leftovers of dropped index generation {generation}");
                delete_prefix(meta, &prefix, |_| true)?;
            }
            from = successor(&prefix);
        }
    }
    Ok(())
}

/// Deletes the keys under `prefix` that `owned` accepts, in bounded batches.
fn delete_prefix(meta: &MetaStore, prefix: &[u8], owned: impl Fn(&[u8]) -> bool) -> Result<()> {
    let stale: Vec<BatchOp> = meta
        .scan_prefix(prefix)
        .filter(|entry| entry.as_ref().map_or(true, |(k, _)| owned(k)))
        .map(|entry| entry.map(|(k, _)| (k.to_vec(), None)))
        .collect::<Result<_>>()?;
    for chunk in stale.chunks(INDEX_BUILD_BATCH) {
        meta.apply(chunk.to_vec())?;
    }
    Ok(())
}

/// How an index is presented to users.
pub(crate) fn index_info(field: &str, index: &Index) -> IndexInfo {
    let state = match (&index.def.failed, index.def.ready_at) {
        (Some(_), _) => IndexState::Failed,
        (None, Some(_)) => IndexState::Ready,
        (None, None) => IndexState::Building,
    };
    IndexInfo {
        field: field.to_string(),
        state,
    }
}

/// Declares an index on a valid field path and starts filling it.
pub(crate) fn create_index(engine: &Arc<Engine>, field: &str) -> Result<IndexInfo> {
    let field = FieldPath::parse(field)?.to_string();
    let generation;
    {
        let _commits_paused = engine.commit_lock.lock();
        let mut indexes = engine.indexes_mut();
        if let Some(existing) = indexes.get(&field) {
            return Ok(index_info(&field, existing));
        }
        // A new generation for every declaration: the key prefixes of this incarnation are
        // its own, untouched by the cleanup of an earlier one still running.
        generation = engine
            .meta
            .get_counter(INDEX_GENERATION_KEY, "index generation")?
            + 1;
        let def = IndexDef::building(Some(generation));
        engine.meta.apply(vec![
            (
                INDEX_GENERATION_KEY.to_vec(),
                Some(generation.to_be_bytes().to_vec()),
            ),
            (index_def_key(&field), Some(encode(&def)?)),
        ])?;
        engine.meta.flush()?;
        indexes.insert(field.clone(), Index::new(&field, def));
    }
    build_index(engine, &field, Some(generation));
    Ok(IndexInfo {
        field,
        state: IndexState::Building,
    })
}

/// Removes an index and its entries. A declared index is found by its exact name even if
/// that name would no longer be accepted (so a failed legacy index can be dropped).
pub(crate) fn drop_index(engine: &Engine, field: &str) -> Result<()> {
    let field = if engine.indexes().contains_key(field) {
        field.to_string()
    } else {
        FieldPath::parse(field)?.to_string()
    };
    let (index, legacy_others) = {
        let _commits_paused = engine.commit_lock.lock();
        let mut indexes = engine.indexes_mut();
        let Some(index) = indexes.remove(&field) else {
            return Err(Error::NotFound {
                key: format!("index {field}"),
            });
        };
        engine.meta.apply(vec![(index_def_key(&field), None)])?;
        let legacy_others: Vec<Index> = indexes
            .values()
            .filter(|other| other.def.generation.is_none())
            .cloned()
            .collect();
        (index, legacy_others)
    };
    // Outside the commit lock: the keys are this incarnation's alone, and a new index on
    // the field (declared meanwhile) has a generation, so prefixes, of its own. A legacy
    // index's prefix may overlap another legacy one's (`a` and `a\0b`): keys that may be
    // the other's are left alone.
    let owned = |key: &[u8]| {
        index.def.generation.is_some()
            || !legacy_others.iter().any(|other| {
                key.get(other.prefix.len()..)
                    .filter(|_| key.starts_with(&other.prefix))
                    .is_some_and(|rest| split_index_entry(rest).is_some())
                    || key
                        .strip_prefix(other.posting_prefix.as_slice())
                        .is_some_and(|rest| asterope_serialization::ordered_len(rest).is_some())
            })
    };
    delete_prefix(&engine.meta, &index.prefix, owned)?;
    delete_prefix(&engine.meta, &index.posting_prefix, owned)?;
    engine.meta.flush()
}
/// Declares an index on `field` in a closed data directory with a definition that cannot be
/// read back, as damage would leave it: for tests of how such a directory opens.
#[cfg(feature = "test-support")]
pub fn declare_unreadable_index(dir: &std::path::Path, field: &str) -> Result<()> {
    let meta = MetaStore::open(&dir.join("meta"), 16 << 20)?;
    meta.apply(vec![(
        index_def_key(field),
        Some(b"\xc1 not a definition".to_vec()),
    )])?;
    meta.flush()
}

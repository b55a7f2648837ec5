//! The life of a secondary index: loading definitions at open, declaring, filling in the
//! background, marking ready or failed, and dropping.
//!
//! **Opening a data directory never depends on a background job succeeding.** A definition
//! that cannot be read back or names a field no longer accepted, and a build that returns an
//! error or panics, leave the index in the persisted `failed` state: it is listed as such,
//! never used by queries, never resumed, and can be dropped. Nothing about an index can make
//! [`crate::Database`] fail to open.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use asterope_core::{Error, FieldPath, IndexInfo, Result};
use asterope_serialization::{decode, encode};

use crate::database::Inner;
use crate::index::successor;
use crate::index::{entry_value, Index, IndexDef};
use crate::keys::{
    generation_of, index_def_key, split_index_entry, GENERATION_ENTRY_PREFIX,
    GENERATION_POSTING_PREFIX, INDEX_DEF_PREFIX, INDEX_GENERATION_KEY,
};
use crate::meta::{BatchOp, MetaStore};
use crate::mvcc::{decode_version_fields, newest_version, versions_of, Snapshot};

/// Index entries written per batch while building or dropping an index.
pub(crate) const INDEX_BUILD_BATCH: usize = 1000;

/// State names of [`IndexInfo::state`].
const READY: &str = "ready";
const BUILDING: &str = "building";
const FAILED: &str = "failed";

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
        (Some(_), _) => FAILED,
        (None, Some(_)) => READY,
        (None, None) => BUILDING,
    };
    IndexInfo {
        field: field.to_string(),
        state: state.into(),
    }
}

impl Inner {
    /// Resumes the builds that were running when the directory was last closed.
    pub(crate) fn resume_index_builds(self: &Arc<Self>) {
        let unfinished: Vec<(String, Option<u64>)> = self
            .indexes()
            .iter()
            .filter(|(_, index)| index.def.ready_at.is_none() && index.def.failed.is_none())
            .map(|(field, index)| (field.clone(), index.def.generation))
            .collect();
        for (field, generation) in unfinished {
            self.build_index(&field, generation);
        }
    }

    /// Declares an index on a valid field path and starts filling it.
    pub(crate) fn create_index(self: &Arc<Self>, field: &str) -> Result<IndexInfo> {
        let field = FieldPath::parse(field)?.to_string();
        let generation;
        {
            let _serialise = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
            let mut indexes = self.indexes_mut();
            if let Some(existing) = indexes.get(&field) {
                return Ok(index_info(&field, existing));
            }
            // A new generation for every declaration: the key prefixes of this incarnation are
            // its own, untouched by the cleanup of an earlier one still running.
            generation = self
                .meta
                .get_counter(INDEX_GENERATION_KEY, "index generation")?
                + 1;
            let def = IndexDef::building(Some(generation));
            self.meta.apply(vec![
                (
                    INDEX_GENERATION_KEY.to_vec(),
                    Some(generation.to_be_bytes().to_vec()),
                ),
                (index_def_key(&field), Some(encode(&def)?)),
            ])?;
            self.meta.flush()?;
            indexes.insert(field.clone(), Index::new(&field, def));
        }
        self.build_index(&field, Some(generation));
        Ok(IndexInfo {
            field,
            state: BUILDING.into(),
        })
    }

    /// Removes an index and its entries. A declared index is found by its exact name even if
    /// that name would no longer be accepted (so a failed legacy index can be dropped).
    pub(crate) fn drop_index(&self, field: &str) -> Result<()> {
        let field = if self.indexes().contains_key(field) {
            field.to_string()
        } else {
            FieldPath::parse(field)?.to_string()
        };
        let (index, legacy_others) = {
            let _serialise = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
            let mut indexes = self.indexes_mut();
            let Some(index) = indexes.remove(&field) else {
                return Err(Error::NotFound {
                    key: format!("index {field}"),
                });
            };
            self.meta.apply(vec![(index_def_key(&field), None)])?;
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
        delete_prefix(&self.meta, &index.prefix, owned)?;
        delete_prefix(&self.meta, &index.posting_prefix, owned)?;
        self.meta.flush()
    }

    /// Fills a declared index from the objects visible now, on a background thread, then marks
    /// it ready for snapshots from then on. Commits after the declaration write their own
    /// entries, so nothing is missed. A build that fails (error or panic), or cannot start,
    /// marks the index failed. The builder works for this one incarnation (`generation`): once
    /// the index is dropped, or dropped and declared again, it stops and touches nothing.
    fn build_index(self: &Arc<Self>, field: &str, generation: Option<u64>) {
        let snapshot = self.snapshots.take();
        // The builder holds the database only weakly: closing it stops the build (it resumes
        // on the next open), and never keeps the directory locked.
        let weak = Arc::downgrade(self);
        let owned_field = field.to_string();
        let started = std::thread::Builder::new()
            // The name is for debuggers only; a field never reaches the OS in it.
            .name("index-build".into())
            .spawn(move || {
                let field = owned_field;
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    Inner::fill_index(&weak, &field, generation, snapshot)
                }));
                let reason = match outcome {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(panic) => format!("the build panicked: {}", panic_message(&*panic)),
                };
                tracing::error!("building index {field:?} failed: {reason}");
                if let Some(this) = weak.upgrade() {
                    this.fail_index(&field, generation, &reason);
                }
            });
        if let Err(e) = started {
            let reason = format!("the builder could not start: {e}");
            self.fail_index(field, generation, &reason);
        }
    }

    /// A copy of the index on `field`, if it is still the incarnation `generation` (a read lock
    /// only: queries are not held up).
    fn current_incarnation(&self, field: &str, generation: Option<u64>) -> Option<Index> {
        self.indexes()
            .get(field)
            .filter(|index| index.def.generation == generation)
            .cloned()
    }

    /// The index on `field`, if it is still the incarnation `generation`.
    fn incarnation<'a>(
        indexes: &'a mut BTreeMap<String, Index>,
        field: &str,
        generation: Option<u64>,
    ) -> Option<&'a mut Index> {
        indexes
            .get_mut(field)
            .filter(|index| index.def.generation == generation)
    }

    /// Persists that an index cannot be built (best effort: it is failed in memory at least).
    fn fail_index(&self, field: &str, generation: Option<u64>, reason: &str) {
        let _serialise = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
        let mut indexes = self.indexes_mut();
        let Some(index) = Inner::incarnation(&mut indexes, field, generation) else {
            return; // dropped meanwhile
        };
        index.def.failed = Some(reason.to_string());
        let persisted = encode(&index.current_def()).and_then(|def| {
            self.meta.apply(vec![(index_def_key(field), Some(def))])?;
            self.meta.flush()
        });
        if let Err(e) = persisted {
            tracing::error!("recording that index {field:?} failed: {e}");
        }
    }

    fn fill_index(
        weak: &Weak<Inner>,
        field: &str,
        generation: Option<u64>,
        snapshot: Snapshot,
    ) -> Result<()> {
        #[cfg(test)]
        if field == tests::PANICKING_FIELD {
            panic!("a build that panics");
        }
        let Some(this) = weak.upgrade() else {
            return Ok(());
        };
        let Some(index) = this.current_incarnation(field, generation) else {
            return Ok(());
        };
        let mut batch = Vec::new();
        let mut resume: Option<Vec<u8>> = None;
        drop(this);
        loop {
            // Work in bounded passes, each holding the database only while it runs.
            let Some(this) = weak.upgrade() else {
                return Ok(());
            };
            let start = match &resume {
                Some(key) => Bound::Excluded(key.as_slice()),
                None => Bound::Unbounded,
            };
            let mut passed = 0;
            // Versions stay encoded: entries need the indexed field alone, and a covering
            // entry takes the stored encoding as it is.
            let mut found = Vec::new();
            for item in crate::mvcc::scan_at(&this.meta, start, snapshot.ts) {
                let (key, version, encoded) = item?;
                resume = Some(key.as_bytes().to_vec());
                found.push((key, version, encoded));
                passed += 1;
                if passed == INDEX_BUILD_BATCH {
                    break;
                }
            }
            // Under the commit lock, the versions found are checked against what commits did
            // since: a version collected meanwhile gets no entry (it would be an orphan), one
            // replaced meanwhile gets its supersession, as the replacing commit would have
            // written had the entry existed.
            let serialise = this.last_version.lock().unwrap_or_else(|e| e.into_inner());
            if this.current_incarnation(field, generation).is_none() {
                return Ok(());
            }
            let top_field = index
                .path
                .segments()
                .first()
                .map_or(&b""[..], |s| s.as_bytes());
            for (key, version, encoded) in found {
                let superseded = if newest_version(&this.meta, &key)? == Some(version) {
                    None // still the newest: one point lookup told (the usual case)
                } else {
                    let versions = versions_of(&this.meta, &key)?;
                    let Some(position) = versions.iter().position(|(ts, _)| *ts == version) else {
                        continue;
                    };
                    position
                        .checked_sub(1)
                        .and_then(|newer| versions.get(newer))
                        .map(|(ts, _)| *ts)
                };
                let wanted = |name: &[u8]| name == top_field;
                let Some(metadata) = decode_version_fields(key.as_bytes(), &encoded, wanted)?
                else {
                    continue;
                };
                let entries = index.entries(key.as_bytes(), version, &metadata);
                if entries.len() > 1 {
                    index.mark_multikey();
                }
                let covered = match (superseded, entries.len()) {
                    (None, 1) => Some(&encoded[..]),
                    _ => None,
                };
                let value = entry_value(superseded, covered);
                batch.extend(entries.into_iter().map(|k| (k, Some(value.clone()))));
            }
            this.meta.apply(std::mem::take(&mut batch))?;
            drop(serialise);
            if passed < INDEX_BUILD_BATCH {
                return this.finish_index(field, &index, &snapshot);
            }
        }
    }

    /// Marks a filled index ready for snapshots at or after the one it was filled from.
    fn finish_index(&self, field: &str, index: &Index, snapshot: &Snapshot) -> Result<()> {
        let _serialise = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
        let generation = index.def.generation;
        if Inner::incarnation(&mut self.indexes_mut(), field, generation).is_none() {
            return Ok(());
        }
        let def = IndexDef {
            ready_at: Some(snapshot.ts),
            ..index.current_def()
        };
        self.meta
            .apply(vec![(index_def_key(field), Some(encode(&def)?))])?;
        self.meta.flush()?;
        if let Some(index) = Inner::incarnation(&mut self.indexes_mut(), field, generation) {
            index.def.ready_at = def.ready_at;
        }
        Ok(())
    }
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

/// The message of a caught panic, when it has one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use asterope_core::{Key, Metadata, ObjectOps, Store, StoreExt};

    use super::*;
    use crate::Database;

    /// An index whose build panics (the builder checks for it in test builds).
    pub(super) const PANICKING_FIELD: &str = "panics_when_built";

    async fn state_of(db: &Database, field: &str) -> Option<String> {
        let listed = db.list_indexes().await.unwrap();
        listed
            .into_iter()
            .find(|i| i.field == field)
            .map(|i| i.state)
    }

    async fn wait_for_state(db: &Database, field: &str, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while state_of(db, field).await.as_deref() != Some(wanted) {
            assert!(Instant::now() < deadline, "index {field:?} never {wanted}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Writes the durable definition of a declared, unbuilt index directly, as a release that
    /// accepted any field path would have.
    fn declare_raw(db: &Database, field: &str, def: &[u8]) {
        db.meta_store()
            .apply(vec![(index_def_key(field), Some(def.to_vec()))])
            .unwrap();
        db.meta_store().flush().unwrap();
    }

    #[tokio::test]
    async fn index_with_control_characters_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        for field in ["a\0b", "a\nb", "\u{7f}", "ok.\u{1b}"] {
            let refused = db.create_index(field).await.unwrap_err();
            assert_eq!(refused.code(), "invalid_query", "{field:?}");
        }
        assert!(db.list_indexes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn directory_with_unbuildable_indexes_opens_and_lists_them_failed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(dir.path()).unwrap();
            let key = Key::new("k").unwrap();
            let mut meta = Metadata::new();
            meta.insert("a".into(), 1.into());
            db.put_bytes(&key, "x".into(), meta).await.unwrap();
            let building = encode(&IndexDef::building(None)).unwrap();
            declare_raw(&db, "a\0b", &building); // refused since, once accepted
            declare_raw(&db, "garbled", b"\xc1 not a definition");
        }
        for _ in 0..2 {
            let db = Database::open(dir.path()).unwrap();
            assert_eq!(state_of(&db, "a\0b").await.as_deref(), Some(FAILED));
            assert_eq!(state_of(&db, "garbled").await.as_deref(), Some(FAILED));
            let (info, bytes) = db.get_bytes(&Key::new("k").unwrap()).await.unwrap();
            assert_eq!((info.size, &bytes[..]), (1, &b"x"[..]));
        }
        let db = Database::open(dir.path()).unwrap();
        db.drop_index("a\0b").await.unwrap();
        db.drop_index("garbled").await.unwrap();
        assert!(db.list_indexes().await.unwrap().is_empty());
        drop(db);
        let db = Database::open(dir.path()).unwrap();
        assert!(db.list_indexes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn dropping_a_legacy_index_leaves_an_overlapping_ones_entries() {
        use asterope_core::{field, Query};
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(dir.path()).unwrap();
            // Indexes declared before generations, with field-named prefixes, one of which
            // ("a" 0x00) is a prefix of the other's ("a" 0x00 "b" 0x00).
            for field in ["a", "a\0b"] {
                declare_raw(&db, field, &encode(&IndexDef::building(None)).unwrap());
            }
        }
        let db = Database::open(dir.path()).unwrap();
        wait_for_state(&db, "a", READY).await;
        assert_eq!(state_of(&db, "a\0b").await.as_deref(), Some(FAILED));
        for i in 0..20 {
            let mut meta = Metadata::new();
            meta.insert("a".into(), i.into());
            let key = Key::new(format!("k{i}")).unwrap();
            db.put_bytes(&key, "x".into(), meta).await.unwrap();
        }
        let by_index = Query::new(field("a").gte(0));
        assert_eq!(db.explain(&by_index).await.unwrap().access, "index");
        db.drop_index("a\0b").await.unwrap();
        assert_eq!(db.count(&by_index).await.unwrap(), 20);
        db.drop_index("a").await.unwrap();
        let leftovers = db
            .meta_store()
            .scan_prefix(crate::keys::INDEX_ENTRY_PREFIX)
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn open_sweeps_the_entries_of_a_drop_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(dir.path()).unwrap();
            let mut meta = Metadata::new();
            meta.insert("g".into(), 1.into());
            let key = Key::new("k").unwrap();
            db.put_bytes(&key, "x".into(), meta).await.unwrap();
            db.create_index("g").await.unwrap();
            wait_for_state(&db, "g", READY).await;
            // A drop that removed the definition, then crashed before its cleanup.
            db.meta_store()
                .apply(vec![(index_def_key("g"), None)])
                .unwrap();
            db.meta_store().flush().unwrap();
            assert!(db.meta_store().scan_prefix(GENERATION_ENTRY_PREFIX).count() > 0);
        }
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(
            db.meta_store().scan_prefix(GENERATION_ENTRY_PREFIX).count(),
            0
        );
        assert_eq!(
            db.meta_store()
                .scan_prefix(GENERATION_POSTING_PREFIX)
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn panicking_build_marks_the_index_failed_and_open_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(dir.path()).unwrap();
            let info = db.create_index(PANICKING_FIELD).await.unwrap();
            assert_eq!(info.state, BUILDING);
            wait_for_state(&db, PANICKING_FIELD, FAILED).await;
            // Another index still builds; commits go on.
            db.create_index("b").await.unwrap();
            wait_for_state(&db, "b", READY).await;
        }
        // The failure was persisted: the next open neither resumes the build nor fails.
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(
            state_of(&db, PANICKING_FIELD).await.as_deref(),
            Some(FAILED)
        );
        db.drop_index(PANICKING_FIELD).await.unwrap();
        assert_eq!(state_of(&db, PANICKING_FIELD).await, None);
    }

    #[tokio::test]
    async fn a_resumed_build_that_panics_does_not_stop_the_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(dir.path()).unwrap();
            declare_raw(
                &db,
                PANICKING_FIELD,
                &encode(&IndexDef::building(Some(1))).unwrap(),
            );
        }
        let db = Database::open(dir.path()).unwrap();
        wait_for_state(&db, PANICKING_FIELD, FAILED).await;
        let key = Key::new("still/writable").unwrap();
        db.put_bytes(&key, "y".into(), Metadata::new())
            .await
            .unwrap();
    }
}

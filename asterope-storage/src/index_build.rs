//! Filling a declared secondary index in the background, then marking it ready (or failed);
//! resuming unfinished builds when a directory opens. Declaring and dropping an index is
//! `index_catalog.rs`.
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

use asterope_core::Result;
use asterope_serialization::encode;

use crate::engine::Engine;
use crate::index::{entry_value, Index, IndexDef};
use crate::keys::index_def_key;
use crate::mvcc::{decode_version_fields, newest_version, versions_of, Snapshot};

/// Index entries written per batch while building or dropping an index.
pub(crate) const INDEX_BUILD_BATCH: usize = 1000;

/// Resumes the builds that were running when the directory was last closed.
pub(crate) fn resume_index_builds(engine: &Arc<Engine>) {
    let unfinished: Vec<(String, Option<u64>)> = engine
        .indexes()
        .iter()
        .filter(|(_, index)| index.def.ready_at.is_none() && index.def.failed.is_none())
        .map(|(field, index)| (field.clone(), index.def.generation))
        .collect();
    for (field, generation) in unfinished {
        build_index(engine, &field, generation);
    }
}
/// Fills a declared index from the objects visible now, on a background thread, then marks
/// it ready for snapshots from then on. Commits after the declaration write their own
/// entries, so nothing is missed. A build that fails (error or panic), or cannot start,
/// marks the index failed. The builder works for this one incarnation (`generation`): once
/// the index is dropped, or dropped and declared again, it stops and touches nothing.
pub(crate) fn build_index(engine: &Arc<Engine>, field: &str, generation: Option<u64>) {
    let snapshot = engine.snapshots.take();
    // The builder holds the database only weakly: closing it stops the build (it resumes
    // on the next open), and never keeps the directory locked.
    let weak = Arc::downgrade(engine);
    let owned_field = field.to_string();
    let started = std::thread::Builder::new()
        // The name is for debuggers only; a field never reaches the OS in it.
        .name("index-build".into())
        .spawn(move || {
            let field = owned_field;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                fill_index(&weak, &field, generation, snapshot)
            }));
            let reason = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("the build panicked: {}", panic_message(&*panic)),
            };
            tracing::error!("building index {field:?} failed: {reason}");
            if let Some(this) = weak.upgrade() {
                fail_index(&this, &field, generation, &reason);
            }
        });
    if let Err(e) = started {
        let reason = format!("the builder could not start: {e}");
        fail_index(engine, field, generation, &reason);
    }
}

/// A copy of the index on `field`, if it is still the incarnation `generation` (a read lock
/// only: queries are not held up).
fn current_incarnation(engine: &Engine, field: &str, generation: Option<u64>) -> Option<Index> {
    engine
        .indexes()
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
fn fail_index(engine: &Engine, field: &str, generation: Option<u64>, reason: &str) {
    let _commits_paused = engine.commit_lock.lock();
    let mut indexes = engine.indexes_mut();
    let Some(index) = incarnation(&mut indexes, field, generation) else {
        return; // dropped meanwhile
    };
    index.def.failed = Some(reason.to_string());
    let persisted = encode(&index.current_def()).and_then(|def| {
        engine.meta.apply(vec![(index_def_key(field), Some(def))])?;
        engine.meta.flush()
    });
    if let Err(e) = persisted {
        tracing::error!("recording that index {field:?} failed: {e}");
    }
}

fn fill_index(
    weak: &Weak<Engine>,
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
    let Some(index) = current_incarnation(&this, field, generation) else {
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
        for item in crate::mvcc::scan_at(&this.meta, start, snapshot.version) {
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
        let commits_paused = this.commit_lock.lock();
        if current_incarnation(&this, field, generation).is_none() {
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
                let Some(position) = versions.iter().position(|(found, _)| *found == version)
                else {
                    continue;
                };
                position
                    .checked_sub(1)
                    .and_then(|newer| versions.get(newer))
                    .map(|(newer, _)| *newer)
            };
            let wanted = |name: &[u8]| name == top_field;
            let Some(metadata) = decode_version_fields(key.as_bytes(), &encoded, wanted)? else {
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
        drop(commits_paused);
        if passed < INDEX_BUILD_BATCH {
            return finish_index(&this, field, &index, &snapshot);
        }
    }
}

/// Marks a filled index ready for snapshots at or after the one it was filled from.
fn finish_index(engine: &Engine, field: &str, index: &Index, snapshot: &Snapshot) -> Result<()> {
    let _commits_paused = engine.commit_lock.lock();
    let generation = index.def.generation;
    if incarnation(&mut engine.indexes_mut(), field, generation).is_none() {
        return Ok(());
    }
    let def = IndexDef {
        ready_at: Some(snapshot.version),
        ..index.current_def()
    };
    engine
        .meta
        .apply(vec![(index_def_key(field), Some(encode(&def)?))])?;
    engine.meta.flush()?;
    if let Some(index) = incarnation(&mut engine.indexes_mut(), field, generation) {
        index.def.ready_at = def.ready_at;
    }
    Ok(())
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

    use asterope_core::{IndexState, Key, Metadata, ObjectOps, PlanAccess, Store, StoreExt};

    use super::*;
    use crate::keys::{GENERATION_ENTRY_PREFIX, GENERATION_POSTING_PREFIX};
    use crate::Database;

    /// An index whose build panics (the builder checks for it in test builds).
    pub(super) const PANICKING_FIELD: &str = "panics_when_built";

    async fn state_of(db: &Database, field: &str) -> Option<IndexState> {
        let listed = db.list_indexes().await.unwrap();
        listed
            .into_iter()
            .find(|i| i.field == field)
            .map(|i| i.state)
    }

    async fn wait_for_state(db: &Database, field: &str, wanted: IndexState) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while state_of(db, field).await != Some(wanted) {
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
            assert_eq!(state_of(&db, "a\0b").await, Some(IndexState::Failed));
            assert_eq!(state_of(&db, "garbled").await, Some(IndexState::Failed));
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
        wait_for_state(&db, "a", IndexState::Ready).await;
        assert_eq!(state_of(&db, "a\0b").await, Some(IndexState::Failed));
        for i in 0..20 {
            let mut meta = Metadata::new();
            meta.insert("a".into(), i.into());
            let key = Key::new(format!("k{i}")).unwrap();
            db.put_bytes(&key, "x".into(), meta).await.unwrap();
        }
        let by_index = Query::new(field("a").gte(0));
        assert_eq!(
            db.explain(&by_index).await.unwrap().access,
            PlanAccess::Index
        );
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
            wait_for_state(&db, "g", IndexState::Ready).await;
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
            assert_eq!(info.state, IndexState::Building);
            wait_for_state(&db, PANICKING_FIELD, IndexState::Failed).await;
            // Another index still builds; commits go on.
            db.create_index("b").await.unwrap();
            wait_for_state(&db, "b", IndexState::Ready).await;
        }
        // The failure was persisted: the next open neither resumes the build nor fails.
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(
            state_of(&db, PANICKING_FIELD).await,
            Some(IndexState::Failed)
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
        wait_for_state(&db, PANICKING_FIELD, IndexState::Failed).await;
        let key = Key::new("still/writable").unwrap();
        db.put_bytes(&key, "y".into(), Metadata::new())
            .await
            .unwrap();
    }
}

//! Committing: applying a set of intents atomically and durably under one new version.
//!
//! A commit runs these steps, in this order, under the commit lock:
//! 1. [`plan`]: check every intent first (transaction conflicts, then conditions), and build
//!    the new version of each key; a refused intent refuses the whole commit, and nothing has
//!    been written yet.
//! 2. Per key, into one metadata batch: [`CommitBatch::collect_old_versions`] (versions no live
//!    snapshot can see, with their index entries and blob references),
//!    [`CommitBatch::supersede_previous`] (index entries of the previous newest version kept for
//!    older snapshots), [`CommitBatch::unlist_previous`] (its posting-list entries), and
//!    [`CommitBatch::write_new_version`] (the version, its newest-version pointer, its index
//!    entries and posting-list entries).
//! 3. The blob ledger's reference-count changes join the batch ([`BlobLedger::finish`]).
//! 4. [`apply_flush_retire`]: **apply -> flush -> retire**, the invariant that makes a crash at
//!    any point safe:
//!    - *apply*: the batch goes into the metadata store in one atomic step, and the new version
//!      becomes visible to snapshots taken from then on (the commit lock is released);
//!    - the reservations of the new blobs are kept from then on, even if the flush fails: the
//!      applied batch may still reach the disk, and its entries name those runs;
//!    - *flush*: the metadata store is made durable; this is the commit point;
//!    - *retire*: only then are the runs no blob names any more handed to the space, which
//!      frees them once no reader still streams them. Retiring before the flush could hand
//!      out, and overwrite, bytes a crash would bring back.
//!
//! Blob bytes are already durable before a commit starts (the writer syncs them).

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

use asterope_core::{Condition, Error, Key, Metadata, ObjectInfo, Result, Sha256Digest, Timestamp};
use asterope_serialization::encode;

use crate::blob_ledger::{BlobLedger, LedgerOutcome};
use crate::engine::Engine;
use crate::index::{entry_value, Index};
use crate::integrity::Twin;
use crate::keys::{index_def_key, index_entry_key, latest_key, version_key, ORACLE_KEY};
use crate::meta::BatchOp;
use crate::mvcc::{collectable, latest_value, versions_of, SnapshotState};
use crate::posting::PostingEdits;
use crate::record::{ObjectRecord, VersionRecord};
use crate::space::Reservation;

/// A change to one key, as committed.
#[derive(Debug)]
pub(crate) enum Write {
    Put {
        reservation: Reservation,
        size: u64,
        sha256: Sha256Digest,
        block_crcs: Vec<u32>,
        metadata: Metadata,
        /// The stored blob of the same content, as checked when the bytes were written.
        twin: Option<Twin>,
    },
    Metadata(Metadata),
    Delete,
}

/// A change with its optimistic-concurrency requirement.
#[derive(Debug)]
pub(crate) struct Intent {
    pub(crate) write: Write,
    pub(crate) condition: Condition,
}

/// Commits intents on a blocking thread. `start` is the snapshot version of a transaction,
/// whose writes conflict with any newer committed version of the same keys. Returns the commit
/// version and the new objects.
pub(crate) async fn commit(
    engine: &Arc<Engine>,
    start: Option<u64>,
    intents: BTreeMap<Key, Intent>,
) -> Result<(u64, Vec<ObjectInfo>)> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || commit_blocking(&engine, start, intents))
        .await
        .map_err(|e| Error::internal(format!("commit task failed: {e}")))?
}

/// A key's planned change: its stored versions (newest first) and the version to write.
struct Planned {
    key: Key,
    versions: Vec<(u64, VersionRecord)>,
    new: VersionRecord,
}

/// Applies intents atomically and durably under one commit version.
fn commit_blocking(
    engine: &Engine,
    start: Option<u64>,
    intents: BTreeMap<Key, Intent>,
) -> Result<(u64, Vec<ObjectInfo>)> {
    let committed = engine.commit_lock.lock();
    let version = *committed + 1;
    let indexes = engine.indexes();
    let mut ledger = BlobLedger::new(&engine.meta, engine.dedup);
    let planned = plan(engine, start, intents, version, &mut ledger)?;

    let mut batch = CommitBatch {
        indexes: &indexes,
        version,
        // Per key: its version, its newest-version entry and a few index entries, usually.
        ops: Vec::with_capacity(1 + planned.len() * 6),
        infos: Vec::with_capacity(planned.len()),
        postings: PostingEdits::new(&engine.meta),
    };
    batch
        .ops
        .push((ORACLE_KEY.to_vec(), Some(version.to_be_bytes().to_vec())));
    let snapshots = engine.snapshots.lock();
    let live = snapshots.live();
    for Planned { key, versions, new } in planned {
        let removed = batch.collect_old_versions(&key, &versions, &live, &mut ledger)?;
        let keeps_older = versions.len() > removed.len();
        let needed_by_older_snapshot = live.iter().any(|&s| s < version);
        if !removed.contains(&1) {
            batch.supersede_previous(&key, &versions);
        }
        batch.unlist_previous(&key, &versions)?;
        batch.write_new_version(key, new, keeps_older || needed_by_older_snapshot)?;
    }
    let CommitBatch {
        mut ops,
        infos,
        postings,
        ..
    } = batch;
    ops.extend(postings.finish(version)?);
    drop(indexes);
    let outcome = ledger.finish()?;
    apply_flush_retire(engine, ops, outcome, committed, snapshots, version)?;
    Ok((version, infos))
}

/// Step 1: checks every intent (a transaction's conflicts, then its condition) and builds the
/// new version of each key, counting the blob references the new versions take.
fn plan(
    engine: &Engine,
    start: Option<u64>,
    intents: BTreeMap<Key, Intent>,
    version: u64,
    ledger: &mut BlobLedger<'_>,
) -> Result<Vec<Planned>> {
    let now = Timestamp::now();
    let mut planned = Vec::with_capacity(intents.len());
    for (key, intent) in intents {
        let versions = versions_of(&engine.meta, &key)?;
        check_conflict(&key, start, &versions)?;
        let current = versions.first().and_then(|(_, v)| v.object());
        intent
            .condition
            .check(&key, current.map_or(0, |r| r.version))?;
        let not_found = || Error::NotFound {
            key: key.to_string(),
        };
        let new = match intent.write {
            Write::Put {
                reservation,
                size,
                sha256,
                block_crcs,
                metadata,
                twin,
            } => {
                let blob = ledger.put(reservation, size, sha256, block_crcs, twin)?;
                VersionRecord::Object(ObjectRecord {
                    version,
                    size,
                    sha256,
                    created: current.map_or(now, |r| r.created),
                    updated: now,
                    metadata,
                    blob,
                })
            }
            Write::Metadata(metadata) => {
                let current = current.ok_or_else(not_found)?;
                ledger.add_ref(current.blob, 1)?;
                VersionRecord::Object(ObjectRecord {
                    version,
                    updated: now,
                    metadata,
                    ..current.clone()
                })
            }
            Write::Delete => {
                current.ok_or_else(not_found)?;
                VersionRecord::Tombstone
            }
        };
        planned.push(Planned { key, versions, new });
    }
    Ok(planned)
}

/// First committer wins: a transaction that began at `start` may not write a key committed
/// after it.
fn check_conflict(key: &Key, start: Option<u64>, versions: &[(u64, VersionRecord)]) -> Result<()> {
    match (start, versions.first()) {
        (Some(start), Some((newest, _))) if *newest > start => Err(Error::Conflict {
            key: key.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The metadata batch of one commit, built key by key (step 2).
struct CommitBatch<'a> {
    indexes: &'a BTreeMap<String, Index>,
    version: u64,
    ops: Vec<BatchOp>,
    /// The objects written, in key order.
    infos: Vec<ObjectInfo>,
    postings: PostingEdits<'a>,
}

impl CommitBatch<'_> {
    /// Removes the versions of `key` no live snapshot can see once this commit's version
    /// exists, with their index entries and blob references. Returns their positions, counted
    /// with the new version at 0 (so the previous newest version is 1).
    fn collect_old_versions(
        &mut self,
        key: &Key,
        versions: &[(u64, VersionRecord)],
        live: &[u64],
        ledger: &mut BlobLedger<'_>,
    ) -> Result<Vec<usize>> {
        let mut all_versions = vec![self.version];
        all_versions.extend(versions.iter().map(|(version, _)| *version));
        let removed = collectable(&all_versions, live);
        for &i in &removed {
            let Some((version, old)) = versions.get(i - 1) else {
                continue;
            };
            self.ops.push((version_key(key.as_bytes(), *version), None));
            let Some(record) = old.object() else {
                continue;
            };
            for index in self.indexes.values() {
                let entries = index.entries(key.as_bytes(), *version, &record.metadata);
                self.ops.extend(entries.into_iter().map(|k| (k, None)));
            }
            ledger.add_ref(record.blob, -1)?;
        }
        Ok(removed)
    }

    /// The previous newest version, kept for older snapshots, is superseded by this commit:
    /// its index entries say so (newer snapshots skip them).
    fn supersede_previous(&mut self, key: &Key, versions: &[(u64, VersionRecord)]) {
        let Some((version, VersionRecord::Object(previous))) = versions.first() else {
            return;
        };
        let superseded = entry_value(Some(self.version), None);
        for index in self.indexes.values() {
            let entries = index.entries(key.as_bytes(), *version, &previous.metadata);
            self.ops
                .extend(entries.into_iter().map(|k| (k, Some(superseded.clone()))));
        }
    }

    /// Whatever the new version is, the previous one is no longer the key's newest: it leaves
    /// the posting lists.
    fn unlist_previous(&mut self, key: &Key, versions: &[(u64, VersionRecord)]) -> Result<()> {
        if let Some((_, VersionRecord::Object(previous))) = versions.first() {
            for index in self.indexes.values() {
                for value in index.values(&previous.metadata) {
                    self.postings.remove(index, &value, key.as_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Writes the new version of `key`, its newest-version pointer, and (for an object) its
    /// index and posting-list entries. A tombstone nobody can see past (`seen_past` false) is
    /// not stored: the key is gone.
    fn write_new_version(&mut self, key: Key, new: VersionRecord, seen_past: bool) -> Result<()> {
        let version = self.version;
        match &new {
            VersionRecord::Object(record) => {
                let encoded = new.encode()?;
                for (field, index) in self.indexes.iter() {
                    let values = index.values(&record.metadata);
                    if values.len() > 1 && index.mark_multikey() {
                        let def = encode(&index.current_def())?;
                        self.ops.push((index_def_key(field), Some(def)));
                    }
                    let entry = entry_value(None, (values.len() == 1).then_some(&encoded));
                    for value in &values {
                        self.postings.insert(index, value, key.as_bytes(), &entry)?;
                        let tree_key =
                            index_entry_key(&index.prefix, value, key.as_bytes(), version);
                        self.ops.push((tree_key, Some(entry.clone())));
                    }
                }
                self.ops.push((
                    latest_key(key.as_bytes()),
                    Some(latest_value(version, &encoded)),
                ));
                self.ops
                    .push((version_key(key.as_bytes(), version), Some(encoded)));
                self.infos.push(record.info(key));
            }
            VersionRecord::Tombstone if !seen_past => {
                self.ops.push((latest_key(key.as_bytes()), None));
            }
            VersionRecord::Tombstone => {
                let encoded = new.encode()?;
                self.ops.push((
                    latest_key(key.as_bytes()),
                    Some(latest_value(version, &encoded)),
                ));
                self.ops
                    .push((version_key(key.as_bytes(), version), Some(encoded)));
            }
        }
        Ok(())
    }
}

/// Step 4, in this order: apply the batch and publish the version, keep the new blobs' space,
/// flush (the commit point), then retire the space no blob names any more. See the module doc.
fn apply_flush_retire(
    engine: &Engine,
    mut ops: Vec<BatchOp>,
    outcome: LedgerOutcome,
    mut committed: MutexGuard<'_, u64>,
    mut snapshots: MutexGuard<'_, SnapshotState>,
    version: u64,
) -> Result<()> {
    let LedgerOutcome {
        ops: blob_ops,
        kept,
        duplicates,
        mut retired,
    } = outcome;
    ops.extend(blob_ops);
    engine.meta.apply(ops)?;
    *committed = version;
    snapshots.visible = version;
    drop(snapshots);
    drop(committed);
    // The blob entries now reference the new runs: they must never be freed by the
    // reservations, even if the flush fails (the change may still reach the disk).
    for reservation in kept {
        reservation.keep();
    }
    retired.extend(duplicates.into_iter().map(Reservation::keep));
    engine.meta.flush()?;
    for runs in retired {
        engine.space.retire(runs);
    }
    Ok(())
}

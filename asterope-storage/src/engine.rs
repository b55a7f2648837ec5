//! The state an open data directory shares between its handles, transactions, commits and
//! background jobs: the metadata store, the blob space, the snapshot registry, the declared
//! indexes and the commit lock.
//!
//! Invariants kept here:
//! - **One commit at a time.** [`CommitLock`] holds the last committed version; whoever holds
//!   it may write versions, blob entries and index definitions, and only a commit advances the
//!   version. Index declarations, index builds and compaction switches take it too, so what
//!   they checked cannot change before they apply.
//! - **Lock order**: the commit lock, then the index set, then the snapshot registry. No code
//!   takes them in another order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use asterope_core::{Error, Key, Result};

use crate::blob::{BlobEntry, BlobLayout};
use crate::index::Index;
use crate::keys::blob_key;
use crate::meta::MetaStore;
use crate::mvcc::{Snapshot, Snapshots};
use crate::record::ObjectRecord;
use crate::space::Space;

/// The commit lock: held by one commit at a time, it holds the last committed version.
#[derive(Debug)]
pub(crate) struct CommitLock(Mutex<u64>);

impl CommitLock {
    pub(crate) fn new(last_committed: u64) -> CommitLock {
        CommitLock(Mutex::new(last_committed))
    }

    /// Waits for the running commit (if any) to finish; no other starts until the guard drops.
    /// The guard derefs to the last committed version.
    pub(crate) fn lock(&self) -> MutexGuard<'_, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An open data directory.
#[derive(Debug)]
pub(crate) struct Engine {
    dir: PathBuf,
    pub(crate) meta: MetaStore,
    pub(crate) space: Arc<Space>,
    pub(crate) commit_lock: CommitLock,
    pub(crate) snapshots: Arc<Snapshots>,
    indexes: RwLock<BTreeMap<String, Index>>,
    /// Whether puts share stored blobs of the same content.
    pub(crate) dedup: bool,
    /// One compaction pass at a time.
    pub(crate) compaction_lock: Mutex<()>,
}

impl Engine {
    /// The state of a recovered directory whose last commit was `last_committed`.
    pub(crate) fn new(
        dir: PathBuf,
        meta: MetaStore,
        space: Arc<Space>,
        last_committed: u64,
        indexes: BTreeMap<String, Index>,
        dedup: bool,
    ) -> Engine {
        Engine {
            dir,
            meta,
            space,
            commit_lock: CommitLock::new(last_committed),
            snapshots: Snapshots::new(last_committed),
            indexes: RwLock::new(indexes),
            dedup,
            compaction_lock: Mutex::new(()),
        }
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A snapshot of everything committed so far.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshots.take()
    }

    /// The declared indexes (a read lock: queries share it).
    pub(crate) fn indexes(&self) -> RwLockReadGuard<'_, BTreeMap<String, Index>> {
        self.indexes.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The declared indexes, to change them (under the commit lock).
    pub(crate) fn indexes_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Index>> {
        self.indexes.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Where a record's blob is (empty for an empty object).
    pub(crate) fn blob_layout(&self, key: &Key, record: &ObjectRecord) -> Result<BlobLayout> {
        let Some(id) = record.blob else {
            return Ok(BlobLayout {
                runs: Vec::new(),
                block_crcs: Vec::new(),
            });
        };
        match self.meta.get(&blob_key(&id))? {
            Some(bytes) => Ok(BlobEntry::decode(&bytes)?.layout),
            None => Err(Error::Corrupt {
                key: key.to_string(),
                reason: format!("its blob {} is missing", id.to_hex()),
            }),
        }
    }
}

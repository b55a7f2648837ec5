//! The narrow seam over the metadata B+tree (sled 0.34): ordered get, range scan, atomic
//! multi-key batch, durable flush. Nothing else in the crate touches sled, so the engine under
//! the seam can be swapped without touching the rest.
//!
//! Durability: sled's own flush writes its log with `sync_file_range`, which neither flushes
//! the drive's write cache nor the file's size, and writes large items to files under `blobs/`
//! without syncing them (its background thread calls `fsync` every half second). So
//! [`MetaStore::flush`] follows sled's flush with `fdatasync` of the log and of any blob file
//! not yet synced, and `fsync` of the blob directory: a commit acknowledged after a flush
//! survives power loss, as one in SQLite with `synchronous=FULL` does. Concurrent flushers
//! share a sync that began after their own sled flush (group commit).
//!
//! Every call into sled goes through a [`MetaIo`] backend ([`crate::backend`]), the seam where
//! tests inject faults.
//!
//! A failed flush leaves the outcome of the changes applied before it unknown: they are in the
//! tree's memory and may or may not reach the disk. So after one the store refuses every
//! further read and write with a clear error until the directory is opened again, which reads
//! what did reach the disk (each batch whole or not at all). A failed batch changes nothing
//! and leaves the store usable.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use asterope_core::{Error, Result};

use crate::backend::MetaIo;

/// An ordered key-value store of byte strings.
#[derive(Debug)]
pub(crate) struct MetaStore {
    db: sled::Db,
    tree: sled::Tree,
    /// Sled flushes completed so far (each takes the next number once its flush returned).
    flushes: AtomicU64,
    files: Mutex<SyncedFiles>,
    /// Every call into sled goes through this backend.
    io: Arc<dyn MetaIo>,
    /// A flush failed: what the tree holds may differ from the disk (module documentation).
    failed: AtomicBool,
}

/// What [`MetaStore::flush`] syncs after sled's flush.
#[derive(Debug)]
struct SyncedFiles {
    /// Sled's log (`<path>/db`).
    log: File,
    /// Where sled writes items too large for its log.
    blobs: PathBuf,
    /// Blob files already synced (they are never rewritten, only removed).
    blobs_synced: HashSet<OsString>,
    /// Flushes numbered below this are covered by a completed sync.
    synced_below: u64,
    /// Syncs performed, for tests.
    syncs: u64,
}

/// A key or value read from the store, borrowed from its cache without a copy.
#[derive(Debug, Clone)]
pub(crate) struct MetaBytes(sled::IVec);

impl std::ops::Deref for MetaBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl MetaBytes {
    /// The bytes in `range`, sharing the same buffer (`None`: out of bounds).
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Option<MetaBytes> {
        let len = range.end.checked_sub(range.start)?;
        (range.end <= self.0.len()).then(|| MetaBytes(self.0.subslice(range.start, len)))
    }
}

/// One change of an atomic batch: insert (`Some`) or remove (`None`).
pub(crate) type BatchOp = (Vec<u8>, Option<Vec<u8>>);

impl MetaStore {
    /// Opens the tree at `path` with the real backend.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn open(path: &Path, cache_bytes: u64) -> Result<MetaStore> {
        MetaStore::open_with(path, cache_bytes, Arc::new(crate::backend::SledIo))
    }

    /// Opens the tree at `path`, doing its I/O through `io`.
    pub(crate) fn open_with(
        path: &Path,
        cache_bytes: u64,
        io: Arc<dyn MetaIo>,
    ) -> Result<MetaStore> {
        wait_for_release(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| sled_error("opening the metadata store", e))?;
        let tree = db
            .open_tree("objects")
            .map_err(|e| sled_error("opening the objects tree", e))?;
        let log = File::open(path.join("db"))
            .map_err(|e| Error::io("opening the metadata log for syncing", e))?;
        // The entries sled may just have created (its log, config, blob directory) are made
        // durable once, so that later syncs of the files themselves are not in vain.
        File::open(path)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| Error::io("syncing the metadata directory", e))?;
        Ok(MetaStore {
            db,
            tree,
            flushes: AtomicU64::new(0),
            files: Mutex::new(SyncedFiles {
                log,
                blobs: path.join("blobs"),
                blobs_synced: HashSet::new(),
                synced_below: 0,
                syncs: 0,
            }),
            io,
            failed: AtomicBool::new(false),
        })
    }

    /// Refuses to go on after a failed flush (module documentation).
    fn check_usable(&self) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(Error::io(
                "using the metadata store after a failed flush (reopen the database)",
                std::io::Error::other("an earlier metadata flush failed"),
            ));
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<MetaBytes>> {
        self.check_usable()?;
        self.io
            .get(&self.tree, key)
            .map(|v| v.map(MetaBytes))
            .map_err(|e| sled_error("reading metadata", e))
    }

    /// A counter stored as 8 bytes big-endian under `key` (0 while absent); `what` names it in
    /// the error if the record is malformed.
    pub(crate) fn get_counter(&self, key: &[u8], what: &str) -> Result<u64> {
        match self.get(key)? {
            Some(bytes) => <[u8; 8]>::try_from(&bytes[..])
                .map(u64::from_be_bytes)
                .map_err(|_| Error::internal(format!("{what} record is malformed"))),
            None => Ok(0),
        }
    }

    /// Entries with keys in `(start, end)` bounds, in key order.
    pub(crate) fn range(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> impl Iterator<Item = Result<(MetaBytes, MetaBytes)>> + '_ {
        let refused = self.check_usable().err();
        let mut scan = self.tree.range((start, end));
        let mut refused = refused.map(Err);
        std::iter::from_fn(move || {
            if let Some(refused) = refused.take() {
                return Some(refused);
            }
            let entry = self.io.next_entry(&mut scan)?;
            Some(
                entry
                    .map(|(k, v)| (MetaBytes(k), MetaBytes(v)))
                    .map_err(|e| sled_error("scanning metadata", e)),
            )
        })
    }

    /// Entries whose keys start with `prefix`, in key order.
    pub(crate) fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(MetaBytes, MetaBytes)>> + '_ {
        self.range(
            Bound::Included(prefix.to_vec()),
            Bound::Excluded(crate::index::successor(prefix)),
        )
    }

    /// Applies all changes atomically (all or none survive a crash).
    pub(crate) fn apply(&self, ops: Vec<BatchOp>) -> Result<()> {
        self.check_usable()?;
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.io
            .apply(&self.tree, batch)
            .map_err(|e| sled_error("committing metadata", e))
    }

    /// Makes every applied change durable, against power loss too (module documentation).
    pub(crate) fn flush(&self) -> Result<()> {
        self.check_usable()?;
        self.flush_and_sync()
            .inspect_err(|_| self.failed.store(true, Ordering::SeqCst))
    }

    fn flush_and_sync(&self) -> Result<()> {
        self.io
            .flush(&self.db)
            .map_err(|e| sled_error("flushing metadata", e))?;
        let mine = self.flushes.fetch_add(1, Ordering::SeqCst);
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if mine < files.synced_below {
            return Ok(()); // a sync that began after this flush returned has completed
        }
        let covered = self.flushes.load(Ordering::SeqCst);
        files.sync(self.io.as_ref())?;
        files.synced_below = covered;
        Ok(())
    }

    /// How many syncs [`MetaStore::flush`] has performed.
    #[cfg(test)]
    fn syncs(&self) -> u64 {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).syncs
    }
}

impl SyncedFiles {
    fn sync(&mut self, io: &dyn MetaIo) -> Result<()> {
        io.sync_data(&self.log)
            .map_err(|e| Error::io("syncing the metadata log", e))?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.syncs += 1;
                return Ok(());
            }
            Err(e) => return Err(Error::io("listing the metadata blob directory", e)),
        };
        let mut present = HashSet::new();
        let mut synced_new = false;
        for entry in entries {
            let name = entry
                .map_err(|e| Error::io("listing the metadata blob directory", e))?
                .file_name();
            if !self.blobs_synced.contains(&name) {
                match File::open(self.blobs.join(&name)).and_then(|f| io.sync_data(&f)) {
                    Ok(()) => synced_new = true,
                    // Removed by sled meanwhile: nothing left to make durable.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("syncing a metadata blob file", e)),
                }
            }
            present.insert(name);
        }
        if synced_new {
            File::open(&self.blobs)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| Error::io("syncing the metadata blob directory", e))?;
        }
        self.blobs_synced = present;
        self.syncs += 1;
        Ok(())
    }
}

/// Waits (a bounded time) until no earlier instance of this process holds sled's lock on its
/// log. Sled releases it from background threads that may outlive the handle by a moment, so a
/// directory closed and opened again at once would otherwise fail to open. The caller holds the
/// directory's own lock, so the holder can only be such a lingering instance.
fn wait_for_release(path: &Path) -> Result<()> {
    use rustix::fs::{flock, FlockOperation};
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
    let log = match File::open(path.join("db")) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("opening the metadata log", e)),
    };
    let start = std::time::Instant::now();
    loop {
        match flock(&log, FlockOperation::NonBlockingLockExclusive) {
            // Closing `log` releases the probe's own lock.
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK && start.elapsed() < PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // Still held: sled's own open reports it.
            Err(_) => return Ok(()),
        }
    }
}

fn sled_error(context: &str, error: sled::Error) -> Error {
    match error {
        sled::Error::Io(e) => Error::io(context, e),
        sled::Error::Corruption { at, .. } => Error::Corrupt {
            key: "<metadata store>".into(),
            reason: format!("{context}: corruption at {at:?}"),
        },
        other => Error::io(context, std::io::Error::other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_sync_the_log_and_new_blob_files() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path(), 1 << 20).unwrap();
        meta.apply(vec![(b"k".to_vec(), Some(b"v".to_vec()))])
            .unwrap();
        meta.flush().unwrap();
        assert_eq!(meta.syncs(), 1, "a flush is followed by a sync of its own");
        meta.flush().unwrap();
        assert_eq!(meta.syncs(), 2);

        // A value far above sled's log item limit goes to a file under blobs/.
        meta.apply(vec![(b"big".to_vec(), Some(vec![7; 1 << 20]))])
            .unwrap();
        meta.flush().unwrap();
        let files = meta.files.lock().unwrap();
        assert!(
            !files.blobs_synced.is_empty(),
            "the blob file of the large value was synced"
        );
    }

    #[test]
    fn every_concurrent_flush_is_covered_by_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let meta = std::sync::Arc::clone(&meta);
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        meta.apply(vec![(vec![t, i], Some(vec![i]))]).unwrap();
                        meta.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Every flush returned after a sync that began after it; some may have shared one.
        assert_eq!(meta.files.lock().unwrap().synced_below, 400);
        assert!((1..=400).contains(&meta.syncs()));
    }
}

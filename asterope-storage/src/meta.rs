//! The narrow seam over the metadata B+tree (sled 0.34): ordered get, range scan, atomic
//! multi-key batch, durable flush. Nothing else in the crate touches sled, so the engine under
//! the seam can be swapped without touching the rest.

use std::ops::Bound;
use std::path::Path;

use asterope_core::{Error, Result};

/// An ordered key-value store of byte strings.
#[derive(Debug)]
pub(crate) struct MetaStore {
    db: sled::Db,
    tree: sled::Tree,
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

/// One change of an atomic batch: insert (`Some`) or remove (`None`).
pub(crate) type BatchOp = (Vec<u8>, Option<Vec<u8>>);

impl MetaStore {
    pub(crate) fn open(path: &Path, cache_bytes: u64) -> Result<MetaStore> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| sled_error("opening the metadata store", e))?;
        let tree = db
            .open_tree("objects")
            .map_err(|e| sled_error("opening the objects tree", e))?;
        Ok(MetaStore { db, tree })
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<MetaBytes>> {
        self.tree
            .get(key)
            .map(|v| v.map(MetaBytes))
            .map_err(|e| sled_error("reading metadata", e))
    }

    /// Entries with keys in `(start, end)` bounds, in key order.
    pub(crate) fn range(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> impl Iterator<Item = Result<(MetaBytes, MetaBytes)>> + '_ {
        self.tree.range((start, end)).map(|entry| {
            entry
                .map(|(k, v)| (MetaBytes(k), MetaBytes(v)))
                .map_err(|e| sled_error("scanning metadata", e))
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
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| sled_error("committing metadata", e))
    }

    /// Makes every applied change durable.
    pub(crate) fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(drop)
            .map_err(|e| sled_error("flushing metadata", e))
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

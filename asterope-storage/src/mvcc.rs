//! Multi-version concurrency control over the metadata tree: snapshots, reads at a snapshot,
//! and the rule for collecting versions no snapshot can see.
//!
//! Every commit gets the next version from the oracle and writes new versions; it never
//! overwrites one. A snapshot is a version: it sees, per key, the newest version at or below
//! it. Snapshots are registered while in use so that garbage collection (run by each commit on
//! the keys it writes) keeps every version some live snapshot can still see.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use asterope_core::{Error, Key, Metadata, Result};

use crate::keys::{
    after_all_versions, latest_key, split_version_key, version_key, USER_REGION_START,
};
use crate::meta::{MetaBytes, MetaStore};
use crate::record::{Footprint, ObjectRecord, VersionRecord};

#[derive(Debug, Default)]
pub(crate) struct SnapshotState {
    /// Version of the last commit whose versions are all applied.
    pub(crate) visible: u64,
    /// Live snapshots per version.
    live: BTreeMap<u64, usize>,
}

impl SnapshotState {
    /// Live snapshot versions, ascending.
    pub(crate) fn live(&self) -> Vec<u64> {
        self.live.keys().copied().collect()
    }
}

/// The registry of live snapshots and the visible version.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    state: Mutex<SnapshotState>,
}

impl Snapshots {
    pub(crate) fn new(visible: u64) -> Arc<Snapshots> {
        Arc::new(Snapshots {
            state: Mutex::new(SnapshotState {
                visible,
                live: BTreeMap::new(),
            }),
        })
    }

    /// Takes a snapshot of everything committed so far.
    pub(crate) fn take(self: &Arc<Self>) -> Snapshot {
        let mut state = self.lock();
        let version = state.visible;
        *state.live.entry(version).or_insert(0) += 1;
        Snapshot {
            version,
            registry: Arc::clone(self),
        }
    }

    /// Holds the registry: no snapshot can be taken until the guard drops. Commits hold it
    /// while they decide what to collect, apply, and publish their version.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SnapshotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A registered snapshot; unregisters on drop.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Sees, per key, the newest version at or below this one.
    pub(crate) version: u64,
    registry: Arc<Snapshots>,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        if let Some(count) = state.live.get_mut(&self.version) {
            *count -= 1;
            if *count == 0 {
                state.live.remove(&self.version);
            }
        }
    }
}

/// Decodes a version, naming the key on failure.
pub(crate) fn decode_version(key: &[u8], bytes: &[u8]) -> Result<VersionRecord> {
    VersionRecord::decode(bytes).map_err(|e| corrupt_record(key, e))
}

/// [`VersionRecord::decode_fields`] of `key`'s stored version, errors as [`decode_version`]'s.
pub(crate) fn decode_version_fields(
    key: &[u8],
    bytes: &[u8],
    wanted: impl Fn(&[u8]) -> bool + Copy,
) -> Result<Option<Metadata>> {
    VersionRecord::decode_fields(bytes, wanted).map_err(|e| corrupt_record(key, e))
}

/// [`VersionRecord::decode_footprint`] of `key`'s stored version, errors as [`decode_version`]'s.
pub(crate) fn decode_version_footprint(key: &[u8], bytes: &[u8]) -> Result<Option<Footprint>> {
    VersionRecord::decode_footprint(bytes).map_err(|e| corrupt_record(key, e))
}

/// A record that does not decode is corrupt, unless it is of a format this build cannot read.
fn corrupt_record(key: &[u8], error: Error) -> Error {
    match error {
        Error::UnsupportedFormat { .. } => error,
        other => Error::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: other.to_string(),
        },
    }
}

/// The object as of snapshot version `snapshot`, if it existed then.
///
/// Usually the newest version is the one the snapshot sees: then the read is one point lookup,
/// of the key's newest-version entry, which carries the version and a copy of its
/// record. Only a snapshot older than the newest version seeks through the versions.
pub(crate) fn read_at(meta: &MetaStore, key: &Key, snapshot: u64) -> Result<Option<ObjectRecord>> {
    let Some(latest) = meta.get(&latest_key(key.as_bytes()))? else {
        return Ok(None);
    };
    let (version, record) = latest
        .split_first_chunk::<8>()
        .ok_or_else(|| Error::internal("malformed newest-version entry"))?;
    if u64::from_be_bytes(*version) <= snapshot {
        return Ok(decode_version(key.as_bytes(), record)?.into_object());
    }
    seek_at(meta, key, snapshot)
}

/// The commit version of a key's newest version (a tombstone's included), if it has any.
pub(crate) fn newest_version(meta: &MetaStore, key: &Key) -> Result<Option<u64>> {
    let Some(latest) = meta.get(&latest_key(key.as_bytes()))? else {
        return Ok(None);
    };
    let (version, _) = latest
        .split_first_chunk::<8>()
        .ok_or_else(|| Error::internal("malformed newest-version entry"))?;
    Ok(Some(u64::from_be_bytes(*version)))
}

/// The newest-version entry of a key: the version, then its encoded record.
pub(crate) fn latest_value(version: u64, encoded: &[u8]) -> Vec<u8> {
    [&version.to_be_bytes()[..], encoded].concat()
}

/// [`read_at`] by seeking: the first version at or below `snapshot`.
fn seek_at(meta: &MetaStore, key: &Key, snapshot: u64) -> Result<Option<ObjectRecord>> {
    let start = Bound::Included(version_key(key.as_bytes(), snapshot));
    let end = Bound::Included(version_key(key.as_bytes(), 0));
    match meta.range(start, end).next() {
        Some(entry) => {
            let (_, value) = entry?;
            Ok(decode_version(key.as_bytes(), &value)?.into_object())
        }
        None => Ok(None),
    }
}

/// Every stored version of a key, newest first.
pub(crate) fn versions_of(meta: &MetaStore, key: &Key) -> Result<Vec<(u64, VersionRecord)>> {
    // A key without a newest-version pointer has no versions: skip the seek.
    if meta.get(&latest_key(key.as_bytes()))?.is_none() {
        return Ok(Vec::new());
    }
    let start = Bound::Included(version_key(key.as_bytes(), u64::MAX));
    let end = Bound::Included(version_key(key.as_bytes(), 0));
    meta.range(start, end)
        .map(|entry| {
            let (tree_key, value) = entry?;
            let (_, version) = split_version_key(&tree_key)
                .ok_or_else(|| Error::internal("malformed version key"))?;
            Ok((version, decode_version(key.as_bytes(), &value)?))
        })
        .collect()
}

/// Objects visible at snapshot version `snapshot`, in key order, from `start` (a user-key bound):
/// each visible version's commit version and encoded record, tombstones skipped. Decoding is left
/// to the caller, who may need only part of the record.
pub(crate) fn scan_at<'a>(
    meta: &'a MetaStore,
    start: Bound<&[u8]>,
    snapshot: u64,
) -> impl Iterator<Item = Result<(Key, u64, MetaBytes)>> + 'a {
    let start = match start {
        Bound::Included(key) => key.to_vec(),
        Bound::Excluded(key) => after_all_versions(key),
        Bound::Unbounded => USER_REGION_START.to_vec(),
    };
    // Below the user region lie the store's own records, which no user key (nor a bound
    // starting with NUL, such as a prefix or cursor of "\0") may reach.
    let start = Bound::Included(start.max(USER_REGION_START.to_vec()));
    let mut entries = meta.range(start, Bound::Unbounded);
    let mut settled: Option<Vec<u8>> = None;
    std::iter::from_fn(move || loop {
        let (tree_key, value) = match entries.next()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        let Some((key, version)) = split_version_key(&tree_key) else {
            return Some(Err(Error::internal("malformed version key")));
        };
        if settled.as_deref() == Some(key) || version > snapshot {
            continue;
        }
        let settled_key = settled.get_or_insert_with(Vec::new);
        settled_key.clear();
        settled_key.extend_from_slice(key);
        if !VersionRecord::is_tombstone(&value) {
            return Some(Key::from_bytes(key).map(|key| (key, version, value)));
        }
    })
}

/// Which stored versions a commit may remove, given the versions of a key newest first
/// (the version being committed included, at index 0) and the live snapshots (ascending).
///
/// Version `i` is needed iff some live snapshot `s` has `versions[i] <= s < versions[i-1]`; the
/// newest is always needed. Returns the indices of the versions to remove.
pub(crate) fn collectable(versions: &[u64], live: &[u64]) -> Vec<usize> {
    versions
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| match *pair {
            [high, low] => !live.iter().any(|&s| *low <= s && s < *high),
            _ => false,
        })
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_only_versions_no_snapshot_sees() {
        // Versions at 10 (new), 7, 4, 2.
        let versions = [10, 7, 4, 2];
        assert_eq!(collectable(&versions, &[]), vec![1, 2, 3]);
        assert_eq!(collectable(&versions, &[8]), vec![2, 3]);
        assert_eq!(collectable(&versions, &[5]), vec![1, 3]);
        assert_eq!(collectable(&versions, &[1, 4, 9]), vec![3]);
        assert_eq!(collectable(&[3], &[1]), Vec::<usize>::new());
    }
}

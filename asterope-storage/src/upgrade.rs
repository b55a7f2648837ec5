//! Upgrading a data directory written with version records of format 2, where each version
//! carried its blob's runs, to format 3, where versions name a blob of the blob table.
//!
//! Runs on open, before recovery, in one metadata batch: every format-2 version (and newest-
//! version entry) is rewritten to name a blob; versions that shared runs (a metadata update kept
//! the bytes) share the blob. The new blob entries get their block checksums computed from the
//! stored bytes, a one-time read of every blob. Reference counts are left to recovery, which
//! recounts them. A crash before the batch is applied leaves the directory as it was; the next
//! open upgrades it again.

use std::collections::HashMap;
use std::ops::Bound;

use asterope_core::{Metadata, Result, Sha256Digest, Timestamp};
use asterope_serialization::decode_versioned;
use serde::{Deserialize, Serialize};

use crate::alloc::Run;
use crate::blob::{BlobEntry, BlobId, BlobLayout, BlockChecksummer};
use crate::keys::{blob_key, content_key, FORMAT_KEY, LATEST_PREFIX, USER_REGION_START};
use crate::meta::{BatchOp, MetaStore};
use crate::record::{ObjectRecord, VersionRecord, RECORD_FORMAT};
use crate::space::Space;

/// The format byte of version records that carry their runs.
pub(crate) const FORMAT_WITH_RUNS: u8 = 2;

/// A version record of format 2, as it was written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum VersionWithRuns {
    Object(ObjectWithRuns),
    Tombstone,
}

/// An object record of format 2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ObjectWithRuns {
    pub(crate) version: u64,
    pub(crate) size: u64,
    pub(crate) sha256: Sha256Digest,
    pub(crate) created: Timestamp,
    pub(crate) updated: Timestamp,
    pub(crate) metadata: Metadata,
    pub(crate) runs: Vec<Run>,
}

/// Rewrites every format-2 version as format 3; returns how many it rewrote. Once a store is
/// known to hold format 3 only, [`FORMAT_KEY`] says so and later opens skip the scan.
pub(crate) fn upgrade_format2(meta: &MetaStore, space: &Space) -> Result<usize> {
    let recorded = meta.get(FORMAT_KEY)?;
    if recorded.as_deref() == Some(&[RECORD_FORMAT][..]) {
        return Ok(0);
    }
    let marker = (FORMAT_KEY.to_vec(), Some(vec![RECORD_FORMAT]));
    let mut upgrade = Upgrade {
        space,
        blobs: HashMap::new(),
        ops: Vec::new(),
    };
    for entry in meta.range(
        Bound::Included(USER_REGION_START.to_vec()),
        Bound::Unbounded,
    ) {
        let (tree_key, value) = entry?;
        if value.first() == Some(&FORMAT_WITH_RUNS) {
            let record = upgrade.convert(&value)?;
            upgrade.ops.push((tree_key.to_vec(), Some(record)));
        }
    }
    for entry in meta.scan_prefix(LATEST_PREFIX) {
        let (tree_key, value) = entry?;
        let Some((version, record)) = value.split_first_chunk::<8>() else {
            continue;
        };
        if record.first() == Some(&FORMAT_WITH_RUNS) {
            let record = upgrade.convert(record)?;
            let latest = crate::mvcc::latest_value(u64::from_be_bytes(*version), &record);
            upgrade.ops.push((tree_key.to_vec(), Some(latest)));
        }
    }
    let rewritten = upgrade.ops.len();
    if rewritten == 0 {
        meta.apply(vec![marker])?;
        meta.flush()?;
        return Ok(0);
    }
    let Upgrade { blobs, mut ops, .. } = upgrade;
    let mut contents = HashMap::new();
    for (id, entry) in blobs.into_values() {
        if contents.insert((entry.sha256, entry.size), id).is_none()
            && meta.get(&content_key(&entry.sha256, entry.size))?.is_none()
        {
            ops.push((content_key(&entry.sha256, entry.size), Some(id.0.to_vec())));
        }
        ops.push((blob_key(&id), Some(entry.encode()?)));
    }
    ops.push(marker);
    meta.apply(ops)?;
    meta.flush()?;
    tracing::info!("upgraded {rewritten} version records from format 2 to format 3");
    Ok(rewritten)
}

struct Upgrade<'a> {
    space: &'a Space,
    /// One blob per distinct run list.
    blobs: HashMap<Vec<Run>, (BlobId, BlobEntry)>,
    ops: Vec<BatchOp>,
}

impl Upgrade<'_> {
    /// The format-3 encoding of a format-2 record.
    fn convert(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let old: VersionWithRuns = decode_versioned(FORMAT_WITH_RUNS, bytes, "object record")?;
        let record = match old {
            VersionWithRuns::Tombstone => VersionRecord::Tombstone,
            VersionWithRuns::Object(old) => {
                let blob = if old.runs.is_empty() {
                    None
                } else {
                    Some(self.blob_of(&old)?)
                };
                VersionRecord::Object(ObjectRecord {
                    version: old.version,
                    size: old.size,
                    sha256: old.sha256,
                    created: old.created,
                    updated: old.updated,
                    metadata: old.metadata,
                    blob,
                })
            }
        };
        record.encode()
    }

    fn blob_of(&mut self, old: &ObjectWithRuns) -> Result<BlobId> {
        if let Some((id, _)) = self.blobs.get(&old.runs) {
            return Ok(*id);
        }
        let entry = BlobEntry {
            size: old.size,
            sha256: old.sha256,
            layout: BlobLayout {
                runs: old.runs.clone(),
                block_crcs: self.checksums(&old.runs)?,
            },
            refs: 0,
        };
        let id = BlobId::random();
        self.blobs.insert(old.runs.clone(), (id, entry));
        Ok(id)
    }

    /// Block checksums of the bytes stored in `runs`.
    fn checksums(&self, runs: &[Run]) -> Result<Vec<u32>> {
        let mut summer = BlockChecksummer::default();
        for run in runs {
            // One run at a time, in checksum-block pieces, with positioned reads.
            let mut at = 0u64;
            while at < run.len {
                let piece = (run.len - at).min(crate::blob::CHECKSUM_BLOCK);
                let bytes = crate::reader::read_runs(
                    self.space,
                    std::slice::from_ref(run),
                    at..at + piece,
                )?;
                summer.update(&bytes);
                at += piece;
            }
        }
        Ok(summer.finish())
    }
}

/// Rewrites a closed data directory's versions back to format 2 (runs inside the versions, no
/// blob table), as the previous release wrote them: for the upgrade tests only.
#[cfg(feature = "test-support")]
pub fn downgrade_to_format2(dir: &std::path::Path) -> Result<()> {
    use crate::keys::{BLOB_PREFIX, CONTENT_PREFIX, GENERATION_ENTRY_PREFIX, INDEX_ENTRY_PREFIX};
    use asterope_serialization::encode_versioned;

    let meta = MetaStore::open(&dir.join("meta"), 16 << 20)?;
    let old_form = |bytes: &[u8]| -> Result<Vec<u8>> {
        let old = match VersionRecord::decode(bytes)? {
            VersionRecord::Tombstone => VersionWithRuns::Tombstone,
            VersionRecord::Object(record) => {
                let runs = match record.blob {
                    None => Vec::new(),
                    Some(id) => {
                        let entry = meta
                            .get(&blob_key(&id))?
                            .ok_or_else(|| asterope_core::Error::internal("blob entry missing"))?;
                        BlobEntry::decode(&entry)?.layout.runs
                    }
                };
                VersionWithRuns::Object(ObjectWithRuns {
                    version: record.version,
                    size: record.size,
                    sha256: record.sha256,
                    created: record.created,
                    updated: record.updated,
                    metadata: record.metadata,
                    runs,
                })
            }
        };
        encode_versioned(FORMAT_WITH_RUNS, &old)
    };
    let mut ops: Vec<BatchOp> = Vec::new();
    for entry in meta.range(
        Bound::Included(USER_REGION_START.to_vec()),
        Bound::Unbounded,
    ) {
        let (tree_key, value) = entry?;
        ops.push((tree_key.to_vec(), Some(old_form(&value)?)));
    }
    for entry in meta.scan_prefix(LATEST_PREFIX) {
        let (tree_key, value) = entry?;
        let (version, record) = value
            .split_first_chunk::<8>()
            .ok_or_else(|| asterope_core::Error::internal("malformed newest-version entry"))?;
        let old = old_form(record)?;
        let latest = crate::mvcc::latest_value(u64::from_be_bytes(*version), &old);
        ops.push((tree_key.to_vec(), Some(latest)));
    }
    // Index entries had no value then.
    for region in [INDEX_ENTRY_PREFIX, GENERATION_ENTRY_PREFIX] {
        for entry in meta.scan_prefix(region) {
            ops.push((entry?.0.to_vec(), Some(Vec::new())));
        }
    }
    for prefix in [BLOB_PREFIX, CONTENT_PREFIX] {
        for entry in meta.scan_prefix(prefix) {
            ops.push((entry?.0.to_vec(), None));
        }
    }
    // That release kept no format marker.
    ops.push((FORMAT_KEY.to_vec(), None));
    meta.apply(ops)?;
    meta.flush()
}

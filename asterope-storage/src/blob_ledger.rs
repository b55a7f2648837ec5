//! The blob reference ledger of one commit: which blob each put stores (a new one, a stored
//! twin of the same content, or a repaired twin), how each blob's reference count changes, and
//! which space the commit keeps or frees.
//!
//! Invariants kept here:
//! - A blob entry's `refs` is the number of stored versions naming it: every version a commit
//!   writes or collects changes it by one, in the same metadata batch.
//! - A blob whose count reaches zero goes with its content-table entry (if that entry still
//!   names it), and its runs are retired, never freed before the commit is durable.
//! - A new blob's runs are kept by its reservation only once the batch naming them is applied
//!   ([`LedgerOutcome::kept`]); a fresh copy of content already stored is retired instead.

use std::collections::{BTreeMap, HashMap, HashSet};

use asterope_core::{Error, Result, Sha256Digest};

use crate::alloc::Run;
use crate::blob::{BlobEntry, BlobId, BlobLayout};
use crate::integrity::Twin;
use crate::keys::{blob_key, content_key};
use crate::meta::{BatchOp, MetaStore};
use crate::space::Reservation;

/// The blob-table side of one commit: new blobs, reference count changes, and what they free.
pub(crate) struct BlobLedger<'a> {
    meta: &'a MetaStore,
    dedup: bool,
    /// Entries touched by the commit (loaded or new), with their reference count change.
    touched: BTreeMap<BlobId, (BlobEntry, i64)>,
    /// Blobs whose runs this commit replaces (repairs): their entries are written whatever
    /// their reference count change.
    relaid: HashSet<BlobId>,
    /// Blobs created by this commit, by content, so a commit can share within itself.
    created: HashMap<(Sha256Digest, u64), BlobId>,
    /// Reservations whose runs the new blobs keep.
    kept: Vec<Reservation>,
    /// Fresh copies of content that was already stored: retired once the commit is durable
    /// (freed at once if it fails).
    duplicates: Vec<Reservation>,
    /// Runs no blob will reference after the commit (damaged runs of repaired blobs too):
    /// retired once it is durable.
    retired: Vec<Vec<Run>>,
}

/// What [`BlobLedger::finish`] hands to the commit.
pub(crate) struct LedgerOutcome {
    /// The blob-table and content-table changes, for the commit's batch.
    pub(crate) ops: Vec<BatchOp>,
    /// Reservations whose runs the committed blob entries name: kept once the batch is applied.
    pub(crate) kept: Vec<Reservation>,
    /// Fresh copies of content that was already stored: retired once the batch is applied.
    pub(crate) duplicates: Vec<Reservation>,
    /// Runs no blob names after the commit: retired once it is durable.
    pub(crate) retired: Vec<Vec<Run>>,
}

impl<'a> BlobLedger<'a> {
    pub(crate) fn new(meta: &'a MetaStore, dedup: bool) -> Self {
        BlobLedger {
            meta,
            dedup,
            touched: BTreeMap::new(),
            relaid: HashSet::new(),
            created: HashMap::new(),
            kept: Vec::new(),
            duplicates: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// The blob a put stores: an existing one with the same content, checked intact before
    /// the commit (its freshly written copy is then retired), or a new one over the put's
    /// reservation. An existing one found damaged is repaired: it keeps its id (and every key
    /// naming it) but takes the fresh copy's runs, and its own are retired.
    pub(crate) fn put(
        &mut self,
        reservation: Reservation,
        size: u64,
        sha256: Sha256Digest,
        block_crcs: Vec<u32>,
        twin: Option<Twin>,
    ) -> Result<Option<BlobId>> {
        if size == 0 {
            return Ok(None);
        }
        if let Some(&existing) = self.created.get(&(sha256, size)) {
            self.duplicates.push(reservation);
            self.add_ref(Some(existing), 1)?;
            return Ok(Some(existing));
        }
        let checked =
            twin.filter(|twin| Some(twin.id) == self.content_owner(sha256, size).ok().flatten());
        match checked {
            Some(Twin { id, damaged: false }) if self.load(id)?.is_some() => {
                self.duplicates.push(reservation);
                self.add_ref(Some(id), 1)?;
                return Ok(Some(id));
            }
            Some(Twin { id, damaged: true }) => {
                if let Some((entry, change)) = self.load(id)? {
                    let layout = BlobLayout {
                        runs: reservation.runs().to_vec(),
                        block_crcs,
                    };
                    let damaged = std::mem::replace(&mut entry.layout, layout);
                    *change += 1;
                    self.relaid.insert(id);
                    self.retired.push(damaged.runs);
                    self.kept.push(reservation);
                    return Ok(Some(id));
                }
            }
            _ => {}
        }
        let id = BlobId::random();
        let entry = BlobEntry {
            size,
            sha256,
            layout: BlobLayout {
                runs: reservation.runs().to_vec(),
                block_crcs,
            },
            refs: 0,
        };
        self.kept.push(reservation);
        self.touched.insert(id, (entry, 1));
        self.created.insert((sha256, size), id);
        Ok(Some(id))
    }

    /// The stored blob the content table names for this content, if deduplication is on.
    fn content_owner(&self, sha256: Sha256Digest, size: u64) -> Result<Option<BlobId>> {
        if !self.dedup {
            return Ok(None);
        }
        crate::integrity::content_owner(self.meta, sha256, size)
    }

    fn load(&mut self, id: BlobId) -> Result<Option<&mut (BlobEntry, i64)>> {
        if !self.touched.contains_key(&id) {
            let Some(bytes) = self.meta.get(&blob_key(&id))? else {
                return Ok(None);
            };
            self.touched.insert(id, (BlobEntry::decode(&bytes)?, 0));
        }
        Ok(self.touched.get_mut(&id))
    }

    /// Counts one more (or one fewer) stored version naming `blob`.
    pub(crate) fn add_ref(&mut self, blob: Option<BlobId>, delta: i64) -> Result<()> {
        let Some(id) = blob else {
            return Ok(());
        };
        match self.load(id)? {
            Some((_, change)) => {
                *change += delta;
                Ok(())
            }
            None => Err(Error::internal(format!(
                "blob {} is referenced but missing",
                id.to_hex()
            ))),
        }
    }

    pub(crate) fn finish(mut self) -> Result<LedgerOutcome> {
        let mut ops = Vec::new();
        for (id, (mut entry, change)) in std::mem::take(&mut self.touched) {
            if change == 0 && !self.relaid.contains(&id) {
                continue;
            }
            let refs = i64::try_from(entry.refs).unwrap_or(i64::MAX) + change;
            let content = content_key(&entry.sha256, entry.size);
            if refs > 0 {
                let created = entry.refs == 0;
                entry.refs = refs.unsigned_abs();
                ops.push((blob_key(&id), Some(entry.encode()?)));
                if created && self.dedup {
                    ops.push((content, Some(id.0.to_vec())));
                }
                continue;
            }
            ops.push((blob_key(&id), None));
            if self.meta.get(&content)?.as_deref() == Some(&id.0[..]) {
                ops.push((content, None));
            }
            self.retired.push(entry.layout.runs);
        }
        Ok(LedgerOutcome {
            ops,
            kept: self.kept,
            duplicates: self.duplicates,
            retired: self.retired,
        })
    }
}

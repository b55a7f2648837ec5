//! The embedded database: opening and recovering a data directory, committing versions, and
//! the [`Store`] operations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use asterope_core::{
    ByteStream, CompactionReport, Condition, Error, Filter, GetOptions, GetResult, IndexInfo, Key,
    ListOptions, ListPage, Metadata, ObjectInfo, ObjectOps, PutOptions, Query, QueryPage,
    QueryPlan, Result, Sha256Digest, Store, StoreStats, Timestamp, Transaction,
};
use asterope_serialization::{encode, validate_metadata};

use crate::alloc::Run;
use crate::blob::{BlobEntry, BlobId, BlobLayout};
use crate::extent::ExtentSet;
use crate::index::{entry_value, Index};
use crate::integrity::{find_twin, Twin};
use crate::keys::{
    blob_id_of, blob_key, content_key, index_def_key, index_entry_key, latest_key,
    split_version_key, version_key, BLOB_PREFIX, CONTENT_PREFIX, ORACLE_KEY, USER_REGION_START,
};
use crate::lock::DirLock;
use crate::meta::{BatchOp, MetaStore};
use crate::mvcc::{
    collectable, decode_version, decode_version_footprint, latest_value, read_at, versions_of,
    Snapshot, Snapshots,
};
use crate::posting::PostingEdits;
use crate::query::{Overlay, Page, QueryContext};
use crate::reader::BlobReader;
use crate::record::{ObjectRecord, VersionRecord};
use crate::space::{Reservation, Space};
use crate::txn::DbTransaction;
use crate::writer::write_blob;

/// Default maximum size of an extent file (files start at 1 MiB and grow with what is written).
pub const DEFAULT_EXTENT_SIZE: u64 = 1 << 30;
/// Default metadata cache budget.
const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Configures and opens a [`Database`].
#[derive(Debug, Clone)]
pub struct DatabaseBuilder {
    dir: PathBuf,
    extent_size: u64,
    capacity_limit: Option<u64>,
    cache_bytes: u64,
    dedup: bool,
    compaction: Option<CompactionSchedule>,
}

/// When and how much background compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionSchedule {
    /// Time between passes.
    pub interval: Duration,
    /// Live bytes one pass may move at most (deleting empty extents and punching holes in free
    /// ranges cost no copying and are not limited).
    pub budget_bytes: u64,
}

impl Default for CompactionSchedule {
    fn default() -> Self {
        CompactionSchedule {
            interval: Duration::from_secs(60),
            budget_bytes: 256 << 20,
        }
    }
}

impl DatabaseBuilder {
    /// Content deduplication (on by default): a put whose SHA-256 and size match a stored blob
    /// shares that blob instead of keeping a second copy.
    pub fn dedup(mut self, on: bool) -> Self {
        self.dedup = on;
        self
    }

    /// Background compaction (default: a pass every minute moving at most 256 MiB); `None`
    /// turns it off, leaving [`Store::compact`] to run it on demand.
    pub fn background_compaction(mut self, schedule: Option<CompactionSchedule>) -> Self {
        self.compaction = schedule;
        self
    }

    /// Maximum size of extent files: they are created small and grow with what is written, in
    /// steps of at most 16 MiB, up to this size (files already longer keep their length).
    /// Default 1 GiB.
    pub fn extent_size(mut self, bytes: u64) -> Self {
        self.extent_size = bytes;
        self
    }

    /// Caps the total size of extent files; writes beyond it fail with
    /// [`Error::StorageFull`]. Default: limited only by the disk.
    pub fn capacity_limit(mut self, bytes: Option<u64>) -> Self {
        self.capacity_limit = bytes;
        self
    }

    /// Memory budget of the metadata tree's page cache. Default 64 MiB.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Opens (creating if needed) and recovers the data directory: keeps the newest version of
    /// every key (no snapshot survives a restart), drops tombstones and their index entries,
    /// and rebuilds the free-space map from what remains, which also reclaims the space of
    /// writes that never committed.
    pub fn open(self) -> Result<Database> {
        let dir = self.dir;
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let lock = DirLock::acquire(&dir)?;
        let extents = ExtentSet::open(dir.join("extents"), self.extent_size)?;
        let meta = MetaStore::open(&dir.join("meta"), self.cache_bytes)?;
        // The entries of `extents/` and `meta/` themselves, in case this open created them.
        crate::extent::sync_dir(&dir)?;
        let space = Arc::new(Space::new(
            lock,
            extents,
            self.extent_size,
            self.capacity_limit,
        )?);
        crate::upgrade::upgrade_format2(&meta, &space)?;
        let mut last_version = meta.get_counter(ORACLE_KEY, "version oracle")?;
        let (indexes, mut garbage) = crate::index_build::load_definitions(&meta)?;

        let mut refs: HashMap<BlobId, u64> = HashMap::new();
        let mut current: Option<Vec<u8>> = None;
        for entry in meta.range(
            Bound::Included(USER_REGION_START.to_vec()),
            Bound::Unbounded,
        ) {
            let (tree_key, value) = entry?;
            let (key, ts) = split_version_key(&tree_key)
                .ok_or_else(|| Error::internal("malformed version key"))?;
            last_version = last_version.max(ts);
            let newest = current.as_deref() != Some(key);
            if newest {
                let current_key = current.get_or_insert_with(Vec::new);
                current_key.clear();
                current_key.extend_from_slice(key);
            }
            // The newest version of a live key only counts its blob: no need to decode it all.
            if newest {
                if let Some(footprint) = decode_version_footprint(key, &value)? {
                    if let Some(blob) = footprint.blob {
                        *refs.entry(blob).or_insert(0) += 1;
                    }
                    continue;
                }
            }
            // Older versions, and a newest version that is a tombstone (the key goes entirely),
            // are garbage once no snapshot survives: they go with their index entries.
            if newest {
                garbage.push((latest_key(key), None));
            }
            garbage.push((tree_key.to_vec(), None));
            if let Some(record) = decode_version(key, &value)?.into_object() {
                for index in indexes.values() {
                    let entries = index.entries(key, ts, &record.metadata);
                    garbage.extend(entries.into_iter().map(|k| (k, None)));
                }
            }
        }
        // Recount every blob's references from the versions that survive, drop the blobs none
        // names, and mark the space of the others used: everything else is free.
        let mut surviving = HashSet::new();
        for entry in meta.scan_prefix(BLOB_PREFIX) {
            let (tree_key, value) = entry?;
            let id = blob_id_of(&tree_key).ok_or_else(|| Error::internal("malformed blob key"))?;
            let mut blob = BlobEntry::decode(&value)?;
            match refs.get(&id).copied().unwrap_or(0) {
                0 => garbage.push((tree_key.to_vec(), None)),
                count => {
                    if blob.refs != count {
                        blob.refs = count;
                        garbage.push((tree_key.to_vec(), Some(blob.encode()?)));
                    }
                    space
                        .mark_used(&blob.layout.runs)
                        .map_err(|reason| Error::Corrupt {
                            key: format!("blob {}", hex_id(&id)),
                            reason,
                        })?;
                    surviving.insert(id);
                }
            }
        }
        for entry in meta.scan_prefix(CONTENT_PREFIX) {
            let (tree_key, value) = entry?;
            let names_survivor =
                <[u8; 16]>::try_from(&value[..]).is_ok_and(|id| surviving.contains(&BlobId(id)));
            if !names_survivor {
                garbage.push((tree_key.to_vec(), None));
            }
        }
        if !garbage.is_empty() {
            meta.apply(garbage)?;
            meta.flush()?;
        }
        let db = Database {
            inner: Arc::new(Inner {
                dir,
                meta,
                space,
                last_version: Mutex::new(last_version),
                snapshots: Snapshots::new(last_version),
                indexes: RwLock::new(indexes),
                dedup: self.dedup,
                compaction_lock: Mutex::new(()),
            }),
        };
        db.inner.resume_index_builds();
        if let Some(schedule) = self.compaction {
            // Like index builds, background compaction is never a condition of opening:
            // without it, `Store::compact` still reclaims space on demand.
            if let Err(e) = crate::compact::start_background(&db.inner, schedule) {
                tracing::error!("background compaction is off: {e}");
            }
        }
        Ok(db)
    }
}

/// Space accounting of a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceStats {
    /// Extent files.
    pub extents: usize,
    /// Total size of the extent files.
    pub extent_bytes: u64,
    /// Bytes of the extents free for new blobs.
    pub free_bytes: u64,
    /// Bytes of deleted or overwritten blobs still held by running readers.
    pub pending_reclaim_bytes: u64,
}

/// An embedded Asterope database over one data directory. Cheap to clone; clones share it.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    pub(crate) meta: MetaStore,
    pub(crate) space: Arc<Space>,
    /// The last commit version handed out; holding it serialises commits.
    pub(crate) last_version: Mutex<u64>,
    pub(crate) snapshots: Arc<Snapshots>,
    indexes: RwLock<BTreeMap<String, Index>>,
    /// Whether puts share stored blobs of the same content.
    pub(crate) dedup: bool,
    /// One compaction pass at a time.
    pub(crate) compaction_lock: Mutex<()>,
}

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

impl Database {
    /// The metadata tree, for tests that look under the engine.
    #[cfg(test)]
    pub(crate) fn meta_store(&self) -> &MetaStore {
        &self.inner.meta
    }

    /// Opens `dir` with default settings. See [`Database::builder`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Database> {
        Database::builder(dir).open()
    }

    /// Starts configuring a database at `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> DatabaseBuilder {
        DatabaseBuilder {
            dir: dir.as_ref().to_path_buf(),
            extent_size: DEFAULT_EXTENT_SIZE,
            capacity_limit: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
            dedup: true,
            compaction: Some(CompactionSchedule::default()),
        }
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Space accounting.
    pub fn space_stats(&self) -> SpaceStats {
        let counters = self.inner.space.counters();
        SpaceStats {
            extents: counters.extents,
            extent_bytes: counters.total_bytes,
            free_bytes: counters.free_bytes,
            pending_reclaim_bytes: counters.pending_bytes,
        }
    }

    /// Commits intents on a blocking thread. `start` is the snapshot of a transaction, whose
    /// writes conflict with any newer committed version of the same keys.
    pub(crate) async fn commit(
        &self,
        start: Option<u64>,
        intents: BTreeMap<Key, Intent>,
    ) -> Result<(u64, Vec<ObjectInfo>)> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.commit(start, intents))
            .await
            .map_err(|e| Error::internal(format!("commit task failed: {e}")))?
    }

    async fn commit_one(&self, key: &Key, intent: Intent) -> Result<ObjectInfo> {
        let mut intents = BTreeMap::new();
        intents.insert(key.clone(), intent);
        let (_, mut infos) = self.commit(None, intents).await?;
        infos.pop().ok_or_else(|| Error::NotFound {
            key: key.to_string(),
        })
    }

    /// Streams an object. `layout` is where its bytes are: `None` looks the record's blob up
    /// (a staged put passes its own). The read pin is taken before the lookup, so a blob moved
    /// by compaction meanwhile keeps its old bytes until this reader is done.
    pub(crate) fn get_at(
        &self,
        key: &Key,
        record: Option<ObjectRecord>,
        layout: Option<BlobLayout>,
        options: GetOptions,
    ) -> Result<GetResult> {
        let record = record.ok_or_else(|| Error::NotFound {
            key: key.to_string(),
        })?;
        let range = match options.range {
            Some(range) => range.resolve(record.size)?,
            None => 0..record.size,
        };
        let pin = self.inner.space.pin();
        let layout = match layout {
            Some(layout) => layout,
            None => self.inner.blob_layout(key, &record)?,
        };
        let info = record.info(key.clone());
        let reader = BlobReader {
            space: Arc::clone(&self.inner.space),
            pin,
            layout,
            size: record.size,
        };
        // Bytes known to be gone (an extent file truncated under the store) fail the read
        // before anything is sent, rather than midway through the stream.
        reader.check_present(range.clone())?;
        let body = reader.stream(range.clone(), options.verify.then(|| key.clone()));
        Ok(GetResult { info, range, body })
    }

    /// Runs `f` with a query context at `snapshot`.
    pub(crate) fn with_query<T>(
        &self,
        ts: u64,
        overlay: Option<&Overlay>,
        f: impl FnOnce(&QueryContext<'_>) -> Result<T>,
    ) -> Result<T> {
        let indexes = self.inner.indexes();
        let context = QueryContext {
            meta: &self.inner.meta,
            indexes: &indexes,
            ts,
            overlay,
        };
        f(&context)
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.inner.snapshots.take()
    }

    pub(crate) fn read_at(&self, key: &Key, ts: u64) -> Result<Option<ObjectRecord>> {
        read_at(&self.inner.meta, key, ts)
    }

    /// Writes a blob for a put, checking size and digest.
    pub(crate) async fn write_put(&self, body: ByteStream, options: &PutOptions) -> Result<Write> {
        validate_metadata(&options.metadata)?;
        let written = write_blob(Arc::clone(&self.inner.space), body, options.size).await?;
        let late = options
            .sha256_after_body
            .as_ref()
            .and_then(|slot| slot.get());
        for expected in options.sha256.iter().chain(late) {
            if *expected != written.sha256 {
                return Err(Error::ChecksumMismatch {
                    expected: expected.to_hex(),
                    actual: written.sha256.to_hex(),
                });
            }
        }
        // Checked now, outside the commit lock: reading the twin back may take a while.
        let inner = Arc::clone(&self.inner);
        let (sha256, size, block_crcs) = (written.sha256, written.size, written.block_crcs);
        let (twin, block_crcs) = tokio::task::spawn_blocking(move || {
            find_twin(&inner, sha256, size, &block_crcs).map(|twin| (twin, block_crcs))
        })
        .await
        .map_err(|e| Error::internal(format!("deduplication check failed: {e}")))??;
        Ok(Write::Put {
            reservation: written.reservation,
            size,
            sha256,
            block_crcs,
            metadata: options.metadata.clone(),
            twin,
        })
    }
}

/// A page of a listing: its only argument a query could refuse is the cursor, which is a list
/// argument (`invalid_argument`), not a query.
pub(crate) fn list_page(q: &QueryContext<'_>, query: &Query) -> Result<Page> {
    q.page(query).map_err(|e| match e {
        Error::InvalidQuery { reason } => Error::InvalidArgument { reason },
        other => other,
    })
}

pub(crate) fn list_query(options: &ListOptions) -> Result<Query> {
    let limit = options.effective_limit()?;
    Ok(Query {
        filter: Filter::True,
        key_prefix: Some(options.prefix.clone()),
        sort: None,
        limit: Some(limit),
        cursor: options.cursor.clone(),
    })
}

impl Inner {
    pub(crate) fn indexes(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Index>> {
        self.indexes.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn indexes_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Index>> {
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
                reason: format!("its blob {} is missing", hex_id(&id)),
            }),
        }
    }

    /// Applies intents atomically and durably under one commit version.
    fn commit(
        &self,
        start: Option<u64>,
        intents: BTreeMap<Key, Intent>,
    ) -> Result<(u64, Vec<ObjectInfo>)> {
        let mut last_version = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
        let version = *last_version + 1;
        let now = Timestamp::now();
        let indexes = self.indexes();
        let mut blobs = BlobChanges::new(&self.meta, self.dedup);
        // Validate everything first: a refused intent refuses the whole commit.
        let mut planned = Vec::with_capacity(intents.len());
        for (key, intent) in intents {
            let versions = versions_of(&self.meta, &key)?;
            if let (Some(start), Some((newest, _))) = (start, versions.first()) {
                if *newest > start {
                    return Err(Error::Conflict {
                        key: key.to_string(),
                    });
                }
            }
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
                    let blob = blobs.put(reservation, size, sha256, block_crcs, twin)?;
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
                    blobs.add_ref(current.blob, 1)?;
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
            planned.push((key, versions, new));
        }

        // Per key: its version, its newest-version entry and a few index entries, usually.
        let mut ops: Vec<BatchOp> = Vec::with_capacity(1 + planned.len() * 6);
        ops.push((ORACLE_KEY.to_vec(), Some(version.to_be_bytes().to_vec())));
        let mut infos = Vec::with_capacity(planned.len());
        let mut snapshots = self.snapshots.lock();
        let live = snapshots.live();
        let mut postings = PostingEdits::new(&self.meta);
        for (key, versions, new) in planned {
            let mut timestamps = vec![version];
            timestamps.extend(versions.iter().map(|(ts, _)| *ts));
            let removed = collectable(&timestamps, &live);
            let keeps_older = timestamps.len() - 1 > removed.len();
            let needed_by_older_snapshot = live.iter().any(|&s| s < version);
            for &i in &removed {
                let Some((ts, old)) = versions.get(i - 1) else {
                    continue;
                };
                ops.push((version_key(key.as_bytes(), *ts), None));
                let Some(record) = old.object() else {
                    continue;
                };
                for index in indexes.values() {
                    let entries = index.entries(key.as_bytes(), *ts, &record.metadata);
                    ops.extend(entries.into_iter().map(|k| (k, None)));
                }
                blobs.add_ref(record.blob, -1)?;
            }
            // The previous newest version, if kept for older snapshots, is superseded now.
            if let (Some((ts, VersionRecord::Object(previous))), false) =
                (versions.first(), removed.contains(&1))
            {
                let superseded = entry_value(Some(version), None);
                for index in indexes.values() {
                    let entries = index.entries(key.as_bytes(), *ts, &previous.metadata);
                    ops.extend(entries.into_iter().map(|k| (k, Some(superseded.clone()))));
                }
            }
            // Whatever the new version is, the previous one is no longer the key's newest.
            if let Some((_, VersionRecord::Object(previous))) = versions.first() {
                for index in indexes.values() {
                    for value in index.values(&previous.metadata) {
                        postings.remove(index, &value, key.as_bytes())?;
                    }
                }
            }
            match &new {
                VersionRecord::Object(record) => {
                    let encoded = new.encode()?;
                    for (field, index) in indexes.iter() {
                        let values = index.values(&record.metadata);
                        if values.len() > 1 && index.mark_multikey() {
                            ops.push((index_def_key(field), Some(encode(&index.current_def())?)));
                        }
                        let entry = entry_value(None, (values.len() == 1).then_some(&encoded));
                        for value in &values {
                            postings.insert(index, value, key.as_bytes(), &entry)?;
                            let tree_key =
                                index_entry_key(&index.prefix, value, key.as_bytes(), version);
                            ops.push((tree_key, Some(entry.clone())));
                        }
                    }
                    ops.push((
                        latest_key(key.as_bytes()),
                        Some(latest_value(version, &encoded)),
                    ));
                    ops.push((version_key(key.as_bytes(), version), Some(encoded)));
                    infos.push(record.info(key.clone()));
                }
                // A tombstone nobody can see past is not worth storing: the key is gone.
                VersionRecord::Tombstone if !keeps_older && !needed_by_older_snapshot => {
                    ops.push((latest_key(key.as_bytes()), None));
                }
                VersionRecord::Tombstone => {
                    let encoded = new.encode()?;
                    ops.push((
                        latest_key(key.as_bytes()),
                        Some(latest_value(version, &encoded)),
                    ));
                    ops.push((version_key(key.as_bytes(), version), Some(encoded)));
                }
            }
        }
        ops.extend(postings.finish(version)?);
        drop(indexes);
        let BlobOutcome {
            ops: blob_ops,
            kept,
            duplicates,
            mut retired,
        } = blobs.finish()?;
        ops.extend(blob_ops);
        self.meta.apply(ops)?;
        *last_version = version;
        snapshots.visible = version;
        drop(snapshots);
        drop(last_version);
        // The blob entries now reference the new runs: they must never be freed by the
        // reservations, even if the flush fails (the change may still reach the disk).
        for reservation in kept {
            reservation.keep();
        }
        retired.extend(duplicates.into_iter().map(Reservation::keep));
        self.meta.flush()?;
        for runs in retired {
            self.space.retire(runs);
        }
        Ok((version, infos))
    }
}

#[async_trait::async_trait]
impl ObjectOps for Database {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        validate_metadata(&options.metadata)?;
        // Refuse early what would be refused at commit, before the body is consumed.
        if options.condition.if_version.is_some() {
            let snapshot = self.snapshot();
            let current = self.read_at(key, snapshot.ts)?.map_or(0, |r| r.version);
            options.condition.check(key, current)?;
        }
        let condition = options.condition;
        let write = self.write_put(body, &options).await?;
        self.commit_one(key, Intent { write, condition }).await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let snapshot = self.snapshot();
        let record = self.read_at(key, snapshot.ts)?;
        self.get_at(key, record, None, options)
    }

    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let snapshot = self.snapshot();
        let record = self
            .read_at(key, snapshot.ts)?
            .ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })?;
        Ok(record.info(key.clone()))
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        let intent = Intent {
            write: Write::Delete,
            condition,
        };
        let mut intents = BTreeMap::new();
        intents.insert(key.clone(), intent);
        self.commit(None, intents).await.map(drop)
    }

    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        validate_metadata(&metadata)?;
        let intent = Intent {
            write: Write::Metadata(metadata),
            condition,
        };
        self.commit_one(key, intent).await
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let query = list_query(&options)?;
        let snapshot = self.snapshot();
        let (objects, next) = self
            .with_query(snapshot.ts, None, |q| list_page(q, &query))?
            .into_infos();
        Ok(ListPage { objects, next })
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let snapshot = self.snapshot();
        let (objects, next) = self
            .with_query(snapshot.ts, None, |q| q.page(query))?
            .into_infos();
        Ok(QueryPage { objects, next })
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let snapshot = self.snapshot();
        self.with_query(snapshot.ts, None, |q| q.count(query))
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        let snapshot = self.snapshot();
        self.with_query(snapshot.ts, None, |q| Ok(q.explain(query)))
    }
}

#[async_trait::async_trait]
impl Store for Database {
    async fn create_index(&self, field: &str) -> Result<IndexInfo> {
        self.inner.create_index(field)
    }

    async fn drop_index(&self, field: &str) -> Result<()> {
        self.inner.drop_index(field)
    }

    async fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        Ok(self
            .inner
            .indexes()
            .iter()
            .map(|(field, index)| crate::index_build::index_info(field, index))
            .collect())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(DbTransaction::new(self.clone())))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = Arc::clone(&self.inner);
        let snapshot = self.snapshot();
        let (objects, logical_bytes, distinct_bytes) = tokio::task::spawn_blocking(move || {
            let (mut objects, mut logical, mut distinct) = (0u64, 0u64, 0u64);
            let mut seen = HashSet::new();
            let versions = crate::mvcc::scan_at(&inner.meta, Bound::Unbounded, snapshot.ts);
            for item in versions {
                let (key, _, encoded) = item?;
                let Some(footprint) = decode_version_footprint(key.as_bytes(), &encoded)? else {
                    continue;
                };
                objects += 1;
                logical += footprint.size;
                if footprint.blob.is_some_and(|blob| seen.insert(blob)) {
                    distinct += footprint.size;
                }
            }
            Ok::<_, Error>((objects, logical, distinct))
        })
        .await
        .map_err(|e| Error::internal(format!("stats task failed: {e}")))??;
        let space = self.space_stats();
        Ok(StoreStats {
            objects,
            logical_bytes,
            physical_bytes: space.extent_bytes - space.free_bytes,
            free_bytes: space.free_bytes,
            disk_bytes: self.inner.space.disk_bytes()?,
            dedup_saved_bytes: logical_bytes.saturating_sub(distinct_bytes),
            extents: space.extents as u64,
            garbage_bytes: space.pending_reclaim_bytes,
        })
    }

    async fn compact(&self) -> Result<CompactionReport> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.compact(u64::MAX))
            .await
            .map_err(|e| Error::internal(format!("compaction task failed: {e}")))?
    }
}

/// The blob-table side of one commit: new blobs, reference count changes, and what they free.
struct BlobChanges<'a> {
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

/// What [`BlobChanges::finish`] hands to the commit.
struct BlobOutcome {
    ops: Vec<BatchOp>,
    kept: Vec<Reservation>,
    duplicates: Vec<Reservation>,
    retired: Vec<Vec<Run>>,
}

impl<'a> BlobChanges<'a> {
    fn new(meta: &'a MetaStore, dedup: bool) -> Self {
        BlobChanges {
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
    fn put(
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
    fn add_ref(&mut self, blob: Option<BlobId>, delta: i64) -> Result<()> {
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
                hex_id(&id)
            ))),
        }
    }

    fn finish(mut self) -> Result<BlobOutcome> {
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
        Ok(BlobOutcome {
            ops,
            kept: self.kept,
            duplicates: self.duplicates,
            retired: self.retired,
        })
    }
}

/// A blob id as hex, for messages.
pub(crate) fn hex_id(id: &BlobId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

//! The embedded database: opening and recovering a data directory, committing versions, and
//! the [`Store`] operations.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};

use asterope_core::{
    ByteStream, Condition, Error, FieldPath, Filter, GetOptions, GetResult, IndexInfo, Key,
    ListOptions, ListPage, Metadata, ObjectInfo, PutOptions, Query, QueryPage, QueryPlan, Result,
    Sha256Digest, Store, StoreStats, Timestamp, Transaction,
};
use asterope_serialization::{decode, encode, validate_metadata};

use crate::alloc::Run;
use crate::extent::ExtentSet;
use crate::index::{Index, IndexDef};
use crate::keys::{
    index_def_key, index_prefix, latest_key, split_version_key, version_key, INDEX_DEF_PREFIX,
    ORACLE_KEY, USER_REGION_START,
};
use crate::lock::DirLock;
use crate::meta::{BatchOp, MetaStore};
use crate::mvcc::{
    collectable, decode_version, latest_value, read_at, versions_of, Snapshot, Snapshots,
};
use crate::query::{Overlay, QueryContext};
use crate::reader::{read_stream, verify_stream};
use crate::record::{ObjectRecord, VersionRecord};
use crate::space::{Reservation, Space};
use crate::txn::DbTransaction;
use crate::writer::write_blob;

/// Default size of a new extent file.
pub const DEFAULT_EXTENT_SIZE: u64 = 1 << 30;
/// Default metadata cache budget.
const DEFAULT_CACHE_BYTES: u64 = 64 << 20;
/// Index entries written per batch while building an index.
const INDEX_BUILD_BATCH: usize = 1000;

/// Configures and opens a [`Database`].
#[derive(Debug, Clone)]
pub struct DatabaseBuilder {
    dir: PathBuf,
    extent_size: u64,
    capacity_limit: Option<u64>,
    cache_bytes: u64,
}

impl DatabaseBuilder {
    /// Size of newly created extent files (existing ones keep theirs). Default 1 GiB.
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
        let extents = ExtentSet::open(dir.join("extents"))?;
        let meta = MetaStore::open(&dir.join("meta"), self.cache_bytes)?;
        let space = Arc::new(Space::new(
            lock,
            extents,
            self.extent_size,
            self.capacity_limit,
        ));
        let mut last_version = match meta.get(ORACLE_KEY)? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::internal("version oracle record is malformed"))?,
            ),
            None => 0,
        };
        let mut indexes = BTreeMap::new();
        for entry in meta.range(
            Bound::Included(INDEX_DEF_PREFIX.to_vec()),
            Bound::Excluded(crate::index::successor(INDEX_DEF_PREFIX)),
        ) {
            let (key, value) = entry?;
            let field =
                String::from_utf8_lossy(key.get(INDEX_DEF_PREFIX.len()..).unwrap_or_default())
                    .into_owned();
            let def: IndexDef = decode(&value, "index definition")?;
            indexes.insert(field.clone(), Index::new(&field, def));
        }

        let mut garbage: Vec<BatchOp> = Vec::new();
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
            current = Some(key.to_vec());
            let version = decode_version(key, &value)?;
            match (newest, version.object()) {
                (true, Some(record)) => {
                    space
                        .mark_used(&record.runs)
                        .map_err(|reason| Error::Corrupt {
                            key: String::from_utf8_lossy(key).into_owned(),
                            reason,
                        })?;
                }
                (newest, record) => {
                    if newest {
                        // The newest version is a tombstone: the key goes entirely.
                        garbage.push((latest_key(key), None));
                    }
                    garbage.push((tree_key.clone(), None));
                    for index in indexes.values() {
                        if let Some(record) = record {
                            let entries = index.entries(key, ts, &record.metadata);
                            garbage.extend(entries.into_iter().map(|k| (k, None)));
                        }
                    }
                }
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
            }),
        };
        let unfinished: Vec<String> = db
            .inner
            .indexes()
            .iter()
            .filter(|(_, index)| index.def.ready_at.is_none())
            .map(|(field, _)| field.clone())
            .collect();
        for field in unfinished {
            db.inner.build_index(&field)?;
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
    last_version: Mutex<u64>,
    pub(crate) snapshots: Arc<Snapshots>,
    indexes: RwLock<BTreeMap<String, Index>>,
}

/// A change to one key, as committed.
#[derive(Debug)]
pub(crate) enum Write {
    Put {
        reservation: Reservation,
        size: u64,
        sha256: Sha256Digest,
        metadata: Metadata,
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

    /// Reads `key` at `snapshot` and streams it.
    pub(crate) fn get_at(
        &self,
        key: &Key,
        record: Option<ObjectRecord>,
        options: GetOptions,
    ) -> Result<GetResult> {
        let record = record.ok_or_else(|| Error::NotFound {
            key: key.to_string(),
        })?;
        let range = match options.range {
            Some(range) => range.resolve(record.size)?,
            None => 0..record.size,
        };
        let info = record.info(key.clone());
        let pin = self.inner.space.pin();
        let mut body = read_stream(
            Arc::clone(&self.inner.space),
            pin,
            record.runs,
            range.clone(),
        );
        if options.verify && options.range.is_none() {
            body = verify_stream(body, key.clone(), record.sha256);
        }
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
        Ok(Write::Put {
            reservation: written.reservation,
            size: written.size,
            sha256: written.sha256,
            metadata: options.metadata.clone(),
        })
    }
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

    fn indexes_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Index>> {
        self.indexes.write().unwrap_or_else(|e| e.into_inner())
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
        // Validate everything first: a refused intent refuses the whole commit.
        let mut planned = Vec::new();
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
            let (new, reservation) = match intent.write {
                Write::Put {
                    reservation,
                    size,
                    sha256,
                    metadata,
                } => {
                    let record = ObjectRecord {
                        version,
                        size,
                        sha256,
                        created: current.map_or(now, |r| r.created),
                        updated: now,
                        metadata,
                        runs: reservation.runs().to_vec(),
                    };
                    (VersionRecord::Object(record), Some(reservation))
                }
                Write::Metadata(metadata) => {
                    let current = current.ok_or_else(not_found)?;
                    let record = ObjectRecord {
                        version,
                        updated: now,
                        metadata,
                        ..current.clone()
                    };
                    (VersionRecord::Object(record), None)
                }
                Write::Delete => {
                    current.ok_or_else(not_found)?;
                    (VersionRecord::Tombstone, None)
                }
            };
            planned.push((key, versions, new, reservation));
        }

        let mut ops: Vec<BatchOp> =
            vec![(ORACLE_KEY.to_vec(), Some(version.to_be_bytes().to_vec()))];
        let mut retired = Vec::new();
        let mut infos = Vec::new();
        let mut reservations = Vec::new();
        let mut snapshots = self.snapshots.lock();
        let live = snapshots.live();
        for (key, versions, new, reservation) in planned {
            let mut timestamps = vec![version];
            timestamps.extend(versions.iter().map(|(ts, _)| *ts));
            let removed = collectable(&timestamps, &live);
            let keeps_older = timestamps.len() - 1 > removed.len();
            let needed_by_older_snapshot = live.iter().any(|&s| s < version);
            // Runs shared by versions (a metadata update keeps the blob) are freed only when
            // no kept version references them any more.
            let mut kept_runs: Vec<&Vec<Run>> = new.object().map(|r| &r.runs).into_iter().collect();
            for (i, (_, old)) in versions.iter().enumerate() {
                if !removed.contains(&(i + 1)) {
                    kept_runs.extend(old.object().map(|r| &r.runs));
                }
            }
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
                if !kept_runs.contains(&&record.runs) && !retired.contains(&record.runs) {
                    retired.push(record.runs.clone());
                }
            }
            match &new {
                VersionRecord::Object(record) => {
                    for (field, index) in indexes.iter() {
                        let entries = index.entries(key.as_bytes(), version, &record.metadata);
                        if entries.len() > 1 && index.mark_multikey() {
                            ops.push((index_def_key(field), Some(encode(&index.current_def())?)));
                        }
                        ops.extend(entries.into_iter().map(|k| (k, Some(Vec::new()))));
                    }
                    let encoded = new.encode()?;
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
            reservations.extend(reservation);
        }
        drop(indexes);
        self.meta.apply(ops)?;
        *last_version = version;
        snapshots.visible = version;
        drop(snapshots);
        drop(last_version);
        // The records now reference the new runs: they must never be freed by the reservations,
        // even if the flush fails (the change may still reach the disk).
        for reservation in reservations {
            reservation.keep();
        }
        self.meta.flush()?;
        for runs in retired {
            self.space.retire(runs);
        }
        Ok((version, infos))
    }

    /// Fills a declared index from the objects visible now, on a background thread, then marks
    /// it ready for snapshots from then on. Commits after the declaration write their own
    /// entries, so nothing is missed.
    fn build_index(self: &Arc<Self>, field: &str) -> Result<()> {
        let snapshot = self.snapshots.take();
        // The builder holds the database only weakly: closing it stops the build (it resumes
        // on the next open), and never keeps the directory locked.
        let inner = Arc::downgrade(self);
        let field = field.to_string();
        std::thread::Builder::new()
            .name(format!("index-build-{field}"))
            .spawn(move || {
                if let Err(e) = Inner::fill_index(&inner, &field, snapshot) {
                    tracing::error!("building index {field}: {e}");
                }
            })
            .map_err(|e| Error::io("starting the index builder", e))?;
        Ok(())
    }

    fn fill_index(weak: &Weak<Inner>, field: &str, snapshot: Snapshot) -> Result<()> {
        let Some(this) = weak.upgrade() else {
            return Ok(());
        };
        let Some(index) = this.indexes().get(field).cloned() else {
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
            for item in crate::mvcc::scan_at(&this.meta, start, snapshot.ts) {
                let (key, record) = item?;
                let entries = index.entries(key.as_bytes(), record.version, &record.metadata);
                if entries.len() > 1 {
                    index.mark_multikey();
                }
                batch.extend(entries.into_iter().map(|k| (k, Some(Vec::new()))));
                resume = Some(key.as_bytes().to_vec());
                passed += 1;
                if passed == INDEX_BUILD_BATCH {
                    break;
                }
            }
            if !this.indexes().contains_key(field) {
                return Ok(());
            }
            this.meta.apply(std::mem::take(&mut batch))?;
            if passed < INDEX_BUILD_BATCH {
                return this.finish_index(field, &index, &snapshot);
            }
        }
    }

    /// Marks a filled index ready for snapshots at or after the one it was filled from.
    fn finish_index(&self, field: &str, index: &Index, snapshot: &Snapshot) -> Result<()> {
        let _serialise = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
        if !self.indexes().contains_key(field) {
            return Ok(());
        }
        let def = IndexDef {
            ready_at: Some(snapshot.ts),
            multikey: index.is_multikey(),
        };
        self.meta
            .apply(vec![(index_def_key(field), Some(encode(&def)?))])?;
        self.meta.flush()?;
        if let Some(index) = self.indexes_mut().get_mut(field) {
            index.def.ready_at = def.ready_at;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for Database {
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
        self.get_at(key, record, options)
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
        let page = self.with_query(snapshot.ts, None, |q| q.page(&query))?;
        Ok(ListPage {
            objects: page.objects.into_iter().map(|(k, r)| r.info(k)).collect(),
            next: page.next,
        })
    }

    async fn query(&self, query: &Query) -> Result<QueryPage> {
        let snapshot = self.snapshot();
        let page = self.with_query(snapshot.ts, None, |q| q.page(query))?;
        Ok(QueryPage {
            objects: page.objects.into_iter().map(|(k, r)| r.info(k)).collect(),
            next: page.next,
        })
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let snapshot = self.snapshot();
        self.with_query(snapshot.ts, None, |q| q.count(query))
    }

    async fn explain(&self, query: &Query) -> Result<QueryPlan> {
        let snapshot = self.snapshot();
        self.with_query(snapshot.ts, None, |q| Ok(q.explain(query)))
    }

    async fn create_index(&self, field: &str) -> Result<IndexInfo> {
        let path = FieldPath::parse(field)?;
        let field = path.to_string();
        {
            let _serialise = self
                .inner
                .last_version
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut indexes = self.inner.indexes_mut();
            if let Some(existing) = indexes.get(&field) {
                return Ok(index_info(&field, existing));
            }
            let def = IndexDef {
                ready_at: None,
                multikey: false,
            };
            self.inner
                .meta
                .apply(vec![(index_def_key(&field), Some(encode(&def)?))])?;
            self.inner.meta.flush()?;
            indexes.insert(field.clone(), Index::new(&field, def));
        }
        self.inner.build_index(&field)?;
        Ok(IndexInfo {
            field,
            state: "building".into(),
        })
    }

    async fn drop_index(&self, field: &str) -> Result<()> {
        let field = FieldPath::parse(field)?.to_string();
        {
            let _serialise = self
                .inner
                .last_version
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if self.inner.indexes_mut().remove(&field).is_none() {
                return Err(Error::NotFound {
                    key: format!("index {field}"),
                });
            }
            self.inner.meta.apply(vec![(index_def_key(&field), None)])?;
        }
        let prefix = index_prefix(&field);
        let end = crate::index::successor(&prefix);
        let stale: Vec<BatchOp> = self
            .inner
            .meta
            .range(Bound::Included(prefix), Bound::Excluded(end))
            .map(|entry| entry.map(|(k, _)| (k, None)))
            .collect::<Result<_>>()?;
        for chunk in stale.chunks(INDEX_BUILD_BATCH) {
            self.inner.meta.apply(chunk.to_vec())?;
        }
        self.inner.meta.flush()
    }

    async fn list_indexes(&self) -> Result<Vec<IndexInfo>> {
        Ok(self
            .inner
            .indexes()
            .iter()
            .map(|(field, index)| index_info(field, index))
            .collect())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(DbTransaction::new(self.clone())))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = Arc::clone(&self.inner);
        let snapshot = self.snapshot();
        let (objects, logical_bytes) = tokio::task::spawn_blocking(move || {
            let mut totals = (0u64, 0u64);
            for item in crate::mvcc::scan_at(&inner.meta, Bound::Unbounded, snapshot.ts) {
                let (_, record) = item?;
                totals.0 += 1;
                totals.1 += record.size;
            }
            Ok::<_, Error>(totals)
        })
        .await
        .map_err(|e| Error::internal(format!("stats task failed: {e}")))??;
        let space = self.space_stats();
        Ok(StoreStats {
            objects,
            logical_bytes,
            physical_bytes: space.extent_bytes - space.free_bytes,
            free_bytes: space.free_bytes,
            extents: space.extents as u64,
            garbage_bytes: space.pending_reclaim_bytes,
        })
    }
}

fn index_info(field: &str, index: &Index) -> IndexInfo {
    IndexInfo {
        field: field.to_string(),
        state: if index.def.ready_at.is_some() {
            "ready"
        } else {
            "building"
        }
        .into(),
    }
}

//! The embedded database: opening and recovering a data directory, and the [`Store`] operations.

use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use asterope_core::{
    ByteStream, Condition, Error, GetOptions, GetResult, Key, ListOptions, ListPage, Metadata,
    ObjectInfo, PutOptions, Result, Store, Timestamp,
};
use asterope_serialization::validate_metadata;

use crate::extent::ExtentSet;
use crate::lock::DirLock;
use crate::meta::MetaStore;
use crate::reader::{read_stream, verify_stream};
use crate::record::ObjectRecord;
use crate::space::{Reservation, Space};
use crate::writer::write_blob;

/// Tree key of the persisted commit-version oracle. User keys never contain NUL, so no user key
/// can collide with a key that starts with one.
const ORACLE_KEY: &[u8] = b"\0oracle";

/// Default size of a new extent file.
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

    /// Opens (creating if needed) and recovers the data directory.
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
        let mut last_version = 0u64;
        for entry in meta.range(Bound::Unbounded, Bound::Unbounded) {
            let (key, value) = entry?;
            if key.as_slice() == ORACLE_KEY {
                let bytes: [u8; 8] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::internal("version oracle record is malformed"))?;
                last_version = last_version.max(u64::from_be_bytes(bytes));
                continue;
            }
            let record = decode_record(&key, &value)?;
            last_version = last_version.max(record.version);
            space
                .mark_used(&record.runs)
                .map_err(|reason| Error::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason,
                })?;
        }
        Ok(Database {
            inner: Arc::new(Inner {
                dir,
                meta,
                space,
                last_version: Mutex::new(last_version),
            }),
        })
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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    meta: MetaStore,
    space: Arc<Space>,
    /// The last commit version handed out; holding it serialises commits.
    last_version: Mutex<u64>,
}

/// A change to commit for one key.
enum Change {
    Put {
        reservation: Reservation,
        size: u64,
        sha256: asterope_core::Sha256Digest,
        metadata: Metadata,
    },
    Metadata(Metadata),
    Delete,
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

    async fn commit(&self, key: &Key, condition: Condition, change: Change) -> Result<ObjectInfo> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        tokio::task::spawn_blocking(move || inner.commit(key, condition, change))
            .await
            .map_err(|e| Error::internal(format!("commit task failed: {e}")))?
    }
}

impl Inner {
    fn load(&self, key: &Key) -> Result<Option<ObjectRecord>> {
        self.meta
            .get(key.as_bytes())?
            .map(|bytes| decode_record(key.as_bytes(), &bytes))
            .transpose()
    }

    /// Applies one change atomically and durably. The change is published to readers when the
    /// batch applies and acknowledged once the flush made it durable.
    fn commit(&self, key: Key, condition: Condition, change: Change) -> Result<ObjectInfo> {
        let mut last_version = self.last_version.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.load(&key)?;
        condition.check(&key, old.as_ref().map_or(0, |r| r.version))?;
        let version = *last_version + 1;
        let now = Timestamp::now();
        let not_found = || Error::NotFound {
            key: key.to_string(),
        };
        // (new record, space of the new blob, whether the old blob's space is released)
        let (new, reservation, releases_old) = match change {
            Change::Put {
                reservation,
                size,
                sha256,
                metadata,
            } => {
                let record = ObjectRecord {
                    version,
                    size,
                    sha256,
                    created: old.as_ref().map_or(now, |r| r.created),
                    updated: now,
                    metadata,
                    runs: reservation.runs().to_vec(),
                };
                (Some(record), Some(reservation), true)
            }
            Change::Metadata(metadata) => {
                let old = old.as_ref().ok_or_else(not_found)?;
                let record = ObjectRecord {
                    version,
                    updated: now,
                    metadata,
                    ..old.clone()
                };
                (Some(record), None, false)
            }
            Change::Delete => {
                old.as_ref().ok_or_else(not_found)?;
                (None, None, true)
            }
        };
        let value = new.as_ref().map(ObjectRecord::encode).transpose()?;
        self.meta.apply(vec![
            (key.as_bytes().to_vec(), value),
            (ORACLE_KEY.to_vec(), Some(version.to_be_bytes().to_vec())),
        ])?;
        *last_version = version;
        drop(last_version);
        // From here the record references the new runs: they must never be freed by the
        // reservation, even if the flush fails (the change may still reach the disk).
        let _committed_runs = reservation.map(Reservation::keep);
        self.meta.flush()?;
        if let Some(old) = old.as_ref().filter(|_| releases_old) {
            self.space.retire(old.runs.clone());
        }
        let info = match new {
            Some(record) => record.info(key),
            None => old.ok_or_else(not_found)?.info(key),
        };
        Ok(info)
    }
}

fn decode_record(key: &[u8], bytes: &[u8]) -> Result<ObjectRecord> {
    ObjectRecord::decode(bytes).map_err(|e| match e {
        Error::UnsupportedFormat { .. } => e,
        other => Error::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: other.to_string(),
        },
    })
}

#[async_trait::async_trait]
impl Store for Database {
    async fn put(&self, key: &Key, body: ByteStream, options: PutOptions) -> Result<ObjectInfo> {
        validate_metadata(&options.metadata)?;
        // Refuse early what would be refused at commit, before the body is consumed.
        if options.condition.if_version.is_some() {
            let current = self.inner.load(key)?.map_or(0, |r| r.version);
            options.condition.check(key, current)?;
        }
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
        let change = Change::Put {
            reservation: written.reservation,
            size: written.size,
            sha256: written.sha256,
            metadata: options.metadata,
        };
        self.commit(key, options.condition, change).await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let space = &self.inner.space;
        // Pin before the lookup so the runs found cannot be reused while streaming.
        let pin = space.pin();
        let record = self.inner.load(key)?.ok_or_else(|| Error::NotFound {
            key: key.to_string(),
        })?;
        let range = match options.range {
            Some(range) => range.resolve(record.size)?,
            None => 0..record.size,
        };
        let info = record.info(key.clone());
        let mut body = read_stream(Arc::clone(space), pin, record.runs, range.clone());
        if options.verify && options.range.is_none() {
            body = verify_stream(body, key.clone(), record.sha256);
        }
        Ok(GetResult { info, range, body })
    }

    async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let record = self.inner.load(key)?.ok_or_else(|| Error::NotFound {
            key: key.to_string(),
        })?;
        Ok(record.info(key.clone()))
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<()> {
        self.commit(key, condition, Change::Delete).await.map(drop)
    }

    async fn update_metadata(
        &self,
        key: &Key,
        metadata: Metadata,
        condition: Condition,
    ) -> Result<ObjectInfo> {
        validate_metadata(&metadata)?;
        self.commit(key, condition, Change::Metadata(metadata))
            .await
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let limit = options.effective_limit()?;
        let prefix = options.prefix.as_bytes().to_vec();
        let start = match options.cursor {
            Some(cursor) if cursor.as_bytes() >= prefix.as_slice() => {
                Bound::Excluded(cursor.into_bytes())
            }
            _ => Bound::Included(prefix.clone()),
        };
        let mut objects = Vec::new();
        let mut next = None;
        for entry in self.inner.meta.range(start, Bound::Unbounded) {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            if key.first() == Some(&0) {
                continue;
            }
            if objects.len() == limit {
                next = objects.last().map(|o: &ObjectInfo| o.key.to_string());
                break;
            }
            let record = decode_record(&key, &value)?;
            let key = Key::from_bytes(&key)?;
            objects.push(record.info(key));
        }
        Ok(ListPage { objects, next })
    }
}

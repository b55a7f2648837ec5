//! The database handle: how a data directory is configured, opened and recovered, and what
//! the handle tells about it. The [`asterope_core::Store`] operations are in `store.rs`, commits
//! in `commit.rs`, the shared state in `engine.rs`.
//!
//! Opening runs, in order: take the directory lock, open the extents and the metadata store,
//! upgrade an older format, load the index definitions, run the recovery scan (`recovery.rs`),
//! then resume unfinished index builds and start background compaction. Neither of the last two
//! is a condition of opening: a directory whose index cannot be built, or whose compaction
//! thread cannot start, still opens.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use asterope_core::{Error, Result};

use crate::backend::Backends;
use crate::compact::CompactionSchedule;
use crate::engine::Engine;
use crate::extent::ExtentSet;
use crate::lock::DirLock;
use crate::meta::MetaStore;
use crate::space::Space;

/// Default maximum size of an extent file (files start at 1 MiB and grow with what is written).
pub(crate) const DEFAULT_EXTENT_SIZE: u64 = 1 << 30;
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
    /// What extent and metadata I/O goes through (the real files and sled by default).
    backends: Backends,
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

    /// Test only: extent and metadata operations of this database fail as `plan` says.
    #[cfg(feature = "fault-injection")]
    pub fn fault_plan(mut self, plan: &crate::fault::FaultPlan) -> Self {
        self.backends = plan.wrap(self.backends);
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
        let extents =
            ExtentSet::open(dir.join("extents"), self.extent_size, self.backends.extents)?;
        let meta = MetaStore::open_with(&dir.join("meta"), self.cache_bytes, self.backends.meta)?;
        // The entries of `extents/` and `meta/` themselves, in case this open created them.
        crate::extent::sync_dir(&dir)?;
        let space = Arc::new(Space::new(
            lock,
            extents,
            self.extent_size,
            self.capacity_limit,
        )?);
        crate::upgrade::upgrade_format2(&meta, &space)?;
        let (indexes, garbage) = crate::index_catalog::load_definitions(&meta)?;
        let last_committed = crate::recovery::recover(&meta, &space, &indexes, garbage)?;
        let engine = Arc::new(Engine::new(
            dir,
            meta,
            space,
            last_committed,
            indexes,
            self.dedup,
        ));
        crate::index_build::resume_index_builds(&engine);
        if let Some(schedule) = self.compaction {
            // Like index builds, background compaction is never a condition of opening:
            // without it, `Store::compact` still reclaims space on demand.
            if let Err(e) = crate::compact::start_background(&engine, schedule) {
                tracing::error!("background compaction is off: {e}");
            }
        }
        Ok(Database { engine })
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
    pub(crate) engine: Arc<Engine>,
}

impl Database {
    /// The metadata tree, for tests that look under the engine.
    #[cfg(test)]
    pub(crate) fn meta_store(&self) -> &MetaStore {
        &self.engine.meta
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
            backends: Backends::default(),
        }
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        self.engine.dir()
    }

    /// Space accounting.
    pub fn space_stats(&self) -> SpaceStats {
        let counters = self.engine.space.counters();
        SpaceStats {
            extents: counters.extents,
            extent_bytes: counters.total_bytes,
            free_bytes: counters.free_bytes,
            pending_reclaim_bytes: counters.pending_bytes,
        }
    }
}

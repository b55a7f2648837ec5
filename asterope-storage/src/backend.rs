//! The I/O seams under the engine: every operation on an extent file ([`ExtentIo`]) and on the
//! metadata tree ([`MetaIo`]) goes through one of these two small traits, so that a database
//! can be given other backends without the rest of the crate knowing.
//!
//! The default backends ([`FileIo`], [`SledIo`]) do the real thing and nothing else; a
//! database holds them as `Arc<dyn …>`, so the seam costs one indirect call per I/O operation
//! (a positioned write of a whole piece, one sync, one tree lookup), never one per byte. The
//! test-only wrappers in [`crate::fault`] implement the same traits over the defaults and fail
//! chosen operations, per database.
//!
//! Memory-mapped reads of extents stay outside the seam (they are loads, not calls), but the
//! length check a reader makes before touching a mapped range ([`ExtentIo::len`]) goes
//! through it, so a read failure can be injected there as well.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustix::fs::{fallocate, FallocateFlags};

/// I/O on one open extent file. The engine keeps the file; the backend performs operations on
/// it.
pub(crate) trait ExtentIo: fmt::Debug + Send + Sync {
    /// Writes all of `data` at `offset` (a positioned write).
    fn write_at(&self, file: &File, data: &[u8], offset: u64) -> io::Result<()>;

    /// Fills `buf` from `offset` (a positioned read); a file ending before fails with
    /// [`io::ErrorKind::UnexpectedEof`].
    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self, file: &File) -> io::Result<()>;

    /// Makes data and the file's size durable (`fsync`), for a file just created.
    fn sync_all(&self, file: &File) -> io::Result<()>;

    /// `fallocate(2)` with `flags`: extends the file or reserves (or, with `PUNCH_HOLE`,
    /// releases) disk blocks. Filesystems without it answer `EOPNOTSUPP`.
    fn allocate(&self, file: &File, flags: FallocateFlags, offset: u64, len: u64)
        -> io::Result<()>;

    /// Sets the file's length (a sparse extension where `allocate` is not supported).
    fn set_len(&self, file: &File, len: u64) -> io::Result<()>;

    /// The file's length now.
    fn len(&self, file: &File) -> io::Result<u64>;
}

/// Whether an error from [`ExtentIo::allocate`] means the filesystem cannot `fallocate`.
pub(crate) fn is_unsupported(error: &io::Error) -> bool {
    error.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
}

/// The real extent backend: system calls on the file.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FileIo;

impl ExtentIo for FileIo {
    fn write_at(&self, file: &File, data: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(data, offset)
    }

    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        file.read_exact_at(buf, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_all(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    fn allocate(
        &self,
        file: &File,
        flags: FallocateFlags,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        fallocate(file, flags, offset, len).map_err(io::Error::from)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn len(&self, file: &File) -> io::Result<u64> {
        file.metadata().map(|m| m.len())
    }
}

/// Operations on the metadata tree (sled). The engine keeps the tree; the backend performs
/// operations on it.
pub(crate) trait MetaIo: fmt::Debug + Send + Sync {
    /// The value under `key`.
    fn get(&self, tree: &sled::Tree, key: &[u8]) -> sled::Result<Option<sled::IVec>>;

    /// The next entry of a scan.
    fn next_entry(&self, scan: &mut sled::Iter) -> Option<sled::Result<(sled::IVec, sled::IVec)>>;

    /// Applies a batch atomically (in memory; durable after [`MetaIo::flush`]).
    fn apply(&self, tree: &sled::Tree, batch: sled::Batch) -> sled::Result<()>;

    /// Writes everything applied to sled's log.
    fn flush(&self, db: &sled::Db) -> sled::Result<()>;

    /// Makes a file of the tree durable (`fdatasync`), after sled's own flush.
    fn sync_data(&self, file: &File) -> io::Result<()>;
}

/// The real metadata backend: sled's own calls.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SledIo;

impl MetaIo for SledIo {
    fn get(&self, tree: &sled::Tree, key: &[u8]) -> sled::Result<Option<sled::IVec>> {
        tree.get(key)
    }

    fn next_entry(&self, scan: &mut sled::Iter) -> Option<sled::Result<(sled::IVec, sled::IVec)>> {
        scan.next()
    }

    fn apply(&self, tree: &sled::Tree, batch: sled::Batch) -> sled::Result<()> {
        tree.apply_batch(batch)
    }

    fn flush(&self, db: &sled::Db) -> sled::Result<()> {
        db.flush().map(drop)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
}

/// The backends one database does its I/O through.
#[derive(Debug, Clone)]
pub(crate) struct Backends {
    pub(crate) extents: Arc<dyn ExtentIo>,
    pub(crate) meta: Arc<dyn MetaIo>,
}

impl Default for Backends {
    fn default() -> Self {
        Backends {
            extents: Arc::new(FileIo),
            meta: Arc::new(SledIo),
        }
    }
}

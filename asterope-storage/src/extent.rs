//! Extent files: files that hold blob bytes, created small and grown as blobs are written.
//!
//! An extent has a maximum size fixed when it is opened ([`Extent::max_size`]) and a file
//! that starts at a small length and is extended at its end, by `fallocate` in steps, before
//! any of the new bytes is handed out (see [`crate::space`]); so the disk holds about what is
//! stored, and a full disk fails at allocation with a clear error, never midway through a
//! write. A new extent is created under a temporary name at its first length, synced, and
//! renamed into place. Files are never shortened. Extents made at their full size by earlier
//! versions simply have no room left to grow. Free ranges may be given back to the filesystem
//! by punching holes (the length stays; reading a hole gives zeros); space handed out from an
//! extent with holes is allocated again first. An extent with nothing in use can be deleted
//! whole.
//!
//! The file's length is trusted for one thing only, "these bytes exist": recovery rebuilds
//! free space from the committed records, so a crash midway through growing a file (whatever
//! length it left) loses nothing and leaks nothing but the unused tail.
//!
//! Blob reads go through a read-only mapping of the extent at its maximum size, made once
//! (zero-copy chunks, see [`crate::reader`]); the file grows inside the mapping, and only
//! bytes already written are ever touched. Compaction and recovery copy with positioned reads.
//! Before touching a mapped range a reader checks that the file holds it
//! ([`Extent::file_len`]): a file truncated under the store fails the reads of the missing part
//! with an I/O error instead of killing the process with `SIGBUS`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use asterope_core::{Error, Result};
use memmap2::Mmap;
use rustix::fs::FallocateFlags;

use crate::backend::{is_unsupported, ExtentIo};
use crate::mmap::map_extent;

/// Identifier of an extent file (`<id>.ext`).
pub(crate) type ExtentId = u32;

/// One open extent file.
#[derive(Debug)]
pub(crate) struct Extent {
    pub(crate) id: ExtentId,
    /// The length the file may grow to, and the length of its mapping. Only raised, and only
    /// by recovery before anything is read.
    max_size: AtomicU64,
    file: File,
    /// Every operation on `file` goes through this backend ([`crate::backend`]).
    io: Arc<dyn ExtentIo>,
    /// Read-only mapping of the extent at its maximum size, made on first read and kept.
    mapping: OnceLock<Arc<Mmap>>,
    /// Some range of the file may be a hole (punched, or never allocated).
    has_holes: AtomicBool,
}

impl Extent {
    /// The length the file may grow to.
    pub(crate) fn max_size(&self) -> u64 {
        self.max_size.load(Ordering::SeqCst)
    }

    /// Lets the file be as long as `len` (recovery: blobs recorded beyond the maximum this
    /// open assumed, which a smaller configured extent size can cause). A mapping made before
    /// keeps its length; reads beyond it fail cleanly.
    pub(crate) fn raise_max_size(&self, len: u64) {
        self.max_size.fetch_max(len, Ordering::SeqCst);
    }

    /// Extends the file from `from` to `to` bytes with disk blocks behind them, so that a full
    /// disk fails here rather than on a later write. Never shortens the file.
    pub(crate) fn grow(&self, from: u64, to: u64) -> Result<()> {
        if to <= from {
            return Ok(());
        }
        let grown = match self
            .io
            .allocate(&self.file, FallocateFlags::empty(), from, to - from)
        {
            Ok(()) => Ok(()),
            // Without `fallocate` the file is extended sparse; a full disk then surfaces as an
            // error on the positioned write.
            Err(e) if is_unsupported(&e) => self.extend_sparse(to),
            Err(e) => Err(e),
        };
        grown.map_err(|e| Error::io(format!("growing extent {} to {to} bytes", self.id), e))
    }

    fn extend_sparse(&self, to: u64) -> std::io::Result<()> {
        self.has_holes.store(true, Ordering::SeqCst);
        if self.io.len(&self.file)? < to {
            self.io.set_len(&self.file, to)?;
        }
        Ok(())
    }

    /// Notes that part of the space the allocator hands out from this extent may have no disk
    /// blocks (a file found shorter than its blobs), so they are allocated before use.
    pub(crate) fn mark_sparse(&self) {
        self.has_holes.store(true, Ordering::SeqCst);
    }

    /// Writes `data` at `offset` (a positioned write; no shared file cursor).
    pub(crate) fn write_at(&self, data: &[u8], offset: u64) -> Result<()> {
        self.io
            .write_at(&self.file, data, offset)
            .map_err(|e| Error::io(format!("writing extent {} at offset {offset}", self.id), e))
    }

    /// Makes written data durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.io
            .sync_data(&self.file)
            .map_err(|e| Error::io(format!("syncing extent {}", self.id), e))
    }

    /// Gives the disk blocks of a free range back to the filesystem. Returns `false` where the
    /// filesystem cannot punch holes.
    pub(crate) fn punch_hole(&self, offset: u64, len: u64) -> Result<bool> {
        self.has_holes.store(true, Ordering::SeqCst);
        let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        match self.io.allocate(&self.file, flags, offset, len) {
            Ok(()) => Ok(true),
            Err(e) if is_unsupported(&e) => Ok(false),
            Err(e) => Err(Error::io(
                format!("punching a hole in extent {} at offset {offset}", self.id),
                e,
            )),
        }
    }

    /// Makes sure disk blocks back `len` bytes at `offset` before they are written, so that a
    /// full disk fails here (no-op unless holes were punched).
    pub(crate) fn ensure_allocated(&self, offset: u64, len: u64) -> Result<()> {
        if !self.has_holes.load(Ordering::SeqCst) {
            return Ok(());
        }
        preallocate_range(self.io.as_ref(), &self.file, offset, len).map_err(|e| {
            Error::io(
                format!(
                    "allocating {len} bytes of extent {} at offset {offset}",
                    self.id
                ),
                e,
            )
        })
    }

    /// Bytes of disk the file occupies (holes excluded).
    pub(crate) fn disk_bytes(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.blocks() * 512)
            .map_err(|e| Error::io(format!("reading size of extent {}", self.id), e))
    }

    /// The read-only mapping of this extent, at its maximum size: bytes past the end of the
    /// file must not be touched (see [`Extent::file_len`]).
    pub(crate) fn mapping(&self) -> Result<Arc<Mmap>> {
        if let Some(map) = self.mapping.get() {
            return Ok(Arc::clone(map));
        }
        let map = map_extent(&self.file, self.max_size().max(1))
            .map_err(|e| Error::io(format!("mapping extent {}", self.id), e))?;
        Ok(Arc::clone(self.mapping.get_or_init(|| Arc::new(map))))
    }

    /// The file's length now: the bytes that exist. Written ranges lie inside it unless the file
    /// was truncated under the store.
    pub(crate) fn file_len(&self) -> Result<u64> {
        self.io
            .len(&self.file)
            .map_err(|e| Error::io(format!("reading size of extent {}", self.id), e))
    }

    /// Fills `buf` from `offset` (a positioned read). A file shorter than that (truncated
    /// under the store) fails with an [`Error::Io`] naming the extent.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.io.read_at(&self.file, buf, offset).map_err(|e| {
            let context = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!(
                    "reading {} bytes of extent {} at offset {offset}: the file ends before \
                     (truncated?)",
                    buf.len(),
                    self.id
                )
            } else {
                format!("reading extent {} at offset {offset}", self.id)
            };
            Error::io(context, e)
        })
    }
}

/// The set of extent files of a data directory.
#[derive(Debug)]
pub(crate) struct ExtentSet {
    dir: PathBuf,
    /// Maximum size of extents created from now on, and of those opened shorter.
    max_size: u64,
    extents: RwLock<BTreeMap<ExtentId, Arc<Extent>>>,
    /// The backend every extent does its I/O through.
    io: Arc<dyn ExtentIo>,
}

impl ExtentSet {
    /// Opens `<data>/extents`, removing leftovers of interrupted extent creation. Each extent
    /// may grow to `max_size`, or stays at its length if it is longer already.
    pub(crate) fn open(dir: PathBuf, max_size: u64, io: Arc<dyn ExtentIo>) -> Result<ExtentSet> {
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut extents = BTreeMap::new();
        let entries =
            fs::read_dir(&dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
                .path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                fs::remove_file(&path)
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
                continue;
            }
            let Some(id) = name
                .strip_suffix(".ext")
                .and_then(|stem| stem.parse::<ExtentId>().ok())
            else {
                continue;
            };
            let file = open_rw(&path)?;
            let metadata = file
                .metadata()
                .map_err(|e| Error::io(format!("reading size of {}", path.display()), e))?;
            let extent = new_extent(id, metadata.len().max(max_size), file, Arc::clone(&io));
            extent
                .has_holes
                .store(metadata.blocks() * 512 < metadata.len(), Ordering::SeqCst);
            extents.insert(id, Arc::new(extent));
        }
        Ok(ExtentSet {
            dir,
            max_size,
            extents: RwLock::new(extents),
            io,
        })
    }

    /// Every extent, by id.
    pub(crate) fn all(&self) -> Vec<Arc<Extent>> {
        self.read_lock().values().cloned().collect()
    }

    /// The extent with this id.
    pub(crate) fn get(&self, id: ExtentId) -> Result<Arc<Extent>> {
        self.read_lock()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::internal(format!("extent {id} does not exist")))
    }

    /// Creates a new extent file of `size` bytes, preallocated, that may grow to the maximum
    /// extent size.
    pub(crate) fn create(&self, size: u64) -> Result<Arc<Extent>> {
        let mut extents = self
            .extents
            .write()
            .map_err(|_| Error::internal("extent table lock poisoned"))?;
        let id = extents.keys().next_back().map_or(0, |last| last + 1);
        let final_path = self.dir.join(format!("{id:08}.ext"));
        let tmp_path = self.dir.join(format!("{id:08}.ext.tmp"));
        let result: Result<File> = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp_path)
                .map_err(|e| Error::io(format!("creating {}", tmp_path.display()), e))?;
            preallocate(self.io.as_ref(), &file, size)
                .map_err(|e| Error::io(format!("preallocating {size} bytes for extent {id}"), e))?;
            self.io
                .sync_all(&file)
                .map_err(|e| Error::io(format!("syncing {}", tmp_path.display()), e))?;
            fs::rename(&tmp_path, &final_path)
                .map_err(|e| Error::io(format!("renaming {}", tmp_path.display()), e))?;
            sync_dir(&self.dir)?;
            Ok(file)
        })();
        let file = result.inspect_err(|_| {
            let _ = fs::remove_file(&tmp_path);
        })?;
        let extent = Arc::new(new_extent(
            id,
            self.max_size.max(size),
            file,
            Arc::clone(&self.io),
        ));
        extents.insert(id, Arc::clone(&extent));
        Ok(extent)
    }

    /// Creates an empty file for an extent that blobs name but whose file is gone (recovery:
    /// reads of those blobs then fail cleanly instead of the extent being unknown).
    pub(crate) fn recreate_missing(&self, id: ExtentId) -> Result<Arc<Extent>> {
        let mut extents = self
            .extents
            .write()
            .map_err(|_| Error::internal("extent table lock poisoned"))?;
        if let Some(extent) = extents.get(&id) {
            return Ok(Arc::clone(extent));
        }
        let path = self.dir.join(format!("{id:08}.ext"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        sync_dir(&self.dir)?;
        let extent = Arc::new(new_extent(id, self.max_size, file, Arc::clone(&self.io)));
        extents.insert(id, Arc::clone(&extent));
        Ok(extent)
    }

    /// Deletes an extent nothing refers to any more. Mappings still held by finished readers'
    /// chunks stay valid: the file's space goes when the last one is dropped.
    pub(crate) fn remove(&self, id: ExtentId) -> Result<()> {
        let removed = self
            .extents
            .write()
            .map_err(|_| Error::internal("extent table lock poisoned"))?
            .remove(&id);
        if removed.is_some() {
            let path = self.dir.join(format!("{id:08}.ext"));
            fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<ExtentId, Arc<Extent>>> {
        // A poisoned lock only means another thread panicked while holding it; the map itself
        // is always consistent (single insert), so keep using it.
        self.extents.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_extent(id: ExtentId, max_size: u64, file: File, io: Arc<dyn ExtentIo>) -> Extent {
    Extent {
        id,
        max_size: AtomicU64::new(max_size),
        file,
        io,
        mapping: OnceLock::new(),
        has_holes: AtomicBool::new(false),
    }
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

/// Reserves disk blocks for a new file of `size` bytes. Filesystems without `fallocate` get a
/// sparse file of the right size instead; a full disk then surfaces as an error on the
/// positioned write.
fn preallocate(io: &dyn ExtentIo, file: &File, size: u64) -> std::io::Result<()> {
    match io.allocate(file, FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(e) if is_unsupported(&e) => io.set_len(file, size),
        Err(e) => Err(e),
    }
}

/// Allocates blocks for a range inside the file (the size never changes).
fn preallocate_range(io: &dyn ExtentIo, file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    match io.allocate(file, FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        Err(e) if is_unsupported(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes a rename or creation inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

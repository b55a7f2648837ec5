//! The only module with `unsafe` code: memory-mapping extent files read-only.
#![allow(unsafe_code)]

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

/// Maps the first `len` bytes of an extent file read-only.
pub(crate) fn map_extent(file: &File, len: u64) -> std::io::Result<Mmap> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: memmap2 requires that the mapped file is not truncated or modified in ways that
    // break Rust's aliasing rules while mapped. Extent files are created at their final size
    // (preallocated) and are never truncated or grown while the data directory's LOCK is held,
    // which this process holds for as long as any mapping exists (the `Space` owning the lock
    // outlives every mapping). Bytes are only read through the mapping in ranges that belong to
    // committed blobs; positioned writes go only to ranges the allocator has handed to a writer,
    // and a range is handed out again only after every reader pinned before it was freed has
    // dropped its chunks (see `space::ReadPin`).
    unsafe { MmapOptions::new().len(len).map(file) }
}

//! The only module with `unsafe` code: memory-mapping extent files read-only.
#![allow(unsafe_code)]

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

/// Maps an extent file read-only at `len` bytes, its maximum size: usually longer than the file,
/// which grows inside the mapping as blobs are written.
///
/// Mapping past the end of the file is allowed; touching a page past it raises `SIGBUS`. So
/// callers touch only bytes already written (which the file holds), and check that the file
/// still holds them with [`crate::extent::Extent::file_len`] just before (an extent truncated
/// under the store).
pub(crate) fn map_extent(file: &File, len: u64) -> std::io::Result<Mmap> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: memmap2 requires that the mapped bytes are not modified while Rust code holds
    // references into them, and that the file is not truncated under the mapping. Within this
    // process both hold: extent files are never shortened while the data directory's LOCK is
    // held (the `Space` owning the lock outlives every mapping); they only grow at their end
    // (`fallocate`), inside this mapping, which is never remapped, and the new bytes are read
    // only after they were written. Bytes are read only in ranges of committed or staged blobs
    // that the reader has pinned (`space::ReadPin`), which were written before the record
    // naming them existed, so the file holds them; positioned writes go only to ranges the
    // allocator handed to a writer, which it hands out again only after every pin that could
    // read them is gone. Truncation by another process is damage from outside: readers check
    // the file's length before touching a range and fail with `io_error` instead of faulting.
    unsafe { MmapOptions::new().len(len).map(file) }
}

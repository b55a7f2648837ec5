//! The only module with `unsafe` code: memory-mapping extent files read-only.
#![allow(unsafe_code)]

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

/// Maps the first `len` bytes of an extent file read-only.
///
/// The mapping may be longer than the file (an extent truncated under the store): callers
/// touch only bytes the file still holds, checked with [`crate::extent::Extent::file_len`]
/// just before, since touching a page past the end of the file raises `SIGBUS`.
pub(crate) fn map_extent(file: &File, len: u64) -> std::io::Result<Mmap> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: memmap2 requires that the mapped bytes are not modified while Rust code holds
    // references into them, and that the file is not truncated under the mapping. Within this
    // process both hold: extent files are never truncated or grown while the data directory's
    // LOCK is held (the `Space` owning the lock outlives every mapping); bytes are read only in
    // ranges of committed or staged blobs that the reader has pinned (`space::ReadPin`), and
    // positioned writes go only to ranges the allocator handed to a writer, which it hands out
    // again only after every pin that could read them is gone. Truncation by another process
    // is damage from outside: readers check the file's length before touching a range and fail
    // with `io_error` instead of faulting.
    unsafe { MmapOptions::new().len(len).map(file) }
}

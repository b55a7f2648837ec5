//! The zero-copy blob reader: a stream of [`Bytes`] that slice the extents' read-only mappings.
//!
//! The blob is read in checksum blocks ([`CHECKSUM_BLOCK`] bytes of the blob). With
//! verification on, a block's CRC is checked over the mapped bytes *before* any of them is
//! handed out, and the chunks handed out are slices of those same mapped bytes; the stream ends
//! with [`Error::Corrupt`] at the first bad block. A range read checks the whole blocks it
//! touches and hands out only the requested bytes.
//!
//! Why the checked bytes stay the delivered bytes: every chunk owns an `Arc` of its mapping and
//! of the reader's [`ReadPin`], and space under a pin is never handed to a writer again (space
//! of a deleted, overwritten or moved blob, and of a dropped staged write, is *retired* behind
//! the pins, not freed). Nothing in the process writes a pinned range, so the bytes a consumer
//! touches later are the bytes that were checked, and never another object's.
//!
//! Why no `SIGBUS`: extent files are never shortened by the store, but an operator or a broken
//! filesystem can truncate one. Touching a mapped page past the end of the file would kill the
//! process, so before a range is touched or handed out the file's current length is checked;
//! a range the file no longer holds fails the read with [`Error::Io`]. (A truncation racing the
//! few microseconds between that check and the touch is not covered: that is outside damage at
//! the moment of reading, which no check can fully close without giving up the mapping.)

use std::ops::Range;
use std::sync::Arc;

use asterope_core::{ByteStream, Error, Key, Result};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use memmap2::{Advice, Mmap};

use crate::alloc::Run;
use crate::blob::{BlobLayout, CHECKSUM_BLOCK};
use crate::space::{ReadPin, Space};

/// A slice of a mapping that keeps the mapping and the reader's pin alive.
struct MappedSlice {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
    _pin: Arc<ReadPin>,
}

impl AsRef<[u8]> for MappedSlice {
    fn as_ref(&self) -> &[u8] {
        self.map.get(self.start..self.end).unwrap_or_default()
    }
}

/// What a reader needs to stream one blob.
pub(crate) struct BlobReader {
    pub(crate) space: Arc<Space>,
    /// Held by every chunk handed out: the blob's space is not reused before all are dropped.
    pub(crate) pin: Arc<ReadPin>,
    pub(crate) layout: BlobLayout,
    pub(crate) size: u64,
}

impl BlobReader {
    /// Streams `range` of the blob; `verify` names the key to report if a block is corrupt.
    /// The stream ends after its first error.
    pub(crate) fn stream(self, range: Range<u64>, verify: Option<Key>) -> ByteStream {
        let verify = verify.filter(|_| {
            u64::try_from(self.layout.block_crcs.len()).ok()
                == Some(self.size.div_ceil(CHECKSUM_BLOCK))
        });
        let blocks = if range.is_empty() {
            0..0
        } else {
            range.start / CHECKSUM_BLOCK..range.end.div_ceil(CHECKSUM_BLOCK)
        };
        let mut failed = false;
        let chunks = blocks
            .map_while(move |block| {
                if failed {
                    return None;
                }
                let block_range =
                    block * CHECKSUM_BLOCK..((block + 1) * CHECKSUM_BLOCK).min(self.size);
                let wanted = range.start.max(block_range.start)..range.end.min(block_range.end);
                let outcome = match &verify {
                    Some(key) => self.verified_block(block, block_range, wanted, key),
                    None => self.slices(wanted),
                };
                failed = outcome.is_err();
                Some(match outcome {
                    Ok(pieces) => pieces.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            })
            .flatten();
        stream::iter(chunks).boxed()
    }

    /// Fails with [`Error::Io`] if an extent file no longer holds bytes of `range` (plus the
    /// rest of the checksum blocks it touches): one `fstat` per run, so that a read known to
    /// fail fails before its first byte is sent.
    pub(crate) fn check_present(&self, range: Range<u64>) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let blocks = range.start / CHECKSUM_BLOCK * CHECKSUM_BLOCK
            ..range
                .end
                .div_ceil(CHECKSUM_BLOCK)
                .saturating_mul(CHECKSUM_BLOCK)
                .min(self.size);
        for (run, offset, len) in pieces(&self.layout.runs, blocks) {
            let file_len = self.space.extents.get(run.extent)?.file_len()?;
            if offset.saturating_add(len) > file_len {
                return Err(truncated(run.extent, offset, len, file_len));
            }
        }
        Ok(())
    }

    /// Checks a whole block's CRC over its mapped bytes, then returns the `wanted` part of
    /// those same bytes.
    fn verified_block(
        &self,
        block: u64,
        block_range: Range<u64>,
        wanted: Range<u64>,
        key: &Key,
    ) -> Result<Vec<Bytes>> {
        let pieces = self.slices(block_range.clone())?;
        let mut crc = crc32fast::Hasher::new();
        for piece in &pieces {
            crc.update(piece);
        }
        let expected = usize::try_from(block)
            .ok()
            .and_then(|b| self.layout.block_crcs.get(b).copied());
        let actual = crc.finalize();
        if expected != Some(actual) {
            return Err(Error::Corrupt {
                key: key.to_string(),
                reason: format!(
                    "block {block} (bytes {}..{}) has CRC {actual:08x}, recorded {:08x}",
                    block_range.start,
                    block_range.end,
                    expected.unwrap_or_default()
                ),
            });
        }
        // Trim the block to the wanted bytes.
        let mut out = Vec::with_capacity(pieces.len());
        let mut at = block_range.start;
        for piece in pieces {
            let piece_range = at..at + piece.len() as u64;
            at = piece_range.end;
            let start = wanted.start.max(piece_range.start);
            let end = wanted.end.min(piece_range.end);
            if start < end {
                let from = usize::try_from(start - piece_range.start).unwrap_or(0);
                let to = usize::try_from(end - piece_range.start).unwrap_or(0);
                out.push(piece.slice(from..to));
            }
        }
        Ok(out)
    }

    /// Zero-copy slices of the mappings covering `range` of the blob, one per run it touches.
    fn slices(&self, range: Range<u64>) -> Result<Vec<Bytes>> {
        let mut out = Vec::new();
        for (run, offset, len) in pieces(&self.layout.runs, range) {
            out.push(self.map_slice(run, offset, len)?);
        }
        Ok(out)
    }

    /// `len` bytes of `run`'s extent at `offset`, once the file is known to still hold them.
    fn map_slice(&self, run: &Run, offset: u64, len: u64) -> Result<Bytes> {
        let extent = self.space.extents.get(run.extent)?;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| out_of_bounds(run.extent, offset))?;
        let file_len = extent.file_len()?;
        if end > file_len {
            return Err(truncated(run.extent, offset, len, file_len));
        }
        if end > extent.max_size() {
            return Err(out_of_bounds(run.extent, offset));
        }
        let map = extent.mapping()?;
        let start = usize::try_from(offset).map_err(|_| out_of_bounds(run.extent, offset))?;
        let end = usize::try_from(end)
            .ok()
            .filter(|&end| end <= map.len())
            .ok_or_else(|| out_of_bounds(run.extent, offset))?;
        // Advice only changes read-ahead; failing to give it is harmless.
        let _ = map.advise_range(Advice::Sequential, start, end - start);
        Ok(Bytes::from_owner(MappedSlice {
            map,
            start,
            end,
            _pin: Arc::clone(&self.pin),
        }))
    }
}

/// The pieces `(run, extent offset, length)` holding `range` of the bytes stored in `runs` (in
/// order).
fn pieces(runs: &[Run], range: Range<u64>) -> impl Iterator<Item = (&Run, u64, u64)> {
    let mut blob_offset = 0u64;
    runs.iter()
        .map_while(move |run| {
            let run_range = blob_offset..blob_offset + run.len;
            blob_offset = run_range.end;
            (run_range.start < range.end).then_some((run, run_range, range.clone()))
        })
        .filter_map(|(run, run_range, range)| {
            let start = range.start.max(run_range.start);
            let end = range.end.min(run_range.end);
            (start < end).then(|| (run, run.offset + (start - run_range.start), end - start))
        })
}

/// Copies `range` of the bytes stored in `runs` (in order) out of their extents with positioned
/// reads (compaction, recovery and integrity checks, which want owned bytes). A file shorter
/// than the runs say (truncated under the store) is an [`Error::Io`], never a crash.
pub(crate) fn read_runs(space: &Space, runs: &[Run], range: Range<u64>) -> Result<Vec<u8>> {
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| Error::internal("read range too large"))?;
    let mut out = vec![0; len];
    let mut filled = 0usize;
    for (run, offset, piece_len) in pieces(runs, range) {
        let piece_len =
            usize::try_from(piece_len).map_err(|_| Error::internal("read range too large"))?;
        let piece = out
            .get_mut(filled..filled + piece_len)
            .ok_or_else(|| Error::internal("read beyond its buffer"))?;
        space.extents.get(run.extent)?.read_at(piece, offset)?;
        filled += piece_len;
    }
    if filled != len {
        return Err(Error::internal(format!(
            "the blob's runs cover {filled} of the {len} bytes asked for"
        )));
    }
    Ok(out)
}

fn out_of_bounds(extent: u32, offset: u64) -> Error {
    Error::internal(format!(
        "run at extent {extent} offset {offset} is out of bounds"
    ))
}

fn truncated(extent: u32, offset: u64, len: u64, file_len: u64) -> Error {
    Error::io(
        format!("reading {len} bytes of extent {extent} at offset {offset}"),
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the file ends at {file_len} (truncated under the store?)"),
        ),
    )
}

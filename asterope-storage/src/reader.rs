//! The zero-copy blob reader: a stream of [`Bytes`] that slice the extents' read-only mappings.
//!
//! Each chunk owns an `Arc` of its mapping and of the reader's [`ReadPin`], so the bytes stay
//! valid (and their space unreused) for as long as the caller keeps any chunk. The blob is read
//! in checksum blocks ([`CHECKSUM_BLOCK`] bytes of the blob); with verification on, each block's
//! CRC is checked *before* any of its bytes are handed out, so a reader never receives a
//! corrupt byte, and the stream ends with [`Error::Corrupt`] at the first bad block. A range read
//! checks the whole blocks it touches and hands out only the requested bytes.

use std::ops::Range;
use std::sync::Arc;

use asterope_core::{ByteStream, Error, Key};
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
    pub(crate) pin: Arc<ReadPin>,
    pub(crate) layout: BlobLayout,
    pub(crate) size: u64,
}

impl BlobReader {
    /// Streams `range` of the blob; `verify` names the key to report if a block is corrupt.
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
        let chunks = blocks.flat_map(move |block| {
            let block_range = block * CHECKSUM_BLOCK..((block + 1) * CHECKSUM_BLOCK).min(self.size);
            let wanted = range.start.max(block_range.start)..range.end.min(block_range.end);
            let outcome = match &verify {
                Some(key) => self.verified_block(block, block_range, wanted, key),
                None => self.slices(wanted),
            };
            match outcome {
                Ok(pieces) => pieces.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            }
        });
        stream::iter(chunks).boxed()
    }

    /// Reads a whole block, checks its CRC, and returns the `wanted` part of it.
    fn verified_block(
        &self,
        block: u64,
        block_range: Range<u64>,
        wanted: Range<u64>,
        key: &Key,
    ) -> asterope_core::Result<Vec<Bytes>> {
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

    /// Zero-copy slices of the mappings covering `range` of the blob.
    fn slices(&self, range: Range<u64>) -> asterope_core::Result<Vec<Bytes>> {
        let mut out = Vec::new();
        let mut blob_offset = 0u64;
        for run in &self.layout.runs {
            let run_range = blob_offset..blob_offset + run.len;
            blob_offset = run_range.end;
            let start = range.start.max(run_range.start);
            let end = range.end.min(run_range.end);
            if start < end {
                out.push(self.map_slice(
                    run,
                    run.offset + (start - run_range.start),
                    end - start,
                )?);
            }
            if blob_offset >= range.end {
                break;
            }
        }
        Ok(out)
    }

    fn map_slice(&self, run: &Run, offset: u64, len: u64) -> asterope_core::Result<Bytes> {
        let extent = run.extent;
        let map = self.space.extents.get(extent)?.mapping()?;
        let start = usize::try_from(offset).map_err(|_| out_of_bounds(extent, offset))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= map.len())
            .ok_or_else(|| out_of_bounds(extent, offset))?;
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

fn out_of_bounds(extent: u32, offset: u64) -> Error {
    Error::internal(format!(
        "run at extent {extent} offset {offset} is out of bounds"
    ))
}

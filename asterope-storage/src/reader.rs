//! The blob reader: a stream of [`Bytes`] read from the extents with positioned reads.
//!
//! The blob is read in checksum blocks ([`CHECKSUM_BLOCK`] bytes of the blob). Each block is
//! copied with `pread` into a buffer of its own, and with verification on its CRC is checked
//! over **that buffer**, which is then what the caller gets (sliced to the requested range,
//! without another copy). So the bytes checked are exactly the bytes delivered: nothing can
//! change them afterwards, and the stream ends with [`Error::Corrupt`] at the first bad block.
//!
//! The reader's [`ReadPin`] keeps the blob's space from being reused until the reader is done,
//! so every `pread` reads bytes of the object named, committed or staged, and not of a later
//! blob written over freed space; the CRC check is a second line of defence on top of that.
//!
//! Why copy rather than hand out slices of a memory mapping (as this module once did): a
//! mapped slice is only as good as the file under it *when the consumer touches it*, which may
//! be long after any check. Bytes verified at one moment and sent at another are not verified
//! bytes, and a file truncated or shrunk under a mapping (by an operator, a broken filesystem,
//! a full disk on a sparse file) kills the process with `SIGBUS` on the next touch, with no way
//! to turn it into an error. `pread` turns a short file into an `io_error` for that one read,
//! and the copy costs one pass over page-cache memory per byte, far below the SHA-256, TLS or
//! socket costs a delivered byte already pays. Memory stays bounded by one block per chunk the
//! consumer holds.

use std::ops::Range;
use std::sync::Arc;

use asterope_core::{ByteStream, Error, Key, Result};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::blob::{BlobLayout, CHECKSUM_BLOCK};
use crate::space::{ReadPin, Space};

/// What a reader needs to stream one blob.
pub(crate) struct BlobReader {
    pub(crate) space: Arc<Space>,
    /// Held by the stream until it is dropped: the blob's space is not reused before.
    pub(crate) _pin: Arc<ReadPin>,
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
        let chunks = blocks.map_while(move |block| {
            if failed {
                return None;
            }
            let block_range = block * CHECKSUM_BLOCK..((block + 1) * CHECKSUM_BLOCK).min(self.size);
            let wanted = range.start.max(block_range.start)..range.end.min(block_range.end);
            let chunk = match &verify {
                Some(key) => self.verified_block(block, block_range, wanted, key),
                None => self.read(wanted).map(Bytes::from),
            };
            failed = chunk.is_err();
            Some(chunk)
        });
        stream::iter(chunks).boxed()
    }

    /// Reads a whole block, checks its CRC over the bytes read, and returns the `wanted` part
    /// of those same bytes.
    fn verified_block(
        &self,
        block: u64,
        block_range: Range<u64>,
        wanted: Range<u64>,
        key: &Key,
    ) -> Result<Bytes> {
        let bytes = Bytes::from(self.read(block_range.clone())?);
        let expected = usize::try_from(block)
            .ok()
            .and_then(|b| self.layout.block_crcs.get(b).copied());
        let actual = crc32fast::hash(&bytes);
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
        let from = usize::try_from(wanted.start - block_range.start).unwrap_or(0);
        let to = usize::try_from(wanted.end - block_range.start).unwrap_or(0);
        Ok(bytes.slice(from..to.min(bytes.len())))
    }

    /// Copies `range` of the blob out of its extents.
    fn read(&self, range: Range<u64>) -> Result<Vec<u8>> {
        read_runs(&self.space, &self.layout.runs, range)
    }
}

/// Copies `range` of the bytes stored in `runs` (in order) out of their extents. A file shorter
/// than the runs say (truncated under the store) is an [`Error::Io`], never a crash.
pub(crate) fn read_runs(
    space: &Space,
    runs: &[crate::alloc::Run],
    range: Range<u64>,
) -> Result<Vec<u8>> {
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| Error::internal("read range too large"))?;
    let mut out = vec![0; len];
    let mut filled = 0usize;
    let mut blob_offset = 0u64;
    for run in runs {
        let run_range = blob_offset..blob_offset + run.len;
        blob_offset = run_range.end;
        let start = range.start.max(run_range.start);
        let end = range.end.min(run_range.end);
        if start < end {
            let piece_len = usize::try_from(end - start)
                .map_err(|_| Error::internal("read range too large"))?;
            let piece = out
                .get_mut(filled..filled + piece_len)
                .ok_or_else(|| Error::internal("read beyond its buffer"))?;
            let extent = space.extents.get(run.extent)?;
            extent.read_at(piece, run.offset + (start - run_range.start))?;
            filled += piece_len;
        }
        if blob_offset >= range.end {
            break;
        }
    }
    if filled != len {
        return Err(Error::internal(format!(
            "the blob's runs cover {filled} of the {len} bytes asked for"
        )));
    }
    Ok(out)
}

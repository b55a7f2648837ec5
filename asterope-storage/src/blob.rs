//! Stored blobs: where a blob's bytes are, their block checksums, and how many versions share
//! them.
//!
//! Versions do not carry their bytes' location: they name a [`BlobId`], and the blob table maps
//! it to a [`BlobEntry`]. That indirection is what lets several keys (content deduplication) and
//! several versions of one key (metadata updates) share one copy of the bytes, and lets
//! compaction move a blob by rewriting one entry. An entry's `refs` counts the stored versions
//! that name it; it changes in the same metadata batch as the versions, so it is exact after any
//! crash (and is recounted on open anyway). At zero the entry goes and its runs are retired.

use asterope_core::{Result, Sha256Digest};
use asterope_serialization::{decode_versioned, encode_versioned};
use serde::{Deserialize, Serialize};

use crate::alloc::Run;

/// Format version of [`BlobEntry`] encodings.
const BLOB_FORMAT: u8 = 1;

/// Bytes covered by one block checksum. Reads verify whole blocks before handing them out.
pub(crate) const CHECKSUM_BLOCK: u64 = 1 << 20;

/// Identifier of a stored blob (a random UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct BlobId(#[serde(with = "serde_bytes")] pub(crate) [u8; 16]);

impl BlobId {
    pub(crate) fn random() -> BlobId {
        BlobId(*uuid::Uuid::new_v4().as_bytes())
    }

    /// The id as hex, for messages.
    pub(crate) fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a blob's bytes are and how to check them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlobLayout {
    /// The bytes, in order.
    pub(crate) runs: Vec<Run>,
    /// CRC-32 of each [`CHECKSUM_BLOCK`] of the blob (the last one may be shorter).
    pub(crate) block_crcs: Vec<u32>,
}

/// One stored blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BlobEntry {
    pub(crate) size: u64,
    pub(crate) sha256: Sha256Digest,
    pub(crate) layout: BlobLayout,
    /// Stored versions naming this blob.
    pub(crate) refs: u64,
}

impl BlobEntry {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        encode_versioned(BLOB_FORMAT, self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<BlobEntry> {
        decode_versioned(BLOB_FORMAT, bytes, "blob entry")
    }
}

/// Computes block checksums over a byte sequence that arrives in arbitrary pieces.
#[derive(Debug, Default)]
pub(crate) struct BlockChecksummer {
    current: crc32fast::Hasher,
    filled: u64,
    done: Vec<u32>,
}

impl BlockChecksummer {
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = CHECKSUM_BLOCK - self.filled;
            let n = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
            let (head, rest) = data.split_at(n);
            self.current.update(head);
            self.filled += n as u64;
            data = rest;
            if self.filled == CHECKSUM_BLOCK {
                let block = std::mem::take(&mut self.current);
                self.done.push(block.finalize());
                self.filled = 0;
            }
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u32> {
        if self.filled > 0 {
            self.done.push(self.current.finalize());
        }
        self.done
    }
}

/// The block checksums of a whole buffer.
pub(crate) fn block_crcs(data: &[u8]) -> Vec<u32> {
    let mut summer = BlockChecksummer::default();
    summer.update(data);
    summer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_checksums_do_not_depend_on_how_bytes_arrive() {
        let data: Vec<u8> = (0..(2 * CHECKSUM_BLOCK + 17))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let whole = block_crcs(&data);
        assert_eq!(whole.len(), 3);
        let mut pieces = BlockChecksummer::default();
        for piece in data.chunks(333_333) {
            pieces.update(piece);
        }
        assert_eq!(pieces.finish(), whole);
        assert_eq!(whole[0], crc32fast::hash(&data[..1 << 20]));
        assert!(block_crcs(&[]).is_empty());
    }
}

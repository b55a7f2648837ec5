//! The zero-copy blob reader: a stream of [`Bytes`] that slice the extents' read-only mappings.
//!
//! Each chunk owns an `Arc` of its mapping and of the reader's [`ReadPin`], so the bytes stay
//! valid (and their space unreused) for as long as the caller keeps any chunk. Optional
//! verification hashes the chunks on a blocking thread alongside the consumer and ends the stream
//! with [`Error::Corrupt`] instead of a clean end when the digest does not match.

use std::ops::Range;
use std::sync::Arc;

use asterope_core::{ByteStream, Error, Key, Sha256Digest};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use memmap2::{Advice, Mmap};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::alloc::Run;
use crate::space::{ReadPin, Space};

/// Largest chunk handed out.
pub(crate) const READ_CHUNK: u64 = 1 << 20;
/// Chunks queued for the verifying hasher.
const HASH_QUEUE: usize = 8;

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

/// Streams `range` of the blob made of `runs`.
pub(crate) fn read_stream(
    space: Arc<Space>,
    pin: Arc<ReadPin>,
    runs: Vec<Run>,
    range: Range<u64>,
) -> ByteStream {
    let mut pieces = Vec::new();
    let mut blob_offset = 0u64;
    for run in runs {
        let run_range = blob_offset..blob_offset + run.len;
        blob_offset += run.len;
        let start = range.start.max(run_range.start);
        let end = range.end.min(run_range.end);
        let mut at = start;
        while at < end {
            let len = (end - at).min(READ_CHUNK);
            pieces.push((run.extent, run.offset + (at - run_range.start), len));
            at += len;
        }
    }
    let chunks = pieces.into_iter().map(move |(extent, offset, len)| {
        let map = space.extents.get(extent)?.mapping()?;
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
            _pin: Arc::clone(&pin),
        }))
    });
    stream::iter(chunks).boxed()
}

fn out_of_bounds(extent: u32, offset: u64) -> Error {
    Error::internal(format!(
        "run at extent {extent} offset {offset} is out of bounds"
    ))
}

/// Wraps a whole-blob stream so that it ends with [`Error::Corrupt`] if the bytes do not hash to
/// `expected`.
pub(crate) fn verify_stream(inner: ByteStream, key: Key, expected: Sha256Digest) -> ByteStream {
    let (tx, mut rx) = mpsc::channel::<Bytes>(HASH_QUEUE);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
        }
        Sha256Digest(hasher.finalize().into())
    });
    struct State {
        inner: ByteStream,
        tx: Option<mpsc::Sender<Bytes>>,
        hasher: Option<tokio::task::JoinHandle<Sha256Digest>>,
        key: Key,
        expected: Sha256Digest,
    }
    let state = State {
        inner,
        tx: Some(tx),
        hasher: Some(hasher),
        key,
        expected,
    };
    stream::unfold(state, |mut state| async move {
        let hasher = state.hasher.as_ref()?;
        match state.inner.next().await {
            Some(Ok(chunk)) => {
                if let Some(tx) = &state.tx {
                    if tx.send(chunk.clone()).await.is_err() {
                        state.tx = None;
                    }
                }
                Some((Ok(chunk), state))
            }
            Some(Err(e)) => {
                hasher.abort();
                state.hasher = None;
                Some((Err(e), state))
            }
            None => {
                state.tx = None;
                let hasher = state.hasher.take()?;
                let outcome = match hasher.await {
                    Ok(actual) if actual == state.expected => return None,
                    Ok(actual) => Error::Corrupt {
                        key: state.key.to_string(),
                        reason: format!(
                            "stored bytes hash to {actual}, recorded sha256 is {}",
                            state.expected
                        ),
                    },
                    Err(e) => Error::internal(format!("verifying hasher failed: {e}")),
                };
                Some((Err(outcome), state))
            }
        }
    })
    .boxed()
}

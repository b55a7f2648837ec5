//! The streaming blob writer: body chunks in, durable runs plus SHA-256 and block checksums out.
//!
//! Three stages overlap so that two cores give the disk and the hash one each:
//! the caller's task pulls chunks from the body and coalesces small ones into [`WRITE_CHUNK`]
//! pieces; a blocking writer thread copies each piece into the extent with a positioned write;
//! a blocking hasher thread computes SHA-256 and the block CRCs over the same pieces (shared, not copied). Queues are
//! bounded, so memory is a few chunks whatever the blob size, and a slow disk slows the sender.

use std::sync::Arc;

use asterope_core::{ByteStream, Error, Result, Sha256Digest};
use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::alloc::{round_up, Run};
use crate::blob::{block_crcs, BlockChecksummer};
use crate::extent::Extent;
use crate::space::{Reservation, Space, WRITE_BUDGET_UNIT, WRITE_BUDGET_UNITS};

/// Chunks smaller than this are coalesced before they are written and hashed.
pub(crate) const WRITE_CHUNK: usize = 1 << 20;
/// Pieces in flight per stage.
const QUEUE_DEPTH: usize = 4;
/// Space requested per allocation when the final size is unknown grows with the blob, between
/// these bounds, so small blobs stay compact and large ones have few runs.
const MIN_GROWTH: u64 = 1 << 20;
const MAX_GROWTH: u64 = 256 << 20;

/// A blob whose bytes are durable but not yet referenced by a committed record.
#[derive(Debug)]
pub(crate) struct WrittenBlob {
    pub(crate) reservation: Reservation,
    pub(crate) size: u64,
    pub(crate) sha256: Sha256Digest,
    pub(crate) block_crcs: Vec<u32>,
}

/// Streams `body` into newly allocated space. `expected_size`, when given, sizes the allocation
/// and is enforced: a body that ends early or runs long is refused as truncated.
pub(crate) async fn write_blob(
    space: Arc<Space>,
    mut body: ByteStream,
    expected_size: Option<u64>,
) -> Result<WrittenBlob> {
    // A body that arrives as one small chunk (or none) skips the pipeline: one blocking task
    // hashes and writes it, and an empty body touches no disk at all.
    let first = body.next().await.transpose()?;
    let second = match first {
        Some(_) => body.next().await.transpose()?,
        None => None,
    };
    let single = match (first, second) {
        (None, _) => Bytes::new(),
        (Some(chunk), None) if chunk.len() <= WRITE_CHUNK => chunk,
        (first, second) => {
            let head = stream::iter(first.into_iter().chain(second).map(Ok));
            return write_pipelined(space, head.chain(body).boxed(), expected_size).await;
        }
    };
    let size = single.len() as u64;
    match expected_size {
        Some(expected) if size > expected => {
            return Err(Error::Truncated {
                reason: format!("received more than the announced {expected} bytes"),
            })
        }
        Some(expected) if size < expected => {
            return Err(Error::Truncated {
                reason: format!("received {size} of the announced {expected} bytes"),
            })
        }
        _ => {}
    }
    if single.is_empty() {
        return Ok(WrittenBlob {
            reservation: Reservation::new(space),
            size: 0,
            sha256: Sha256Digest::EMPTY,
            block_crcs: Vec::new(),
        });
    }
    tokio::task::spawn_blocking(move || {
        let sha256 = Sha256Digest(Sha256::digest(&single).into());
        let block_crcs = block_crcs(&single);
        let mut writer = RunWriter::new(space, Some(size));
        writer.write(&single)?;
        let (reservation, size) = writer.finish()?;
        Ok(WrittenBlob {
            reservation,
            size,
            sha256,
            block_crcs,
        })
    })
    .await
    .map_err(|e| Error::internal(format!("blob writer failed: {e}")))?
}

/// Streams a multi-chunk body through the writer and hasher threads.
async fn write_pipelined(
    space: Arc<Space>,
    mut body: ByteStream,
    expected_size: Option<u64>,
) -> Result<WrittenBlob> {
    let (write_tx, mut write_rx) = mpsc::channel::<Option<Piece>>(QUEUE_DEPTH);
    let (hash_tx, mut hash_rx) = mpsc::channel::<Piece>(QUEUE_DEPTH);
    let budget = space.write_budget();
    let writer = tokio::task::spawn_blocking(move || {
        let mut writer = RunWriter::new(space, expected_size);
        loop {
            match write_rx.blocking_recv() {
                Some(Some((piece, _budget))) => writer.write(&piece)?,
                Some(None) => return writer.finish(),
                None => {
                    return Err(Error::Truncated {
                        reason: "the upload was abandoned before its end".into(),
                    })
                }
            }
        }
    });
    let hasher = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let mut blocks = BlockChecksummer::default();
        while let Some((piece, _budget)) = hash_rx.blocking_recv() {
            hasher.update(&piece);
            blocks.update(&piece);
        }
        (Sha256Digest(hasher.finalize().into()), blocks.finish())
    });

    let mut received: u64 = 0;
    let mut pending = BytesMut::new();
    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if let Some(expected) = expected_size.filter(|&e| received > e) {
                return Err(Error::Truncated {
                    reason: format!("received more than the announced {expected} bytes"),
                });
            }
            let piece = if pending.is_empty() && chunk.len() >= WRITE_CHUNK / 4 {
                chunk
            } else {
                pending.extend_from_slice(&chunk);
                if pending.len() < WRITE_CHUNK {
                    continue;
                }
                pending.split().freeze()
            };
            send(&budget, &write_tx, &hash_tx, piece).await?;
        }
        if !pending.is_empty() {
            send(&budget, &write_tx, &hash_tx, pending.split().freeze()).await?;
        }
        if let Some(expected) = expected_size.filter(|&e| received != e) {
            return Err(Error::Truncated {
                reason: format!("received {received} of the announced {expected} bytes"),
            });
        }
        write_tx.send(None).await.map_err(|_| writer_gone())
    }
    .await;
    drop(hash_tx);
    drop(write_tx);
    // Dropping the writer's queue without the end marker makes it give its space back.
    let written = writer
        .await
        .map_err(|e| Error::internal(format!("blob writer failed: {e}")))?;
    // A writer error (full disk, I/O) explains a failed send better than the send does.
    let (reservation, size) = match (outcome, written) {
        (Ok(()), Ok(done)) => done,
        (Err(e), Ok(_)) | (Ok(()), Err(e)) => return Err(e),
        (Err(e), Err(writer_error)) => {
            return Err(if matches!(e, Error::Internal { .. }) {
                writer_error
            } else {
                e
            })
        }
    };
    let (sha256, block_crcs) = hasher
        .await
        .map_err(|e| Error::internal(format!("blob hasher failed: {e}")))?;
    Ok(WrittenBlob {
        reservation,
        size,
        sha256,
        block_crcs,
    })
}

/// A piece of a body on its way to the writer and the hasher, with its share of the process-wide
/// write budget: released when both are done with it.
type Piece = (Bytes, Arc<OwnedSemaphorePermit>);

async fn send(
    budget: &Arc<Semaphore>,
    write_tx: &mpsc::Sender<Option<Piece>>,
    hash_tx: &mpsc::Sender<Piece>,
    piece: Bytes,
) -> Result<()> {
    let units = u32::try_from(piece.len().div_ceil(WRITE_BUDGET_UNIT))
        .unwrap_or(u32::MAX)
        .clamp(1, WRITE_BUDGET_UNITS);
    let permit = Arc::new(
        Arc::clone(budget)
            .acquire_many_owned(units)
            .await
            .map_err(|_| Error::internal("write budget closed"))?,
    );
    write_tx
        .send(Some((piece.clone(), Arc::clone(&permit))))
        .await
        .map_err(|_| writer_gone())?;
    hash_tx
        .send((piece, permit))
        .await
        .map_err(|_| Error::internal("blob hasher stopped"))
}

fn writer_gone() -> Error {
    Error::internal("blob writer stopped")
}

/// Writes a byte sequence into a growing list of runs (runs to the writer thread).
struct RunWriter {
    space: Arc<Space>,
    reservation: Reservation,
    /// Extent of the last run and bytes already written into it.
    current: Option<(Arc<Extent>, u64)>,
    written: u64,
    expected_size: Option<u64>,
    touched: Vec<Arc<Extent>>,
}

impl RunWriter {
    fn new(space: Arc<Space>, expected_size: Option<u64>) -> RunWriter {
        RunWriter {
            reservation: Reservation::new(Arc::clone(&space)),
            space,
            current: None,
            written: 0,
            expected_size,
            touched: Vec::new(),
        }
    }

    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let room = match (&self.current, self.reservation.runs().last()) {
                (Some((_, filled)), Some(run)) => run.len - filled,
                _ => 0,
            };
            if room == 0 {
                self.grow()?;
                continue;
            }
            let (Some((extent, filled)), Some(run)) =
                (&mut self.current, self.reservation.runs().last())
            else {
                return Err(Error::internal("writer has no current run"));
            };
            let n = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
            let (head, rest) = data.split_at(n);
            extent.write_at(head, run.offset + *filled)?;
            *filled += n as u64;
            self.written += n as u64;
            data = rest;
        }
        Ok(())
    }

    /// Allocates the next run, merging it into the last one when it continues it.
    fn grow(&mut self) -> Result<()> {
        let want = match self.expected_size {
            Some(size) if size > self.written => size - self.written,
            _ => self.written.clamp(MIN_GROWTH, MAX_GROWTH),
        };
        let (run, extent) = self.space.allocate(want)?;
        if !self.touched.iter().any(|t| t.id == extent.id) {
            self.touched.push(Arc::clone(&extent));
        }
        let runs = self.reservation.runs_mut();
        match (runs.last_mut(), &mut self.current) {
            (Some(last), Some((_, filled)))
                if last.extent == run.extent && last.offset + last.len == run.offset =>
            {
                last.len += run.len;
                debug_assert!(*filled <= last.len);
            }
            _ => {
                runs.push(run);
                self.current = Some((extent, 0));
            }
        }
        Ok(())
    }

    /// Gives back the unused tail, makes the bytes durable, and returns the exact runs.
    fn finish(mut self) -> Result<(Reservation, u64)> {
        if let (Some((_, filled)), Some(last)) =
            (&self.current, self.reservation.runs_mut().last_mut())
        {
            let used = round_up(*filled);
            let tail = Run {
                extent: last.extent,
                offset: last.offset + used,
                len: last.len - used,
            };
            last.len = *filled;
            if tail.len > 0 {
                self.space.free(&[tail]);
            }
        }
        self.reservation.runs_mut().retain(|run| run.len > 0);
        for extent in &self.touched {
            extent.sync()?;
        }
        Ok((self.reservation, self.written))
    }
}

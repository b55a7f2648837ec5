//! Building blob bodies from files and readers, and draining them into writers.

use std::fs::File;
use std::io::{Read, Write};

use asterope_core::{ByteStream, Error, Result};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

/// Chunk size used when reading files and pipes.
pub const FILE_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the consumer.
const READ_AHEAD: usize = 4;

/// Streams a reader (a file, stdin...) as [`FILE_CHUNK`]-sized chunks, read on a blocking thread
/// a few chunks ahead of the consumer. Must be called inside a tokio runtime.
pub fn reader_body<R: Read + Send + 'static>(mut reader: R, what: String) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; FILE_CHUNK];
        let mut filled = 0;
        let outcome = loop {
            let Some(free) = buf.get_mut(filled..) else {
                break Ok(());
            };
            match reader.read(free) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(Error::io(format!("reading {what}"), e)),
            }
        };
        let item = match outcome {
            Ok(()) if filled == 0 => return,
            Ok(()) => {
                buf.truncate(filled);
                Ok(Bytes::from(buf))
            }
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    });
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// Streams a file.
pub fn file_body(file: File, what: String) -> ByteStream {
    reader_body(file, what)
}

/// Writes every chunk of `body` to `out`, calling `progress` with each chunk's length. Returns the
/// number of bytes written.
pub async fn drain_into(
    mut body: ByteStream,
    out: &mut dyn Write,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        out.write_all(&chunk)
            .map_err(|e| Error::io("writing the output", e))?;
        total += chunk.len() as u64;
        progress(chunk.len() as u64);
    }
    out.flush()
        .map_err(|e| Error::io("writing the output", e))?;
    Ok(total)
}

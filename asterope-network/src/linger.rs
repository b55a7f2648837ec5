//! Lingering close of HTTP/1.1 connections: an early reply reaches the client before the
//! socket closes.
//!
//! A server may answer an upload before reading all of it (`storage_full`, a wrong token, a
//! checksum mismatch seen early). If it then simply closed the socket, the kernel would answer
//! the body bytes still arriving with a TCP reset, and a client that had not yet read the reply
//! loses it (its socket reports "connection reset" instead). So, as nginx's `lingering_close`
//! does, an HTTP/1.1 connection that ends shuts down its write half once the reply is flushed
//! (the client reads the reply and then end of stream) and reads and discards what the client
//! still sends, until the client closes or a bound is reached: [`LINGER_SILENCE`],
//! [`LINGER_TIME`] and [`LINGER_BYTES`].
//!
//! A lingering connection has no request in progress, so it never holds its connection slot
//! against newcomers: when slots run out it is the idle connection whose slot a newcomer takes,
//! and being evicted (or the server stopping) ends the lingering at once.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A client that sends nothing for this long is not coming back to read: close. Long enough
/// for a client on a slow path to see the reply and stop; nginx's `lingering_timeout` default.
pub(crate) const LINGER_SILENCE: Duration = Duration::from_secs(5);

/// Lingering ends after this long however the client behaves (nginx's `lingering_time`
/// default); a client still sending by then has had ample time to read the reply.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(30);

/// Lingering ends after discarding this many bytes: a fast client that keeps sending a large
/// body after the reply costs bounded bandwidth (the reply was in its receive buffer long
/// before this much arrived), and a client that never stops is cut off.
pub(crate) const LINGER_BYTES: u64 = 64 << 20;

/// Why lingering ended (for the connection's log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LingerEnd {
    /// The client closed its side (or the socket failed): the normal end.
    ClientClosed,
    /// [`LINGER_SILENCE`] passed without data.
    Silence,
    /// [`LINGER_TIME`] passed.
    Time,
    /// [`LINGER_BYTES`] were discarded.
    Bytes,
    /// `cut_short` completed (eviction or server shutdown).
    CutShort,
}

/// Shuts down the write half of `io` (flushing what is buffered) and reads and discards what
/// the peer sends until it closes, a bound is reached or `cut_short` completes; `already_read`
/// counts bytes the HTTP layer had read and not used. `io` is dropped (closed) on return.
pub(crate) async fn linger<IO>(
    mut io: IO,
    already_read: usize,
    cut_short: impl Future<Output = ()>,
) -> LingerEnd
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let discard = async {
        if io.shutdown().await.is_err() {
            return LingerEnd::ClientClosed;
        }
        let mut discarded = u64::try_from(already_read).unwrap_or(u64::MAX);
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            if discarded >= LINGER_BYTES {
                return LingerEnd::Bytes;
            }
            match tokio::time::timeout(LINGER_SILENCE, io.read(&mut buffer)).await {
                Err(_) => return LingerEnd::Silence,
                Ok(Ok(0) | Err(_)) => return LingerEnd::ClientClosed,
                Ok(Ok(n)) => discarded += n as u64,
            }
        }
    };
    tokio::select! {
        end = tokio::time::timeout(LINGER_TIME, discard) => end.unwrap_or(LingerEnd::Time),
        () = cut_short => LingerEnd::CutShort,
    }
}

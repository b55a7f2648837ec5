//! Which sockets become connections: the handshake deadline, the bound on sockets still
//! handshaking, and connection slots that idle connections give up to newcomers.
//!
//! A socket costs the server a file descriptor and a task before its peer has proved anything,
//! so nothing it has not yet earned may be something others wait for. Every accepted socket is
//! *pending* until it has completed its TLS handshake (if any) and sent the HTTP/2 client
//! preface, both within [`ServerConfig::handshake_timeout`](crate::ServerConfig); at most
//! `max_pending_connections` sockets are pending at once, and a newcomer beyond that closes the
//! oldest pending one (an idle socket has had the longest to speak; a real client's handshake
//! takes milliseconds). Only then does the connection take one of `max_connections` slots. A
//! connection that has no request in progress does not hold its slot against others: when the
//! slots are all taken, a newcomer makes the connection idle the longest shut down (GOAWAY, as
//! its idle timeout would), and connections idle for `connection_idle_timeout` close anyway.
//! Idle sockets, idle TLS sockets and idle HTTP/2 connections therefore cannot lock anyone out.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// The HTTP/2 client connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sockets still handshaking, oldest first, each with the signal that closes it.
#[derive(Debug)]
pub(crate) struct Pending {
    waiting: Mutex<BTreeMap<u64, Arc<Notify>>>,
    next_id: AtomicU64,
    capacity: usize,
}

/// A pending socket's place; leaving it (handshake done, failed or timed out) frees the place.
#[derive(Debug)]
pub(crate) struct PendingTicket<'a> {
    pending: &'a Pending,
    id: u64,
    /// Notified when a newer socket needs the place.
    pub(crate) evicted: Arc<Notify>,
}

impl Pending {
    pub(crate) fn new(capacity: usize) -> Pending {
        Pending {
            waiting: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Enters a new socket, closing the oldest pending ones beyond the capacity.
    pub(crate) fn enter(&self) -> PendingTicket<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        let mut waiting = lock(&self.waiting);
        waiting.insert(id, Arc::clone(&evicted));
        while waiting.len() > self.capacity {
            if let Some((_, oldest)) = waiting.pop_first() {
                // `notify_one` keeps the wake-up for a task not yet waiting on it.
                oldest.notify_one();
            }
        }
        PendingTicket {
            pending: self,
            id,
            evicted,
        }
    }
}

impl Drop for PendingTicket<'_> {
    fn drop(&mut self) {
        lock(&self.pending.waiting).remove(&self.id);
    }
}

/// Whether a connection is serving a request, and since when it has not been.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    /// Set once asked to shut down, so that each newcomer frees a different connection.
    evicting: AtomicBool,
    /// Notified when the connection should shut down to free its slot.
    pub(crate) evicted: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicting: AtomicBool::new(false),
            evicted: Notify::new(),
        }
    }

    /// Marks a request in progress until the returned guard is dropped (keep it alive with
    /// the response body, so a long download counts as activity).
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(self))
    }

    /// Since when the connection has had no request in progress; `None` while it has one.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        let since = *lock(&self.idle_since);
        (self.in_flight.load(Ordering::Acquire) == 0).then_some(since)
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        *lock(&self.0.idle_since) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Established connections, for finding the one idle the longest.
#[derive(Debug, Default)]
pub(crate) struct Established {
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// An established connection's registration; dropping it unregisters the connection.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    established: &'a Established,
    id: u64,
    pub(crate) activity: Arc<Activity>,
}

impl Established {
    pub(crate) fn register(&self) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        lock(&self.connections).insert(id, Arc::clone(&activity));
        Registration {
            established: self,
            id,
            activity,
        }
    }

    /// Asks the connection idle the longest to shut down; false if every one is busy.
    pub(crate) fn evict_idlest(&self) -> bool {
        let connections = lock(&self.connections);
        let idlest = connections
            .values()
            .filter(|a| !a.evicting.load(Ordering::Acquire))
            .filter_map(|a| Some((a.idle_since()?, a)))
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, activity)) => {
                activity.evicting.store(true, Ordering::Release);
                activity.evicted.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.established.connections).remove(&self.id);
    }
}

/// Reads the HTTP/2 client preface; the stream returned replays it to the HTTP/2 layer.
pub(crate) async fn read_preface<IO>(mut io: IO) -> std::io::Result<Replayed<IO>>
where
    IO: AsyncRead + Unpin,
{
    let mut preface = [0u8; PREFACE.len()];
    io.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an HTTP/2 client preface (the server speaks HTTP/2 only)",
        ));
    }
    Ok(Replayed { io, replayed: 0 })
}

/// A stream whose first bytes, already read, were the preface.
#[derive(Debug)]
pub(crate) struct Replayed<IO> {
    io: IO,
    /// How much of the preface has been handed on.
    replayed: usize,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Replayed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let rest = PREFACE.get(self.replayed..).unwrap_or_default();
        if rest.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(rest.get(..n).unwrap_or_default());
        self.replayed += n;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Replayed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn a_newcomer_beyond_capacity_evicts_the_oldest_pending_socket() {
        let pending = Pending::new(2);
        let first = pending.enter();
        let second = pending.enter();
        let third = pending.enter();
        // The first was told to close (its stored notification completes at once).
        let evicted = Arc::clone(&first.evicted);
        let notified = evicted.notified();
        futures::pin_mut!(notified);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(notified.as_mut().poll(&mut cx).is_ready());
        drop((first, second, third));
        assert!(lock(&pending.waiting).is_empty());
    }

    #[test]
    fn only_idle_connections_are_evicted() {
        let established = Established::default();
        let busy = established.register();
        let _request = busy.activity.begin();
        assert!(!established.evict_idlest());
        let idle = established.register();
        assert!(established.evict_idlest());
        // The one already asked to go is not asked again.
        assert!(!established.evict_idlest());
        drop(idle);
    }
}

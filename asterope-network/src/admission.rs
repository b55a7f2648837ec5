//! Which sockets become connections: the handshake deadline, the bound on sockets still
//! handshaking, and connection slots that idle connections give up to newcomers.
//!
//! A socket costs the server a file descriptor and a task before its peer has proved anything,
//! so nothing it has not yet earned may be something others wait for. Every accepted socket is
//! *pending* until it has completed its TLS handshake (if any) and sent the HTTP/2 client
//! preface or a complete HTTP/1.1 request head (which tells the protocol apart), both within
//! [`ServerConfig::handshake_timeout`](crate::ServerConfig); at most `max_pending_connections`
//! sockets are pending at once, and a newcomer beyond that closes the oldest pending one (an idle
//! socket has had the longest to speak; a real client's handshake takes milliseconds); likewise
//! when the request heads pending HTTP/1.1 sockets have sent exceed a byte budget together. Only
//! then does the connection take one of `max_connections` slots. A connection that has no
//! request in progress does not hold its slot against others: when the slots are all taken, a
//! newcomer takes the slot of the connection idle the longest at once and that connection is
//! shut down (GOAWAY, as its idle timeout would, then closed shortly even if its peer never
//! answers), and connections idle for `connection_idle_timeout` close anyway. Idle sockets,
//! idle TLS sockets and idle HTTP/2 or HTTP/1.1 connections therefore cannot lock anyone out.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// The HTTP/2 client connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sockets still handshaking, oldest first, each with the signal that closes it and the
/// request head bytes it has made the server hold.
#[derive(Debug)]
pub(crate) struct Pending {
    waiting: Mutex<Waiting>,
    next_id: AtomicU64,
    capacity: usize,
    /// Request head bytes all pending sockets together may make the server hold.
    byte_budget: usize,
}

#[derive(Debug, Default)]
struct Waiting {
    sockets: BTreeMap<u64, (Arc<Notify>, usize)>,
    bytes: usize,
}

impl Waiting {
    /// Closes the oldest sockets until at most `capacity` remain holding at most `budget`
    /// bytes; an evicted socket's bytes count as freed at once (its task drops them shortly).
    fn shed(&mut self, capacity: usize, budget: usize) {
        while self.sockets.len() > capacity || self.bytes > budget {
            let Some((_, (oldest, bytes))) = self.sockets.pop_first() else {
                break;
            };
            self.bytes -= bytes;
            // `notify_one` keeps the wake-up for a task not yet waiting on it.
            oldest.notify_one();
        }
    }
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
    /// At most `capacity` sockets pending, together holding at most `byte_budget` bytes of
    /// request heads.
    pub(crate) fn new(capacity: usize, byte_budget: usize) -> Pending {
        Pending {
            waiting: Mutex::new(Waiting::default()),
            next_id: AtomicU64::new(0),
            capacity: capacity.max(1),
            byte_budget,
        }
    }

    /// Enters a new socket, closing the oldest pending ones beyond the capacity.
    pub(crate) fn enter(&self) -> PendingTicket<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        let mut waiting = lock(&self.waiting);
        waiting.sockets.insert(id, (Arc::clone(&evicted), 0));
        waiting.shed(self.capacity, self.byte_budget);
        PendingTicket {
            pending: self,
            id,
            evicted,
        }
    }
}

impl PendingTicket<'_> {
    /// Records that this socket now makes the server hold `bytes` of its request head; beyond
    /// the budget, the oldest pending sockets are closed (this one too if it is the oldest).
    pub(crate) fn hold(&self, bytes: usize) {
        let mut waiting = lock(&self.pending.waiting);
        let Some((_, held)) = waiting.sockets.get_mut(&self.id) else {
            return;
        };
        let before = std::mem::replace(held, bytes);
        waiting.bytes = waiting.bytes - before + bytes;
        waiting.shed(self.pending.capacity, self.pending.byte_budget);
    }
}

impl Drop for PendingTicket<'_> {
    fn drop(&mut self) {
        let mut waiting = lock(&self.pending.waiting);
        if let Some((_, bytes)) = waiting.sockets.remove(&self.id) {
            waiting.bytes -= bytes;
        }
    }
}

/// Whether a connection is serving a request, and since when it has not been.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    /// The connection slot, until the connection ends or a newcomer takes it (so each
    /// newcomer frees a different connection).
    slot: Mutex<Option<OwnedSemaphorePermit>>,
    /// Notified when the connection should shut down to free its slot.
    pub(crate) evicted: Notify,
}

impl Activity {
    fn new(slot: OwnedSemaphorePermit) -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            slot: Mutex::new(Some(slot)),
            evicted: Notify::new(),
        }
    }

    /// Marks a request in progress until the returned guard is dropped (keep it alive with
    /// the response body, so a long download counts as activity).
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(self))
    }

    /// Whether the connection still holds its slot (a newcomer has not taken it).
    pub(crate) fn holds_slot(&self) -> bool {
        lock(&self.slot).is_some()
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
    /// Registers a connection holding `slot`, which it keeps until it ends or is evicted.
    pub(crate) fn register(&self, slot: OwnedSemaphorePermit) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(slot));
        lock(&self.connections).insert(id, Arc::clone(&activity));
        Registration {
            established: self,
            id,
            activity,
        }
    }

    /// Takes the slot of the connection idle the longest and asks that connection to shut
    /// down; `None` if every connection holding a slot is busy. The slot changes hands at
    /// once: the newcomer does not wait for the evicted peer to acknowledge anything.
    pub(crate) fn evict_idlest(&self) -> Option<OwnedSemaphorePermit> {
        let connections = lock(&self.connections);
        let mut candidates: Vec<(Instant, &Arc<Activity>)> = connections
            .values()
            .filter(|a| lock(&a.slot).is_some())
            .filter_map(|a| Some((a.idle_since()?, a)))
            .collect();
        candidates.sort_unstable_by_key(|(since, _)| *since);
        // A candidate may have started a request or ended since it was looked at.
        candidates.into_iter().find_map(|(_, activity)| {
            let mut slot = lock(&activity.slot);
            activity.idle_since()?;
            let taken = slot.take()?;
            drop(slot);
            activity.evicted.notify_one();
            Some(taken)
        })
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.established.connections).remove(&self.id);
        // Request tasks may still hold the activity; the slot is free now.
        drop(lock(&self.activity.slot).take());
    }
}

/// The protocol a socket's first bytes speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The HTTP/2 client preface arrived (cleartext with prior knowledge, or ALPN `h2`).
    Http2,
    /// A complete HTTP/1.1 request head arrived.
    Http1,
}

/// Why a socket's opening was refused.
#[derive(Debug)]
pub(crate) enum OpeningError {
    /// Reading failed or the peer closed first.
    Io(std::io::Error),
    /// Neither an HTTP/2 preface nor an HTTP/1.1 request line.
    NotHttp,
    /// An HTTP/1.1 request head longer than the limit.
    HeadTooLarge(usize),
}

impl std::fmt::Display for OpeningError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpeningError::Io(e) => write!(f, "{e}"),
            OpeningError::NotHttp => {
                f.write_str("neither an HTTP/2 preface nor an HTTP/1.1 request line")
            }
            OpeningError::HeadTooLarge(limit) => {
                write!(f, "an HTTP/1.1 request head over {limit} bytes")
            }
        }
    }
}

/// The reply to a request head over the limit, written before the socket is closed.
const HEAD_TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Reads a socket's opening: the HTTP/2 client preface, or a complete HTTP/1.1 request head of
/// at most `max_head` bytes. The stream returned replays what was read to the HTTP layer.
pub(crate) async fn read_opening<IO>(
    mut io: IO,
    max_head: usize,
    ticket: &PendingTicket<'_>,
) -> Result<(Protocol, Replayed<IO>), OpeningError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = Vec::new();
    let mut chunk = [0u8; 8 << 10];
    let mut scanned = 0;
    loop {
        let n = io.read(&mut chunk).await.map_err(OpeningError::Io)?;
        if n == 0 {
            return Err(OpeningError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        read.extend_from_slice(chunk.get(..n).unwrap_or_default());
        ticket.hold(read.len());
        let preface_so_far = read.len().min(PREFACE.len());
        if read.get(..preface_so_far) == PREFACE.get(..preface_so_far) {
            if read.len() < PREFACE.len() {
                continue;
            }
            return Ok((Protocol::Http2, Replayed::new(io, read)));
        }
        match http1_head_state(&read, &mut scanned) {
            HeadState::Complete => return Ok((Protocol::Http1, Replayed::new(io, read))),
            HeadState::NotHttp => return Err(OpeningError::NotHttp),
            HeadState::Partial if read.len() > max_head => {
                let _ = io.write_all(HEAD_TOO_LARGE).await;
                let _ = io.shutdown().await;
                return Err(OpeningError::HeadTooLarge(max_head));
            }
            HeadState::Partial => {}
        }
    }
}

enum HeadState {
    Partial,
    Complete,
    NotHttp,
}

/// Whether `read` holds a whole HTTP/1.1 request head (blank lines before the request line,
/// which RFC 9112 lets a server ignore, do not count). `scanned` remembers how far the end of
/// the head was already looked for, so each byte is examined about once.
fn http1_head_state(read: &[u8], scanned: &mut usize) -> HeadState {
    let Some(start) = read.iter().position(|b| !matches!(b, b'\r' | b'\n')) else {
        return HeadState::Partial;
    };
    let head = read.get(start..).unwrap_or_default();
    // The request line is printable ASCII: a TLS ClientHello or other binary is refused at once.
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head.get(..line_end).unwrap_or_default();
    if !line
        .iter()
        .all(|&b| b == b'\r' || (b' '..=b'~').contains(&b))
    {
        return HeadState::NotHttp;
    }
    // Look again at the last bytes already scanned: the blank line may straddle two reads.
    let from = scanned.saturating_sub(start).saturating_sub(2);
    let unscanned = head.get(from..).unwrap_or_default();
    let contains = |needle: &[u8]| unscanned.windows(needle.len()).any(|w| w == needle);
    let ends = contains(b"\n\n") || contains(b"\n\r\n");
    *scanned = read.len();
    if ends {
        HeadState::Complete
    } else {
        HeadState::Partial
    }
}

/// A stream whose first bytes, already read during admission, are handed on first.
#[derive(Debug)]
pub(crate) struct Replayed<IO> {
    io: IO,
    /// What admission read; freed once handed on.
    read: Vec<u8>,
    /// How much of it has been handed on.
    replayed: usize,
}

impl<IO> Replayed<IO> {
    fn new(io: IO, read: Vec<u8>) -> Replayed<IO> {
        Replayed {
            io,
            read,
            replayed: 0,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Replayed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let rest = this.read.get(this.replayed..).unwrap_or_default();
        if rest.is_empty() {
            if !this.read.is_empty() {
                this.read = Vec::new();
                this.replayed = 0;
            }
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(rest.get(..n).unwrap_or_default());
        this.replayed += n;
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

    /// Whether the socket was told to close (a stored notification completes at once).
    fn told_to_close(ticket: &PendingTicket<'_>) -> bool {
        let notified = ticket.evicted.notified();
        futures::pin_mut!(notified);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        notified.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn a_newcomer_beyond_capacity_evicts_the_oldest_pending_socket() {
        let pending = Pending::new(2, usize::MAX);
        let first = pending.enter();
        let second = pending.enter();
        let third = pending.enter();
        assert!(told_to_close(&first));
        drop((first, second, third));
        assert!(lock(&pending.waiting).sockets.is_empty());
    }

    #[test]
    fn request_heads_beyond_the_byte_budget_close_the_oldest_pending_sockets() {
        let pending = Pending::new(10, 100);
        let first = pending.enter();
        let second = pending.enter();
        first.hold(60);
        second.hold(30);
        assert_eq!(lock(&pending.waiting).bytes, 90);
        second.hold(50);
        // The oldest was told to close and its bytes no longer count.
        assert!(told_to_close(&first));
        assert!(!told_to_close(&second));
        assert_eq!(lock(&pending.waiting).bytes, 50);
        drop(first);
        drop(second);
        assert_eq!(lock(&pending.waiting).bytes, 0);
    }

    #[test]
    fn only_idle_connections_are_evicted() {
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let slot = || Arc::clone(&slots).try_acquire_owned().unwrap();
        let established = Established::default();
        let busy = established.register(slot());
        let _request = busy.activity.begin();
        assert!(established.evict_idlest().is_none());
        let idle = established.register(slot());
        assert_eq!(slots.available_permits(), 0);
        // The idle connection's slot is handed over at once, before it has shut down.
        let taken = established.evict_idlest().expect("an idle connection");
        // The one already asked to go is not asked again.
        assert!(established.evict_idlest().is_none());
        drop(taken);
        assert_eq!(slots.available_permits(), 1);
        drop(idle);
        assert_eq!(slots.available_permits(), 1);
        drop(busy);
        assert_eq!(slots.available_permits(), 2);
    }

    #[test]
    fn the_connection_idle_the_longest_is_evicted_first() {
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let established = Established::default();
        let older = established.register(Arc::clone(&slots).try_acquire_owned().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let newer = established.register(Arc::clone(&slots).try_acquire_owned().unwrap());
        let _taken = established.evict_idlest();
        assert!(lock(&older.activity.slot).is_none());
        assert!(lock(&newer.activity.slot).is_some());
    }

    fn state_of(read: &[u8]) -> &'static str {
        match http1_head_state(read, &mut 0) {
            HeadState::Partial => "partial",
            HeadState::Complete => "complete",
            HeadState::NotHttp => "not http",
        }
    }

    #[test]
    fn an_http1_head_is_complete_only_at_its_blank_line() {
        assert_eq!(state_of(b"GET / HTTP/1.1\r\nhost: a\r\n"), "partial");
        assert_eq!(state_of(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"), "complete");
        assert_eq!(state_of(b"GET / HTTP/1.1\nhost: a\n\n"), "complete");
        // Blank lines before the request line are not its end.
        assert_eq!(state_of(b"\r\n\r\n"), "partial");
        assert_eq!(state_of(b"\r\nGET / HTTP/1.1\r\n\r\n"), "complete");
        assert_eq!(state_of(&[0x16, 0x03, 0x01, 0x02, 0x00]), "not http");
    }

    #[test]
    fn a_blank_line_split_across_reads_is_found() {
        let head = b"PUT /v1/objects/k HTTP/1.1\r\nhost: a\r\n\r\n";
        for split in 1..head.len() {
            let mut scanned = 0;
            let first = http1_head_state(&head[..split], &mut scanned);
            assert!(matches!(first, HeadState::Partial), "split at {split}");
            let whole = http1_head_state(head, &mut scanned);
            assert!(matches!(whole, HeadState::Complete), "split at {split}");
        }
    }
}

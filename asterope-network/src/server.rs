//! Accepting connections, HTTP/2 and HTTP/1.1 settings, and graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use asterope_core::{Result, Store};
use asterope_serialization::MAX_HEADER_LIST_BYTES;
use http_body_util::BodyExt;
use hyper::server::conn::http1::Parts;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::admission::{read_opening, Activity, Established, Pending, Protocol};
use crate::auth::Tokens;
use crate::blocking::BlockingPool;
use crate::cors::Cors;
use crate::linger::linger;
use crate::metrics::Metrics;
use crate::routes::{handle, AppState};
use crate::transactions::{Limits, Transactions};

/// Largest frame a client may send: the protocol's minimum, 16 KiB. The CONTINUATION-flood
/// guard of the h2 crate allows a header block about `max_header_list_size / this` frames
/// (plus a quarter); clients send 16 KiB frames until they see the server's SETTINGS (curl
/// always does), so a larger value here would kill the connection of any client sending a
/// header block within the limit but over a few frames. Uploads then arrive in 16 KiB
/// frames, which the blob writer coalesces into its larger writes.
const MAX_RECEIVED_FRAME_SIZE: u32 = 16 << 10;

/// Server settings. `Default` gives the production defaults without authentication or TLS.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Accepted bearer tokens; empty means no authentication.
    pub tokens: Tokens,
    /// Origins whose browser scripts may call the server (CORS); none by default.
    pub cors: Cors,
    /// TLS (ALPN `h2` or `http/1.1`); `None` serves cleartext HTTP/2 with prior knowledge and
    /// HTTP/1.1.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// Concurrent connections that completed their handshake. When all are taken, a newcomer
    /// takes the slot of the connection idle the longest (no request in progress), which is
    /// shut down, or waits for a slot until its handshake deadline.
    pub max_connections: usize,
    /// A socket must complete its TLS handshake and send the HTTP/2 preface, or a complete
    /// HTTP/1.1 request head, within this time.
    pub handshake_timeout: Duration,
    /// Sockets still handshaking at once; a newcomer beyond it closes the oldest of them.
    pub max_pending_connections: usize,
    /// A connection with no request in progress for this long is shut down (GOAWAY; an
    /// HTTP/1.1 connection is closed).
    pub connection_idle_timeout: Duration,
    /// Largest header block accepted (metadata travels in a header); the default fits the
    /// largest valid metadata document, as the client's limit does.
    pub max_header_list_size: u32,
    /// An upload that sends no data for this long is aborted (slow or vanished clients).
    pub body_idle_timeout: Duration,
    /// Pings detect dead peers; a connection whose ping is unanswered this long is closed.
    pub keep_alive: Duration,
    /// On shutdown, in-flight requests get this long to finish before they are aborted.
    pub shutdown_grace: Duration,
    /// HTTP/2 flow-control window per stream, in bytes.
    pub stream_window: u32,
    /// HTTP/2 flow-control window per connection, in bytes.
    pub connection_window: u32,
    /// Listings, queries, counts, plans and index changes run on blocking threads, at most
    /// this many at once (each holds at most a page of objects); further ones wait their turn
    /// without occupying the async workers that serve everything else.
    pub max_blocking_requests: usize,
    /// Uploads (`PUT /v1/objects/{key}`) streaming into the store at once; further ones wait
    /// for a place before their body is read. Each holds two blocking threads (writer and
    /// hasher) while it streams: see [`ServerConfig::blocking_threads`].
    pub max_concurrent_uploads: usize,
    /// An open transaction unused for this long is rolled back.
    pub transaction_lease: Duration,
    /// A transaction is rolled back this long after it began, however often its lease was
    /// renewed, so no client pins a snapshot (and the versions it keeps) forever.
    pub transaction_max_lifetime: Duration,
    /// Open transactions one token may hold (one shared count when authentication is off);
    /// beyond it, beginning one fails with `too_many_transactions`.
    pub max_transactions_per_token: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tokens: Tokens::default(),
            cors: Cors::default(),
            tls: None,
            max_concurrent_streams: 256,
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            max_pending_connections: 256,
            connection_idle_timeout: Duration::from_secs(120),
            max_header_list_size: u32::try_from(MAX_HEADER_LIST_BYTES).unwrap_or(u32::MAX),
            body_idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(10),
            // Large windows keep a loopback or LAN pipe full; the connection window caps what
            // one connection can make the server buffer.
            stream_window: 4 << 20,
            connection_window: 16 << 20,
            max_blocking_requests: 4,
            max_concurrent_uploads: 32,
            transaction_lease: Duration::from_secs(30),
            transaction_max_lifetime: Duration::from_secs(600),
            max_transactions_per_token: 64,
        }
    }
}

/// Blocking threads the server needs besides those its bounded work holds: commits of the
/// metadata and delete routes, deduplication checks, verification, statistics and compaction
/// (each finishes without waiting for another blocking thread).
const SPARE_BLOCKING_THREADS: usize = 16;

impl ServerConfig {
    /// The most blocking threads the server's runtime should allow
    /// (`tokio::runtime::Builder::max_blocking_threads`): two per upload place (writer and
    /// hasher, which wait for each other), two per blocking request place (the request's own
    /// thread and a commit it may wait for), and spares for work that waits for no other thread.
    /// With this many, work holding a thread never waits for a thread that cannot be had, and
    /// the threads (and the allocator memory each thread's use leaves behind) stay bounded.
    pub fn blocking_threads(&self) -> usize {
        let uploads = self.max_concurrent_uploads.max(1);
        let requests = self.max_blocking_requests.max(1);
        uploads
            .saturating_mul(2)
            .saturating_add(requests.saturating_mul(2))
            .saturating_add(SPARE_BLOCKING_THREADS)
    }
}

/// Serves `store` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish for [`ServerConfig::shutdown_grace`] and aborts the rest (an aborted upload
/// commits nothing).
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let state = Arc::new(AppState {
        store,
        tokens: config.tokens.clone(),
        metrics: Arc::clone(&metrics),
        body_idle_timeout: config.body_idle_timeout,
        transactions: Transactions::new(Limits {
            lease: config.transaction_lease,
            max_lifetime: config.transaction_max_lifetime,
            per_owner: config.max_transactions_per_token,
        }),
        blocking: BlockingPool::new(config.max_blocking_requests),
        uploads: tokio::sync::Semaphore::new(config.max_concurrent_uploads.max(1)),
    });
    let reaper = {
        let state = Arc::clone(&state);
        let period = (config
            .transaction_lease
            .min(config.transaction_max_lifetime)
            / 4)
        .max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                state.transactions.reap();
            }
        })
    };
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    let admission = Arc::new(Admission {
        pending: Pending::new(
            config.max_pending_connections,
            PENDING_HEAD_BYTES.max(2 * head_limit(&config)),
        ),
        established: Established::default(),
        slots: Arc::new(Semaphore::new(config.max_connections)),
    });
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Accept whatever arrives: a socket earns a connection slot only by completing its
        // handshake (see `admission`), so idle sockets cannot keep others waiting.
        let (socket, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        let (state, config, tls, stop_rx, admission) = (
            Arc::clone(&state),
            config.clone(),
            tls.clone(),
            stop_rx.clone(),
            Arc::clone(&admission),
        );
        connections.spawn(async move {
            let outcome = admit_and_serve(socket, tls, &admission, state, &config, stop_rx).await;
            if let Err(e) = outcome {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
        // Reap finished connection tasks as we go.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    reaper.abort();
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("aborting connections still busy after the shutdown grace period");
        connections.shutdown().await;
    }
    // Request tasks the HTTP/2 layer spawned, and the reaper, may still be dropping their
    // handles of the state: wait for them, so that the database (and its directory lock) is
    // released when `serve` returns and the directory can be opened again at once.
    let _ = reaper.await;
    let deadline = Instant::now() + config.shutdown_grace;
    while Arc::strong_count(&state) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// What decides which sockets become connections (see the `admission` module).
#[derive(Debug)]
struct Admission {
    pending: Pending,
    established: Established,
    slots: Arc<Semaphore>,
}

/// Takes a socket through its handshake (TLS, HTTP/2 preface or
/// HTTP/1.1 request head, a connection slot) within the
/// handshake deadline, then serves it.
async fn admit_and_serve(
    socket: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    admission: &Admission,
    state: Arc<AppState>,
    config: &ServerConfig,
    stop: watch::Receiver<bool>,
) -> std::result::Result<(), String> {
    let ticket = admission.pending.enter();
    let evicted = Arc::clone(&ticket.evicted);
    let handshake = async move {
        let stream: Box<dyn Stream> = match tls {
            Some(acceptor) => Box::new(
                acceptor
                    .accept(socket)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))?,
            ),
            None => Box::new(socket),
        };
        let (protocol, stream) = read_opening(stream, head_limit(config), &ticket)
            .await
            .map_err(|e| format!("reading the opening request: {e}"))?;
        // The handshake is done: the socket stops counting as pending while it waits for a slot.
        drop(ticket);
        let slot = loop {
            if let Ok(slot) = Arc::clone(&admission.slots).try_acquire_owned() {
                break slot;
            }
            // All slots taken: the connection idle the longest hands its slot over at once;
            // if all are busy, a slot frees when some connection ends. Newcomers racing each
            // other each evict a different one.
            if let Some(slot) = admission.established.evict_idlest() {
                break slot;
            }
            let wait = Arc::clone(&admission.slots).acquire_owned();
            if let Ok(slot) = tokio::time::timeout(Duration::from_millis(100), wait).await {
                break slot.map_err(|_| "connection limiter closed".to_string())?;
            }
        };
        Ok::<_, String>((protocol, stream, slot))
    };
    let (protocol, stream, slot) = tokio::select! {
        admitted = tokio::time::timeout(config.handshake_timeout, handshake) => admitted
            .map_err(|_| format!("no handshake within {:?}", config.handshake_timeout))??,
        () = evicted.notified() => {
            return Err("closed while handshaking to make room for a newer socket".into());
        }
    };
    let registration = admission.established.register(slot);
    let metrics = Arc::clone(&state.metrics);
    metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    let outcome = serve_connection(
        protocol,
        stream,
        state,
        config,
        stop,
        &registration.activity,
    )
    .await;
    metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    outcome
}

/// A connection's byte stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// The largest HTTP/1.1 request head (request line and header fields), and trailer block:
/// the HTTP/2 header list limit, so that the largest valid metadata fits either way.
fn head_limit(config: &ServerConfig) -> usize {
    usize::try_from(config.max_header_list_size).unwrap_or(usize::MAX)
}

/// Request head bytes that sockets still handshaking may make the server hold together (at
/// least two of the largest heads); beyond it the oldest pending sockets are closed, so that
/// half-sent heads cannot cost more memory than this.
const PENDING_HEAD_BYTES: usize = 32 << 20;

/// How long a connection shut down for idleness or eviction, with no request in progress, is
/// given to send its GOAWAY and for the peer to close; then it is closed whether or not the
/// peer answered. (A request that raced in gets the whole shutdown grace.)
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// hyper's default HTTP/1.1 read buffer limit (8 KiB + 100 pages of 4 KiB).
const HTTP1_DEFAULT_BUFFER: usize = 8192 + 4096 * 100;

async fn serve_connection<IO>(
    protocol: Protocol,
    io: IO,
    state: Arc<AppState>,
    config: &ServerConfig,
    stop: watch::Receiver<bool>,
    activity: &Arc<Activity>,
) -> std::result::Result<(), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tracked = Arc::clone(activity);
    let cors = Arc::new(config.cors.clone());
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        // The request counts as activity until its response body is done or dropped.
        let guard = tracked.begin();
        let state = Arc::clone(&state);
        let cors = Arc::clone(&cors);
        // Boxed, so that the HTTP/1.1 connection is `Unpin` and gives its socket back.
        Box::pin(async move {
            let http1 = request.version() < http::Version::HTTP_2;
            let has_body = !hyper::body::Body::is_end_stream(request.body());
            let mut response = match cors.preflight(request.method(), request.headers()) {
                Some(preflight) => preflight,
                None => {
                    let origin = request.headers().get(http::header::ORIGIN).cloned();
                    let mut response = handle(state, request).await?;
                    cors.decorate(origin.as_ref(), &mut response);
                    response
                }
            };
            if http1 && has_body && !response.status().is_success() {
                close_after_refusal(&mut response);
            }
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                body.map_frame(move |frame| {
                    let _ = &guard;
                    frame
                })
                .boxed_unsync()
            }))
        })
    });
    let io = TokioIo::new(io);
    let stop_again = stop.clone();
    let lifetime = Lifetime {
        config,
        stop,
        activity,
    };
    match protocol {
        Protocol::Http2 => {
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .initial_stream_window_size(config.stream_window)
                .initial_connection_window_size(config.connection_window)
                .max_frame_size(MAX_RECEIVED_FRAME_SIZE)
                .max_send_buf_size(1 << 20)
                .max_concurrent_streams(config.max_concurrent_streams)
                .max_header_list_size(config.max_header_list_size)
                .keep_alive_interval(config.keep_alive)
                .keep_alive_timeout(config.keep_alive);
            let connection = std::pin::pin!(builder.serve_connection(io, service));
            lifetime.drive(connection, |c| c.graceful_shutdown()).await
        }
        Protocol::Http1 => {
            // One request at a time; the read buffer (request heads, body data not yet
            // consumed) is bounded by the head limit, so an upload costs what it does over
            // HTTP/2. The first request head arrived during admission; a later one must arrive
            // within the idle timeout (a connection between requests is idle anyway).
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.connection_idle_timeout)
                .max_header_size(head_limit(config))
                .max_buf_size(HTTP1_DEFAULT_BUFFER.max(head_limit(config) + (16 << 10)))
                .keep_alive(true);
            let mut connection = UntilReplied(builder.serve_connection(io, service));
            let outcome = lifetime
                .drive(Pin::new(&mut connection), |c| {
                    Pin::new(&mut c.get_mut().0).graceful_shutdown();
                })
                .await;
            outcome?;
            // The last reply is flushed; request bytes may still be on their way.
            let Parts { io, read_buf, .. } = connection.0.into_parts();
            if !activity.holds_slot() {
                return Ok(());
            }
            let mut stop = stop_again;
            let cut_short = async {
                tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => {}
                    () = activity.evicted.notified() => {}
                }
            };
            let end = linger(io.into_inner(), read_buf.len(), cut_short).await;
            tracing::trace!("lingering close ended: {end:?}");
            Ok(())
        }
    }
}

/// An HTTP/1.1 connection run until it ends without closing its socket, so that the socket
/// can linger (see the `linger` module).
struct UntilReplied<C>(C);

impl<I, S> Future for UntilReplied<http1::Connection<I, S>>
where
    http1::Connection<I, S>: Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_without_shutdown(cx)
    }
}

/// Marks an error reply to a request whose body may not have been read to its end as the
/// connection's last (`Connection: close`): the server will not read the rest of the body,
/// so the connection cannot carry another request, and the client learns to stop sending.
/// hyper adds the header itself only if it noticed the unread body before encoding the reply
/// head, which depends on when the handler dropped the body.
fn close_after_refusal<B>(response: &mut hyper::Response<B>) {
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
}

/// What ends a connection besides its peer: server shutdown, idleness, eviction.
struct Lifetime<'a> {
    config: &'a ServerConfig,
    stop: watch::Receiver<bool>,
    activity: &'a Arc<Activity>,
}

impl Lifetime<'_> {
    /// Runs a connection until it ends, the server stops, it has been idle for the idle
    /// timeout, or a newcomer needs its slot; then shuts it down gracefully (HTTP/2 GOAWAY;
    /// HTTP/1.1 closes once the request in progress, if any, is answered).
    async fn drive<C>(
        mut self,
        mut connection: std::pin::Pin<&mut C>,
        shut_down: impl FnOnce(std::pin::Pin<&mut C>),
    ) -> std::result::Result<(), String>
    where
        C: Future<Output = hyper::Result<()>>,
    {
        let idle_timeout = self.config.connection_idle_timeout;
        let activity = self.activity;
        let idle = async {
            loop {
                let wake = match activity.idle_since() {
                    Some(since) if since.elapsed() >= idle_timeout => return,
                    Some(since) => since + idle_timeout,
                    None => Instant::now() + idle_timeout,
                };
                tokio::time::sleep_until(wake.into()).await;
            }
        };
        let stopping = tokio::select! {
            result = connection.as_mut() => return result.map_err(|e| e.to_string()),
            _ = self.stop.wait_for(|stop| *stop) => true,
            () = idle => false,
            () = activity.evicted.notified() => false,
        };
        shut_down(connection.as_mut());
        // A peer that never acknowledges the GOAWAY does not keep the connection: an idle or
        // evicted one is closed after a short grace unless a request is in progress, and
        // requests in progress get the shutdown grace.
        let shutdown_grace = self.config.shutdown_grace;
        let deadline = tokio::time::Instant::now() + shutdown_grace;
        if !stopping {
            let grace = IDLE_CLOSE_GRACE.min(shutdown_grace);
            match tokio::time::timeout(grace, connection.as_mut()).await {
                Ok(result) => return result.map_err(|e| e.to_string()),
                Err(_) if activity.idle_since().is_some() => {
                    return Err(format!("closed idle after a GOAWAY grace of {grace:?}"));
                }
                Err(_) => {}
            }
        }
        tokio::time::timeout_at(deadline, connection)
            .await
            .map_err(|_| "closed after the shutdown grace".to_string())?
            .map_err(|e| e.to_string())
    }
}

//! Accepting connections, HTTP/2 settings, and graceful shutdown.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use asterope_core::{Error, Result};
use asterope_storage::Database;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::routes::{handle, AppState};
use crate::transactions::{Limits, Transactions};

/// Server settings. `Default` gives the production defaults without authentication or TLS.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Accepted bearer tokens; empty means no authentication.
    pub tokens: Tokens,
    /// TLS (HTTP/2 via ALPN `h2`); `None` serves cleartext HTTP/2 with prior knowledge.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// Concurrent connections; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Largest header block accepted (metadata travels in a header).
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
            tls: None,
            max_concurrent_streams: 256,
            max_connections: 1024,
            max_header_list_size: 256 * 1024,
            body_idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(10),
            // Large windows keep a loopback or LAN pipe full; the connection window caps what
            // one connection can make the server buffer.
            stream_window: 4 << 20,
            connection_window: 16 << 20,
            transaction_lease: Duration::from_secs(30),
            transaction_max_lifetime: Duration::from_secs(600),
            max_transactions_per_token: 64,
        }
    }
}

/// Serves `db` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish for [`ServerConfig::shutdown_grace`] and aborts the rest (an aborted upload
/// commits nothing).
pub async fn serve(
    listener: TcpListener,
    db: Database,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let state = Arc::new(AppState {
        db,
        tokens: config.tokens.clone(),
        metrics: Arc::clone(&metrics),
        body_idle_timeout: config.body_idle_timeout,
        transactions: Transactions::new(Limits {
            lease: config.transaction_lease,
            max_lifetime: config.transaction_max_lifetime,
            per_owner: config.max_transactions_per_token,
        }),
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
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => {
                permit.map_err(|_| Error::internal("connection limiter closed"))?
            }
        };
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
        let (state, config, tls, stop_rx) = (
            Arc::clone(&state),
            config.clone(),
            tls.clone(),
            stop_rx.clone(),
        );
        connections.spawn(async move {
            let _permit = permit;
            state
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            let outcome = match tls {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(stream) => serve_connection(stream, state.clone(), &config, stop_rx).await,
                    Err(e) => Err(format!("TLS handshake failed: {e}")),
                },
                None => serve_connection(socket, state.clone(), &config, stop_rx).await,
            };
            if let Err(e) = outcome {
                tracing::debug!("connection from {peer}: {e}");
            }
            state
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
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
    Ok(())
}

async fn serve_connection<IO>(
    io: IO,
    state: Arc<AppState>,
    config: &ServerConfig,
    mut stop: watch::Receiver<bool>,
) -> std::result::Result<(), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(config.stream_window)
        .initial_connection_window_size(config.connection_window)
        .max_frame_size(1 << 20)
        .max_send_buf_size(1 << 20)
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_list_size)
        .keep_alive_interval(config.keep_alive)
        .keep_alive_timeout(config.keep_alive);
    let service = service_fn(move |request| handle(Arc::clone(&state), request));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return result.map_err(|e| e.to_string()),
        _ = stop.wait_for(|stop| *stop) => {}
    }
    connection.as_mut().graceful_shutdown();
    connection.await.map_err(|e| e.to_string())
}

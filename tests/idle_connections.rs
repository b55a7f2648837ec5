//! Idle sockets and idle connections cannot lock clients out: sockets that never finish their
//! TLS handshake or HTTP/2 preface are closed at the handshake deadline (or by newer sockets),
//! only connections that completed the handshake hold connection slots, and an idle connection
//! gives its slot up to a newcomer. Real sockets throughout.

mod common;
#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::time::{Duration, Instant};

use asterope::{Client, Database, Key, ObjectOps, ServerConfig};
use server::TestServer;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How soon a newcomer must be served while the server is besieged (the availability
/// requirement, not a performance figure: an unprotected server never answers).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Opens `count` TCP connections to `addr` that send nothing; those the server's backlog did
/// not take within 5 s are left out.
async fn idle_sockets(addr: std::net::SocketAddr, count: usize) -> Vec<TcpStream> {
    let connects = (0..count).map(|_| async move {
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .ok()
            .and_then(Result::ok)
    });
    let sockets: Vec<TcpStream> = futures::future::join_all(connects)
        .await
        .into_iter()
        .flatten()
        .collect();
    // Give the server time to accept what it will.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sockets
}

/// A new client connects and gets an answer (here `not_found`) within [`ANSWER_WITHIN`].
async fn newcomer_is_served(url: &str, root_cert: Option<&Path>) -> Duration {
    let started = Instant::now();
    let exchange = async {
        let mut builder = Client::builder(url);
        if let Some(cert) = root_cert {
            builder = builder.root_certificate(cert);
        }
        let client = builder.connect().await.unwrap();
        client.head(&Key::new("absent").unwrap()).await
    };
    let answer = tokio::time::timeout(ANSWER_WITHIN, exchange).await;
    let err = answer
        .unwrap_or_else(|_| panic!("a new client was not served within {ANSWER_WITHIN:?}"))
        .unwrap_err();
    assert_eq!(err.code(), "not_found", "{err}");
    started.elapsed()
}

async fn start(dir: &Path, config: ServerConfig) -> TestServer {
    TestServer::start(Database::open(dir.join("data")).unwrap(), config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_sockets_do_not_lock_out_a_new_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let sockets = idle_sockets(server.addr, 2000).await;
    assert!(
        sockets.len() > 1100,
        "only {} sockets connected",
        sockets.len()
    );
    let took = newcomer_is_served(&server.url(), None).await;
    eprintln!(
        "{} idle sockets open; a new client was served in {took:?}",
        sockets.len()
    );
    drop(sockets);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_sockets_do_not_lock_out_a_new_tls_client() {
    let dir = tempfile::tempdir().unwrap();
    let (config, cert) = common::self_signed_tls(dir.path());
    let server = start(dir.path(), config).await;
    // More sockets than connection slots, each starting a TLS handshake (a ClientHello's
    // first bytes) and stalling.
    let mut sockets = idle_sockets(server.addr, 1100).await;
    assert!(
        sockets.len() > 1030,
        "only {} sockets connected",
        sockets.len()
    );
    for socket in &mut sockets {
        use tokio::io::AsyncWriteExt;
        let _ = socket.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await;
    }
    let url = format!("https://localhost:{}", server.addr.port());
    newcomer_is_served(&url, Some(&cert)).await;
    drop(sockets);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_the_preface_is_closed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut partial, b"PRI * HTTP/2.0\r\n")
        .await
        .unwrap();
    for socket in [&mut silent, &mut partial] {
        // Whatever the server sends, it must then close the socket.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = socket.read(&mut buf).await {
                let _ = n;
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the server kept a silent socket open past its handshake deadline"
        );
    }
    server.stop().await;
}

/// The HTTP/2 client preface and an empty SETTINGS frame.
const PREFACE_AND_SETTINGS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// Opens an HTTP/2 connection that completes its handshake, then sends nothing.
async fn idle_h2_connection(
    addr: std::net::SocketAddr,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

/// With `max_connections` slots, `silent` peers that complete the preface and SETTINGS and
/// then neither read nor answer anything (not the GOAWAY, not its ping: an evicted one never
/// closes its end) connect first, then `idle` well-behaved HTTP/2 clients that send no
/// request; three newcomers in turn must each be served within [`ANSWER_WITHIN`].
async fn newcomers_are_served_past_quiet_connections(
    max_connections: usize,
    silent: usize,
    idle: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_connections,
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let mut silent_peers = Vec::new();
    for _ in 0..silent {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut tcp, PREFACE_AND_SETTINGS)
            .await
            .unwrap();
        silent_peers.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut idle_clients = Vec::new();
    for _ in 0..idle {
        idle_clients.push(idle_h2_connection(server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        newcomer_is_served(&server.url(), None).await;
    }
    drop((idle_clients, silent_peers));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_give_their_slots_to_newcomers() {
    // Every slot is held by a connection that completed its handshake and then went quiet.
    newcomers_are_served_past_quiet_connections(8, 4, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_is_served_while_more_idle_connections_than_slots_are_open() {
    // Twice as many quiet connections as slots: the silent ones take the slots, the
    // well-behaved ones find them taken and evict silent ones, whose peers never close.
    newcomers_are_served_past_quiet_connections(16, 16, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_past_its_timeout_is_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        connection_idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let (_client, connection) = idle_h2_connection(server.addr).await;
    // The server's GOAWAY ends the client's connection task.
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("an idle connection was kept open past its idle timeout")
        .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_query_bodies_hold_no_place_and_are_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_blocking_requests: 1,
        body_idle_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let (sender, _connection) = idle_h2_connection(server.addr).await;
    // Queries whose bodies never finish arriving.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let request = http::Request::builder()
            .method("POST")
            .uri("http://localhost/v1/query")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let mut sender = sender.clone().ready().await.unwrap();
        let (response, mut body) = sender.send_request(request, false).unwrap();
        body.send_data(bytes::Bytes::from_static(b"{\"filter\":"), false)
            .unwrap();
        stalled.push((response, body));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let listing = client.list(asterope::ListOptions::default());
    let page = tokio::time::timeout(ANSWER_WITHIN, listing)
        .await
        .expect("a listing waited behind stalled query bodies")
        .unwrap();
    assert!(page.objects.is_empty());
    // A body that does not arrive in time is given up, with a clear error.
    for (response, _body) in stalled {
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("a stalled query body was waited for forever")
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["x-asterope-error-code"], "truncated");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_peer_that_never_answers_is_closed_well_before_the_shutdown_grace() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_connections: 1,
        shutdown_grace: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    // Holds the only slot, then reads nothing until the newcomer has been served.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut silent, PREFACE_AND_SETTINGS)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    newcomer_is_served(&server.url(), None).await;
    // The GOAWAY and ping go unanswered; the server closes the socket anyway, long before
    // the minute a request in progress would get.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while let Ok(1..) = silent.read(&mut buf).await {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "an evicted connection was kept open for its unresponsive peer"
    );
    server.stop().await;
}

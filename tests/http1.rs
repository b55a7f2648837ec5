//! HTTP/1.1 on the same port as HTTP/2, byte-exact on a raw socket (curl's view of the routes
//! is `http1_curl.rs`): uploads stream with chunked encoding, the SHA-256 may come as a chunked
//! trailer, auth and errors read as over HTTP/2, a corrupt block never ends a body cleanly
//! (for curl either), and HTTP/1.1 sockets obey the same handshake deadline, slots and idle
//! timeout.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

mod common;
#[path = "common/curl.rs"]
mod curl;
#[path = "common/raw_http1.rs"]
mod raw_http1;
#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::time::Duration;

use asterope::{Access, Database, ServerConfig, Tokens};
use common::{pattern, sha256, MIB};
use curl::curl;
use raw_http1::{raw_exchange, text};
use server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(dir: &Path, config: ServerConfig) -> TestServer {
    let db = Database::builder(dir.join("data"))
        .extent_size(8 << 20)
        .open()
        .unwrap();
    TestServer::start(db, config).await
}

/// A chunked upload of `data` in 64 KiB chunks with `trailer` as its trailer section.
fn chunked_put(path: &str, data: &[u8], trailer: &str) -> Vec<u8> {
    let mut request = format!(
        "PUT {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         transfer-encoding: chunked\r\ntrailer: x-asterope-sha256\r\n\r\n"
    )
    .into_bytes();
    for piece in data.chunks(64 << 10) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n");
    if !trailer.is_empty() {
        request.extend_from_slice(format!("{trailer}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_is_checked_against_its_trailer_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let data = pattern(2, 2 * MIB + 5);
    let right = format!("x-asterope-sha256: {}", sha256(&data).to_hex());
    let wrong = format!("x-asterope-sha256: {}", sha256(b"something else").to_hex());

    let reply = raw_exchange(&server, &chunked_put("/v1/objects/bad", &data, &wrong)).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (400, "checksum_mismatch")
    );
    let reply = raw_exchange(
        &server,
        b"HEAD /v1/objects/bad HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 404, "a refused upload stored nothing");
    assert!(reply.body.is_empty(), "a HEAD reply has no body");

    let reply = raw_exchange(&server, &chunked_put("/v1/objects/good", &data, &right)).await;
    assert_eq!(reply.status, 201, "{}", text(&reply.body));
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(json["size"], data.len());

    let reply = raw_exchange(
        &server,
        b"GET /v1/objects/good HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body == data.to_vec());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_over_http1_with_a_bearer_challenge() {
    let mut tokens = Tokens::default();
    tokens.add("writer-secret", Access::ReadWrite);
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        ServerConfig {
            tokens,
            ..ServerConfig::default()
        },
    )
    .await;
    let request = |auth: &str| {
        format!(
            "PUT /v1/objects/guarded HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             content-length: 7\r\n{auth}\r\npayload"
        )
    };
    let reply = raw_exchange(&server, request("").as_bytes()).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "unauthorized")
    );
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("bearer")),
        "{}",
        reply.head
    );
    let reply = raw_exchange(
        &server,
        request("authorization: Bearer writer-secret\r\n").as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", text(&reply.body));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_block_never_ends_an_http1_download_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let data = pattern(3, 3 * MIB);
    let put = chunked_put(
        "/v1/objects/damaged",
        &data,
        &format!("x-asterope-sha256: {}", sha256(&data).to_hex()),
    );
    assert_eq!(raw_exchange(&server, &put).await.status, 201);
    // Damage the third 1 MiB block, so the reply starts before the damage is met.
    let path = dir.path().join("data/extents/00000000.ext");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &data[..64])
        .expect("the blob is in the extent");
    bytes[at + 2 * MIB + 10] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    // Keep-alive (no `connection: close`): the server must close the connection itself.
    let reply = raw_exchange(
        &server,
        b"GET /v1/objects/damaged HTTP/1.1\r\nhost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200, "the damage is past the first block");
    let declared: usize = reply.header("content-length").unwrap().parse().unwrap();
    assert_eq!(declared, data.len());
    assert!(
        reply.body.len() < declared,
        "a corrupt download ended with all {declared} bytes"
    );
    assert!(
        reply.body.len() <= 2 * MIB,
        "bytes of the corrupt block were sent"
    );

    let url = format!("{}/v1/objects/damaged", server.url());
    let out = curl(&["-o", "/dev/null", &url]).await;
    assert!(
        !out.status.success(),
        "curl saw a clean end of a corrupt body"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_head_holds_no_slot_and_is_closed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(1500),
        max_connections: 1,
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The only slot is free: a complete request is served, and is the one open connection.
    let reply = raw_exchange(
        &server,
        b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", text(&reply.body));
    let metrics = text(&reply.body);
    assert!(
        metrics.lines().any(|l| l == "asterope_connections_open 1"),
        "{metrics}"
    );
    // Whatever the server sends, it then closes the half-spoken socket.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while let Ok(1..) = partial.read(&mut buf).await {}
    })
    .await;
    assert!(closed.is_ok(), "a half request head kept its socket open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        connection_idle_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut all)).await;
    assert!(closed.is_ok(), "an idle keep-alive connection stayed open");
    assert!(text(&all).starts_with("HTTP/1.1 200"), "{}", text(&all));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_that_is_not_http_is_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    // A TLS ClientHello's first bytes sent to the cleartext port.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "binary garbage waited for the handshake deadline"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_broken_off_over_http1_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let data = pattern(5, 3 * MIB);
    let mut whole = chunked_put("/v1/objects/broken", &data, "");
    // Without the terminating chunk, and a content-length body one byte short.
    whole.truncate(whole.len() - 8);
    let mut short = format!(
        "PUT /v1/objects/short HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    short.extend_from_slice(&data[..data.len() - 1]);
    for request in [whole, short] {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(&request).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
        assert!(
            !text(&reply).starts_with("HTTP/1.1 201"),
            "{}",
            text(&reply)
        );
    }
    for key in ["broken", "short"] {
        let head = format!(
            "HEAD /v1/objects/{key} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        );
        let reply = raw_exchange(&server, head.as_bytes()).await;
        assert_eq!(reply.status, 404, "{key} was stored");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_metadata_header_fits_an_http1_head_and_a_larger_head_is_431() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    // Control characters travel escaped (`\u0001`, six bytes each): a header of ~380 KB, about
    // the largest a document within the metadata limit makes.
    let meta = format!("{{\"blob\":\"{}\"}}", "\\u0001".repeat(63_000));
    let request = format!(
        "PUT /v1/objects/meta HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         x-asterope-meta: {meta}\r\ncontent-length: 2\r\n\r\nhi"
    );
    let reply = raw_exchange(&server, request.as_bytes()).await;
    assert_eq!(reply.status, 201, "{}", text(&reply.body));
    let huge = format!(
        "GET /v1/health HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n",
        "a".repeat(600 << 10)
    );
    let reply = raw_exchange(&server, huge.as_bytes()).await;
    assert_eq!(reply.status, 431);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_gives_its_slot_to_a_newcomer() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    // Takes the only slot, is answered, then stays open and idle (keep-alive).
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(text(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A newcomer is served within the handshake deadline (10 s) by taking that slot.
    let newcomer = tokio::time::timeout(
        Duration::from_secs(5),
        raw_exchange(
            &server,
            b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        ),
    )
    .await
    .expect("a newcomer waited behind an idle HTTP/1.1 connection");
    assert_eq!(newcomer.status, 200);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(1..) = idle.read(&mut buf).await {}
    })
    .await;
    assert!(closed.is_ok(), "the evicted connection stayed open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_beyond_the_pending_byte_budget_close_the_oldest_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        handshake_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    // 80 sockets each hold 500 KiB of an unfinished head: 40 MiB, over the 32 MiB budget.
    let padding = format!(
        "GET /v1/health HTTP/1.1\r\nhost: localhost\r\nx-padding: {}",
        "a".repeat(500 << 10)
    );
    let mut sockets = Vec::new();
    for _ in 0..80 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(padding.as_bytes()).await.unwrap();
        sockets.push(tcp);
    }
    // The oldest are closed long before their handshake deadline.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while let Ok(1..) = sockets[0].read(&mut buf).await {}
    })
    .await;
    assert!(closed.is_ok(), "pending heads held past the byte budget");
    let reply = raw_exchange(
        &server,
        b"GET /v1/health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    drop(sockets);
    server.stop().await;
}

//! Browser applications from other origins (CORS), seen as a browser speaks: HTTP/1.1 with an
//! `Origin` header and `OPTIONS` preflights. Only configured origins are answered, the reply
//! headers a script needs are exposed, and a wildcard origin never allows credentials.
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
#[path = "common/raw_http1.rs"]
mod raw_http1;
#[path = "common/server.rs"]
mod server;

use asterope::{Access, Cors, Database, ServerConfig, Tokens};
use raw_http1::{raw_exchange, text, RawReply};
use server::TestServer;

const APP: &str = "https://app.example";

async fn start(dir: &std::path::Path, origins: &[&str]) -> TestServer {
    let mut tokens = Tokens::default();
    tokens.add("writer-secret", Access::ReadWrite);
    let config = ServerConfig {
        tokens,
        cors: Cors::new(origins).unwrap(),
        ..ServerConfig::default()
    };
    TestServer::start(Database::open(dir.join("data")).unwrap(), config).await
}

/// An `OPTIONS` preflight for a PUT with metadata, as a browser sends it (no credentials).
async fn preflight(server: &TestServer, origin: &str) -> RawReply {
    let request = format!(
        "OPTIONS /v1/objects/photo HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         origin: {origin}\r\naccess-control-request-method: PUT\r\n\
         access-control-request-headers: authorization, x-asterope-meta, x-asterope-sha256\r\n\r\n"
    );
    raw_exchange(server, request.as_bytes()).await
}

async fn get(server: &TestServer, path: &str, origin: &str) -> RawReply {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\norigin: {origin}\r\n\
         authorization: Bearer writer-secret\r\nrange: bytes=0-3\r\n\r\n"
    );
    raw_exchange(server, request.as_bytes()).await
}

fn listed(reply: &RawReply, header: &str) -> Vec<String> {
    reply
        .header(header)
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_an_allowed_origin_is_answered_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[APP]).await;
    let reply = preflight(&server, APP).await;
    assert_eq!(reply.status, 204, "{}", reply.head);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some(APP)
    );
    assert_eq!(
        reply.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let methods = listed(&reply, "access-control-allow-methods");
    for method in ["get", "head", "put", "post", "delete"] {
        assert!(methods.iter().any(|m| m == method), "{methods:?}");
    }
    let headers = listed(&reply, "access-control-allow-headers");
    for header in ["authorization", "x-asterope-meta", "x-asterope-sha256"] {
        assert!(headers.iter().any(|h| h == header), "{headers:?}");
    }
    assert!(reply.body.is_empty());

    // Another origin gets no CORS answer: the preflight falls through to the routes.
    let reply = preflight(&server, "https://evil.example").await;
    assert_ne!(reply.status, 204);
    assert!(
        reply.header("access-control-allow-origin").is_none(),
        "{}",
        reply.head
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cors_get_exposes_the_object_headers_to_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[APP]).await;
    let put = "PUT /v1/objects/photo HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
               authorization: Bearer writer-secret\r\ncontent-length: 10\r\n\r\n0123456789";
    assert_eq!(raw_exchange(&server, put.as_bytes()).await.status, 201);

    let reply = get(&server, "/v1/objects/photo", APP).await;
    assert_eq!(reply.status, 206);
    assert_eq!(text(&reply.body), "0123");
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some(APP)
    );
    assert_eq!(reply.header("vary").as_deref(), Some("origin"));
    let exposed = listed(&reply, "access-control-expose-headers");
    for header in [
        "etag",
        "content-range",
        "x-asterope-sha256",
        "x-asterope-version",
        "x-asterope-meta",
        "x-asterope-error-code",
    ] {
        assert!(exposed.iter().any(|h| h == header), "{exposed:?}");
    }
    // Errors are readable by the script too (its code travels in a header and the body).
    let reply = get(&server, "/v1/objects/absent", APP).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (404, "not_found")
    );
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some(APP)
    );

    // A foreign origin's request is served as any request, but the browser is told nothing.
    let reply = get(&server, "/v1/objects/photo", "https://evil.example").await;
    assert!(reply.header("access-control-allow-origin").is_none());
    assert!(reply.header("access-control-expose-headers").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_origin_never_allows_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["*"]).await;
    let reply = preflight(&server, "https://anyone.example").await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(reply.header("access-control-allow-credentials").is_none());
    let reply = get(&server, "/v1/health", "https://anyone.example").await;
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(reply.header("access-control-allow-credentials").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_origins_no_cors_headers_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let reply = preflight(&server, APP).await;
    assert_ne!(reply.status, 204);
    let reply = get(&server, "/v1/health", APP).await;
    assert_eq!(reply.status, 200);
    assert!(!reply.head.contains("access-control-"), "{}", reply.head);
    server.stop().await;
}

#[test]
fn serve_refuses_a_cors_origin_that_is_not_an_origin() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_asterope"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--cors-origin", "https://app.example/path"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CORS origin"), "{stderr}");
}

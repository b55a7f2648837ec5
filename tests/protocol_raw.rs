//! The wire protocol seen by an independent HTTP/2 client (the `h2` crate directly, and curl
//! where installed): trailers, ranges, bad keys, truncated bodies, oversize metadata, wrong
//! checksums, auth, and the exact error replies.

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::Duration;

use asterope::{Access, Database, ServerConfig, Tokens};
use bytes::Bytes;
use common::{pattern, sha256, MIB};
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, StatusCode};
use server::TestServer;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

async fn read_reply(response: h2::client::ResponseFuture) -> Reply {
    read_reply_of(response, true).await
}

/// Reads a reply; a HEAD reply announces the object's length but carries no body.
async fn read_reply_of(response: h2::client::ResponseFuture, with_body: bool) -> Reply {
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await.filter(|_| with_body) {
        let chunk = chunk.unwrap_or_else(|e| panic!("{parts:?} {bytes:?}: {e}"));
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: bytes,
    }
}

/// Sends a request with an optional body and optional trailers.
async fn send(
    client: &SendRequest<Bytes>,
    request: Request<()>,
    body: Option<Bytes>,
    trailers: Option<HeaderMap>,
) -> Reply {
    let mut client = client.clone().ready().await.unwrap();
    let with_body = request.method() != Method::HEAD;
    let end_now = body.is_none() && trailers.is_none();
    let (response, mut stream) = client.send_request(request, end_now).unwrap();
    if let Some(body) = body {
        stream.send_data(body, trailers.is_none()).unwrap();
    }
    if let Some(trailers) = trailers {
        stream.send_trailers(trailers).unwrap();
    }
    read_reply_of(response, with_body).await
}

async fn start(config: ServerConfig) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(8 << 20)
        .open()
        .unwrap();
    let server = TestServer::start(db, config).await;
    (dir, server)
}

#[tokio::test]
async fn sha256_trailer_is_checked_before_commit() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let data = pattern(1, 300_000);
    let mut good = HeaderMap::new();
    good.insert("x-asterope-sha256", sha256(&data).to_hex().parse().unwrap());
    let put = |path: &str| request(Method::PUT, path, &[("x-asterope-meta", "{\"a\":1}")]);
    let reply = send(
        &client,
        put("/v1/objects/t/good"),
        Some(data.clone()),
        Some(good),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["sha256"], sha256(&data).to_hex());
    assert_eq!(reply.json()["size"], 300_000);

    let mut bad = HeaderMap::new();
    bad.insert("x-asterope-sha256", sha256(b"x").to_hex().parse().unwrap());
    let reply = send(
        &client,
        put("/v1/objects/t/bad"),
        Some(data.clone()),
        Some(bad),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "checksum_mismatch");
    assert_eq!(reply.headers["x-asterope-error-code"], "checksum_mismatch");
    let reply = send(
        &client,
        request(Method::HEAD, "/v1/objects/t/bad", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.headers["x-asterope-error-code"], "not_found");

    // A digest in the header is checked too.
    let header = sha256(b"y").to_hex();
    let with_header = request(
        Method::PUT,
        "/v1/objects/t/hdr",
        &[("x-asterope-sha256", &header)],
    );
    let reply = send(&client, with_header, Some(data), None).await;
    assert_eq!(reply.error_code(), "checksum_mismatch");
}

#[tokio::test]
async fn ranges_and_object_headers() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let data = pattern(2, 100_000);
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/r", &[]),
        Some(data.clone()),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/r", &[("range", "bytes=10-19")]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.headers["content-range"], "bytes 10-19/100000");
    assert_eq!(reply.headers["content-length"], "10");
    assert_eq!(&reply.body[..], &data[10..20]);
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/r", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256(&data).to_hex())
    );
    assert_eq!(reply.body, data.to_vec());
    for bad in ["bytes=100000-", "bytes=0-1,5-6", "items=0-1", "bytes=9-2"] {
        let reply = send(
            &client,
            request(Method::GET, "/v1/objects/r", &[("range", bad)]),
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(reply.error_code(), "invalid_range", "{bad}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let cases: Vec<(Request<()>, StatusCode, &str)> = vec![
        (
            request(Method::PUT, "/v1/objects/a%00b", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_key",
        ),
        (
            request(Method::PUT, "/v1/objects/%ff%fe", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_key",
        ),
        (
            request(
                Method::GET,
                &format!("/v1/objects/{}", "k".repeat(1025)),
                &[],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_key",
        ),
        (
            request(
                Method::PUT,
                "/v1/objects/m",
                &[("x-asterope-meta", "{not json")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_metadata",
        ),
        (
            request(
                Method::PUT,
                "/v1/objects/m",
                &[("x-asterope-meta", "[1,2]")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_metadata",
        ),
        (
            request(
                Method::PUT,
                "/v1/objects/m",
                &[("x-asterope-sha256", "xyz")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            request(
                Method::DELETE,
                "/v1/objects/m",
                &[("x-asterope-if-version", "-1")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            request(Method::GET, "/v1/objects/missing", &[]),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            request(Method::GET, "/v1/objects?limit=abc", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            request(Method::GET, "/v2/whatever", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
    ];
    for (req, status, code) in cases {
        let uri = req.uri().clone();
        let reply = send(&client, req, Some(Bytes::from_static(b"data")), None).await;
        assert_eq!(reply.status, status, "{uri}");
        assert_eq!(reply.error_code(), code, "{uri}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(!message.is_empty(), "{uri}: no message");
    }
    // Oversize metadata (64 KiB encoded is the limit).
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(100_000));
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/m", &[("x-asterope-meta", &big)]),
        Some(Bytes::from_static(b"data")),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_metadata");
    // The exact error body of a missing object.
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/nope", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": {"code": "not_found", "message": "object not found: nope", "key": "nope"}})
    );
}

#[tokio::test]
async fn reset_uploads_commit_nothing_and_the_server_keeps_serving() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let mut sender = client.clone().ready().await.unwrap();
    let (response, mut stream) = sender
        .send_request(request(Method::PUT, "/v1/objects/cut", &[]), false)
        .unwrap();
    stream.send_data(pattern(3, 2 * MIB), false).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.send_reset(h2::Reason::CANCEL);
    let _ = response.await;
    // Declared length longer than what is sent: HTTP/2 itself resets the stream.
    let mut sender = client.clone().ready().await.unwrap();
    let short = request(
        Method::PUT,
        "/v1/objects/short",
        &[("content-length", "1000")],
    );
    let (response, mut stream) = sender.send_request(short, false).unwrap();
    stream
        .send_data(Bytes::from_static(b"only this"), true)
        .unwrap();
    assert!(response.await.map_or(true, |r| !r.status().is_success()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for key in ["cut", "short"] {
        let reply = send(
            &client,
            request(Method::HEAD, &format!("/v1/objects/{key}"), &[]),
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{key}");
    }
    let reply = send(&client, request(Method::GET, "/v1/health", &[]), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn stalled_uploads_are_shed() {
    let config = ServerConfig {
        body_idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let (_dir, server) = start(config).await;
    let client = server.connect_raw().await;
    let mut sender = client.clone().ready().await.unwrap();
    let (response, mut stream) = sender
        .send_request(request(Method::PUT, "/v1/objects/slow", &[]), false)
        .unwrap();
    stream
        .send_data(Bytes::from_static(b"a little"), false)
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(response))
        .await
        .expect("stalled upload not shed");
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "truncated");
    drop(stream);
    let reply = send(
        &client,
        request(Method::HEAD, "/v1/objects/slow", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_guard_every_route_but_health() {
    let mut tokens = Tokens::default();
    tokens.add("writer-secret", Access::ReadWrite);
    tokens.add("reader-secret", Access::ReadOnly);
    let config = ServerConfig {
        tokens,
        ..ServerConfig::default()
    };
    let (_dir, server) = start(config).await;
    let client = server.connect_raw().await;
    let writer = [("authorization", "Bearer writer-secret")];
    let reader = [("authorization", "Bearer reader-secret")];
    let wrong = [("authorization", "Bearer nope")];
    let put = |h: &[(&str, &str)]| request(Method::PUT, "/v1/objects/guarded", h);
    let body = || Some(Bytes::from_static(b"payload"));

    let reply = send(&client, put(&[]), body(), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let reply = send(&client, put(&wrong), body(), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(&client, put(&reader), body(), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/guarded", &writer),
        None,
        None,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "refused writes stored something"
    );
    let reply = send(&client, put(&writer), body(), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    for path in [
        "/v1/objects/guarded",
        "/v1/objects",
        "/metrics",
        "/v1/metadata/guarded",
    ] {
        let reply = send(&client, request(Method::GET, path, &[]), None, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        let reply = send(&client, request(Method::GET, path, &reader), None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let reply = send(
        &client,
        request(Method::DELETE, "/v1/objects/guarded", &reader),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Compaction rewrites storage: a read-only token may not start it.
    let compact = |h: &[(&str, &str)]| request(Method::POST, "/v1/compact", h);
    let reply = send(&client, compact(&[]), None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(&client, compact(&reader), None, None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = send(&client, compact(&writer), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["moved_bytes"].is_u64(), "{:?}", reply.json());
    let reply = send(&client, request(Method::GET, "/v1/health", &[]), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    send(
        &client,
        request(Method::PUT, "/v1/objects/m1", &[]),
        Some(Bytes::from_static(b"12345")),
        None,
    )
    .await;
    let reply = send(&client, request(Method::GET, "/metrics", &[]), None, None).await;
    let text = String::from_utf8(reply.body).unwrap();
    assert!(
        text.contains("asterope_requests_total{route=\"object\",method=\"PUT\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("asterope_bytes_received_total 5"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("asterope_"), "{line}");
    }
}

#[tokio::test]
async fn curl_speaks_to_the_server_with_prior_knowledge() {
    let Ok(version) = std::process::Command::new("curl").arg("--version").output() else {
        eprintln!("SKIPPED: curl is not installed");
        return;
    };
    assert!(version.status.success());
    let (dir, server) = start(ServerConfig::default()).await;
    let file = dir.path().join("upload.bin");
    let data = pattern(4, 3 * MIB);
    std::fs::write(&file, &data).unwrap();
    let base = format!("{}/v1/objects/curl%20key", server.url());
    let curl = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-sS", "--http2-prior-knowledge"])
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let out = curl(vec![
        "-X".into(),
        "PUT".into(),
        "--data-binary".into(),
        format!("@{}", file.display()),
        "-H".into(),
        "x-asterope-meta: {\"source\":\"curl\"}".into(),
        "-H".into(),
        format!("x-asterope-sha256: {}", sha256(&data).to_hex()),
        base.clone(),
    ])
    .await;
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["size"], 3 * MIB);
    assert_eq!(reply["meta"]["source"], "curl");
    let out = curl(vec![base.clone()]).await;
    assert!(out.stdout == data.to_vec());
    let out = curl(vec!["-r".into(), "5-9".into(), base.clone()]).await;
    assert_eq!(&out.stdout[..], &data[5..10]);
    let out = curl(vec![
        "-X".into(),
        "DELETE".into(),
        "-w".into(),
        "%{http_code}".into(),
        base.clone(),
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "204");
    let out = curl(vec![
        "-w".into(),
        "%{http_code}".into(),
        "-o".into(),
        "/dev/null".into(),
        base.clone(),
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    // `curl -I` reads HEAD replies, errors included, without a protocol error.
    for (url, code) in [
        (base, "404"),
        (format!("{}/v1/health", server.url()), "200"),
    ] {
        let out = curl(vec!["-I".into(), "-w".into(), "%{http_code}".into(), url]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).ends_with(code));
    }
}

#[tokio::test]
async fn idle_transactions_are_rolled_back_when_their_lease_ends() {
    let config = ServerConfig {
        transaction_lease: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (_dir, server) = start(config).await;
    let client = server.connect_raw().await;
    let reply = send(
        &client,
        request(Method::POST, "/v1/transactions", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let staged = request(
        Method::PUT,
        "/v1/objects/leased",
        &[("x-asterope-transaction", &id)],
    );
    let reply = send(&client, staged, Some(Bytes::from_static(b"staged")), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["version"], 0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let commit = request(Method::POST, &format!("/v1/transactions/{id}/commit"), &[]);
    let reply = send(&client, commit, None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");
    let reply = send(
        &client,
        request(Method::HEAD, "/v1/objects/leased", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let unknown = request(
        Method::GET,
        "/v1/objects/x",
        &[("x-asterope-transaction", "nope")],
    );
    let reply = send(&client, unknown, None, None).await;
    assert_eq!(reply.error_code(), "not_found");
}

#[tokio::test]
async fn query_bodies_speak_json_or_messagepack() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    for (key, patient) in [("a", "1"), ("b", "2"), ("c", "1")] {
        let meta = format!("{{\"patient_id\":\"{patient}\"}}");
        let put = request(
            Method::PUT,
            &format!("/v1/objects/{key}"),
            &[("x-asterope-meta", &meta)],
        );
        send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    }
    let body =
        serde_json::json!({"filter": {"patient_id": "1"}, "sort": "-patient_id", "limit": 10});
    let reply = send(
        &client,
        request(
            Method::POST,
            "/v1/query",
            &[("content-type", "application/json")],
        ),
        Some(Bytes::from(body.to_string())),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let keys: Vec<_> = reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect();
    assert_eq!(keys, vec!["a", "c"]);
    assert!(reply.json()["next"].is_null());

    let packed = asterope_serialization::encode(&body).unwrap();
    let reply = send(
        &client,
        request(
            Method::POST,
            "/v1/query",
            &[
                ("content-type", "application/msgpack"),
                ("accept", "application/msgpack"),
            ],
        ),
        Some(Bytes::from(packed)),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/msgpack");
    let decoded: serde_json::Value = asterope_serialization::decode(&reply.body, "reply").unwrap();
    let keys: Vec<_> = decoded["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect();
    assert_eq!(keys, vec!["a", "c"]);

    let reply = send(
        &client,
        request(Method::POST, "/v1/query", &[]),
        Some(Bytes::from_static(
            b"{\"filter\": {\"a\": {\"$bogus\": 1}}}",
        )),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_query");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("$bogus"), "{message}");
}

#[tokio::test]
async fn shutdown_drains_then_aborts_unfinished_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let config = ServerConfig {
        shutdown_grace: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(db, config).await;
    let client = server.connect_raw().await;
    let done = send(
        &client,
        request(Method::PUT, "/v1/objects/done", &[]),
        Some(Bytes::from_static(b"ok")),
        None,
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED);
    // An upload that never finishes.
    let mut sender = client.clone().ready().await.unwrap();
    let (_response, mut stream) = sender
        .send_request(request(Method::PUT, "/v1/objects/unfinished", &[]), false)
        .unwrap();
    stream.send_data(pattern(1, 100_000), false).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("server did not stop");
    // The directory is free again, the finished object is there, the unfinished one is not.
    let mut reopened = None;
    for _ in 0..50 {
        match Database::open(dir.path()) {
            Ok(db) => {
                reopened = Some(db);
                break;
            }
            Err(e) if e.code() == "locked" => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let db = reopened.expect("data directory still locked after shutdown");
    use asterope::ObjectOps;
    assert!(db.head(&asterope::Key::new("done").unwrap()).await.is_ok());
    assert_eq!(
        db.head(&asterope::Key::new("unfinished").unwrap())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

/// A server that accepts one read-only token, `reader-secret`.
async fn start_with_reader_token() -> (tempfile::TempDir, TestServer) {
    let mut tokens = Tokens::default();
    tokens.add("reader-secret", Access::ReadOnly);
    start(ServerConfig {
        tokens,
        ..ServerConfig::default()
    })
    .await
}

/// Sends a request without a body.
async fn ask(
    client: &SendRequest<Bytes>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    send(client, request(method, path, headers), None, None).await
}

/// Sends a HEAD and returns its reply after checking that the HEADERS frame ended the stream:
/// no DATA frame follows, on success and on error replies alike.
async fn head_only(client: &SendRequest<Bytes>, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut client = client.clone().ready().await.unwrap();
    let (response, _) = client
        .send_request(request(Method::HEAD, path, headers), true)
        .unwrap();
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    assert!(
        body.is_end_stream(),
        "HEAD {path} ({}): the HEADERS frame did not end the stream",
        parts.status
    );
    let data = body.data().await;
    assert!(data.is_none(), "HEAD {path} ({}): {data:?}", parts.status);
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: Vec::new(),
    }
}

#[tokio::test]
async fn head_replies_carry_headers_only_on_every_route() {
    let (_dir, server) = start_with_reader_token().await;
    let client = server.connect_raw().await;
    let reader = ("authorization", "Bearer reader-secret");

    let reply = head_only(&client, "/v1/health", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The length a GET would carry.
    let get = ask(&client, Method::GET, "/v1/health", &[]).await;
    assert_eq!(
        reply.headers["content-length"],
        get.body.len().to_string().as_str()
    );

    let reply = head_only(&client, "/v1/objects/missing", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["x-asterope-error-code"], "unauthorized");

    let reply = head_only(&client, "/v1/objects/missing", &[reader]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.headers["x-asterope-error-code"], "not_found");

    let reply = head_only(&client, "/v1/objects?limit=many", &[reader]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = head_only(&client, "/v1/no-such-route", &[reader]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let msgpack = ("accept", "application/msgpack");
    for path in ["/v1/objects", "/v1/stats", "/v1/indexes", "/metrics"] {
        let reply = head_only(&client, path, &[reader]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let reply = head_only(&client, path, &[reader, msgpack]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn store_wide_routes_refuse_a_transaction_header() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let begin = request(Method::POST, "/v1/transactions", &[]);
    let reply = send(&client, begin, None, None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let inside = [("x-asterope-transaction", id.as_str())];
    for (method, path) in [
        (Method::GET, "/v1/stats"),
        (Method::POST, "/v1/compact"),
        (Method::GET, "/v1/indexes"),
        (Method::PUT, "/v1/indexes/kind"),
        (Method::DELETE, "/v1/indexes/kind"),
        (Method::POST, "/v1/transactions"),
    ] {
        let reply = ask(&client, method.clone(), path, &inside).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{method} {path}"
        );
    }
    // Nothing was created by the refused requests.
    let reply = ask(&client, Method::GET, "/v1/indexes", &[]).await;
    assert_eq!(reply.json()["indexes"], serde_json::json!([]));
    let count = request(Method::POST, "/v1/query/count", &inside);
    let reply = send(&client, count, Some(Bytes::from_static(b"{}")), None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn list_parameters_are_refused_unless_exact() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    for i in 0..3 {
        let put = request(Method::PUT, &format!("/v1/objects/k{i}"), &[]);
        let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let list = |query: &str| request(Method::GET, &format!("/v1/objects?{query}"), &[]);
    let reply = send(&client, list("limit=1"), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let next = reply.json()["next"].as_str().unwrap().to_string();
    let reply = send(&client, list(&format!("limit=1&cursor={next}")), None, None).await;
    assert_eq!(reply.json()["items"][0]["key"], "k1");
    for query in [
        "cursor=%00",
        "cursor=k0",
        "cursor=zz",
        "cursor=",
        &format!("prefix=k1&cursor={next}"),
        &format!("cursor={next}&cursor={next}"),
        "limit=0",
        "limit=-1",
        "limit=+2",
        "limit=%202",
        "limit=2.0",
        "limit=99999999999999999999999",
        "limit=10001",
        "limit=2&limit=3",
        "prefix=a&prefix=b",
        "prefix=%FF",
        "order=desc",
    ] {
        let reply = send(&client, list(query), None, None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{query}: {:?}",
            reply.json()
        );
    }
    let reply = ask(&client, Method::PUT, "/v1/indexes/a%FFb", &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = ask(&client, Method::GET, "/v1/indexes", &[]).await;
    assert_eq!(reply.json()["indexes"], serde_json::json!([]));
}

#[tokio::test]
async fn unsatisfiable_or_malformed_ranges_are_416_with_the_size() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    for (key, size) in [("empty", 0usize), ("ten", 10)] {
        let put = request(Method::PUT, &format!("/v1/objects/{key}"), &[]);
        let reply = send(&client, put, Some(pattern(3, size)), None).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let get = |key: &str, range: &str| {
        request(
            Method::GET,
            &format!("/v1/objects/{key}"),
            &[("range", range)],
        )
    };
    let refused = [
        ("empty", "bytes=-5", "0"),
        ("empty", "bytes=0-", "0"),
        ("ten", "bytes=10-", "10"),
        ("ten", "bytes=-0", "10"),
        ("ten", "bytes=+5-+9", "10"),
        ("ten", "bytes=+5-", "10"),
        ("ten", "bytes=-+5", "10"),
        ("ten", "bytes= 5-9", "10"),
        ("ten", "bytes=5 -9", "10"),
        ("ten", "bytes=0-1,5-6", "10"),
        ("ten", "items=0-1", "10"),
    ];
    for (key, range, size) in refused {
        let reply = send(&client, get(key, range), None, None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::RANGE_NOT_SATISFIABLE, "invalid_range"),
            "{key} {range}"
        );
        assert_eq!(
            reply.headers["content-range"],
            format!("bytes */{size}").as_str(),
            "{key} {range}"
        );
    }
    let reply = send(&client, get("ten", "BYTES=-3"), None, None).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.headers["content-range"], "bytes 7-9/10");
    // A missing object is 404 whatever its range; a HEAD ignores Range.
    let reply = send(&client, get("missing", "bytes=+1-"), None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let head = request(Method::HEAD, "/v1/objects/ten", &[("range", "bytes=50-")]);
    let reply = send(&client, head, None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-length"], "10");
}

#[tokio::test]
async fn duplicate_and_unknown_headers_are_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let data = Bytes::from_static(b"payload");
    let good = sha256(&data).to_hex();
    let bad = sha256(b"other").to_hex();
    let put = |headers: &[(&str, &str)]| request(Method::PUT, "/v1/objects/h", headers);
    let refused_puts: [&[(&str, &str)]; 8] = [
        &[("x-asterope-sha256", &good), ("x-asterope-sha256", &bad)],
        &[("x-asterope-sha256", &good), ("x-asterope-sha256", &good)],
        &[
            ("x-asterope-if-version", "0"),
            ("x-asterope-if-version", "7"),
        ],
        &[("x-asterope-meta", "{}"), ("x-asterope-meta", "{\"a\":1}")],
        &[("x-asterope-if-version", "+0")],
        &[("x-asterope-if-verison", "7")],
        &[("content-type", "a/b"), ("content-type", "c/d")],
        &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
    ];
    for headers in refused_puts {
        let reply = send(&client, put(headers), Some(data.clone()), None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{headers:?}"
        );
    }
    let mut trailers = HeaderMap::new();
    trailers.append("x-asterope-sha256", good.parse().unwrap());
    trailers.append("x-asterope-sha256", bad.parse().unwrap());
    let reply = send(&client, put(&[]), Some(data.clone()), Some(trailers)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = ask(&client, Method::GET, "/v1/objects/h", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "a refused put stored");

    let reply = send(&client, put(&[]), Some(data.clone()), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let get = |headers: &[(&str, &str)]| request(Method::GET, "/v1/objects/h", headers);
    let refused_gets: [&[(&str, &str)]; 3] = [
        &[("range", "bytes=0-1"), ("range", "bytes=2-3")],
        &[("x-asterope-verify", "yes")],
        &[
            ("x-asterope-transaction", "a"),
            ("x-asterope-transaction", "b"),
        ],
    ];
    for headers in refused_gets {
        let reply = send(&client, get(headers), None, None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{headers:?}"
        );
    }
    let reply = send(&client, get(&[("x-asterope-verify", "client")]), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn an_empty_key_is_an_invalid_key_on_every_object_method() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let object_methods = [Method::PUT, Method::GET, Method::DELETE, Method::HEAD];
    let metadata_methods = [Method::PUT, Method::GET, Method::HEAD];
    for (path, methods) in [
        ("/v1/objects/", &object_methods[..]),
        ("/v1/metadata/", &metadata_methods[..]),
    ] {
        for method in methods {
            let body = (method == Method::PUT).then(|| Bytes::from_static(b"{}"));
            let reply = send(&client, request(method.clone(), path, &[]), body, None).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
            assert_eq!(
                reply.headers["x-asterope-error-code"], "invalid_key",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn integers_beyond_64_bits_are_refused_not_rounded() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let big = r#"{"n":18446744073709551615}"#;
    let put = request(Method::PUT, "/v1/objects/big", &[("x-asterope-meta", big)]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_metadata")
    );
    let put = request(Method::PUT, "/v1/objects/big", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let update = |content_type: &str| {
        request(
            Method::PUT,
            "/v1/metadata/big",
            &[("content-type", content_type)],
        )
    };
    let reply = send(&client, update("application/json"), Some(big.into()), None).await;
    assert_eq!(reply.error_code(), "invalid_metadata");
    let packed = asterope_serialization::encode(&serde_json::json!({ "n": u64::MAX })).unwrap();
    let reply = send(
        &client,
        update("application/msgpack"),
        Some(packed.into()),
        None,
    )
    .await;
    assert_eq!(reply.error_code(), "invalid_metadata");
    let query = request(Method::POST, "/v1/query", &[]);
    let filter = r#"{"filter":{"n":99999999999999999999}}"#;
    let reply = send(&client, query, Some(filter.into()), None).await;
    assert_eq!(reply.error_code(), "invalid_query");
    let reply = ask(&client, Method::GET, "/v1/metadata/big", &[]).await;
    assert_eq!(reply.json()["meta"], serde_json::json!({}));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_401_names_it() {
    let (_dir, server) = start_with_reader_token().await;
    let client = server.connect_raw().await;
    for accepted in [
        "Bearer reader-secret",
        "bearer reader-secret",
        "BEARER reader-secret",
        "bEaReR  reader-secret",
    ] {
        let list = request(Method::GET, "/v1/objects", &[("authorization", accepted)]);
        let reply = send(&client, list, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{accepted}");
    }
    for refused in [
        None,
        Some("Bearerreader-secret"),
        Some("Basic reader-secret"),
        Some("Bearer nope"),
    ] {
        let headers: Vec<(&str, &str)> = refused.iter().map(|h| ("authorization", *h)).collect();
        for method in [Method::GET, Method::HEAD] {
            let reply = ask(&client, method.clone(), "/v1/objects", &headers).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {refused:?}"
            );
            assert_eq!(
                reply.headers["www-authenticate"], "Bearer realm=\"asterope\"",
                "{method} {refused:?}"
            );
        }
    }
}

/// A request whose header block (`bytes` of header values) goes out at once, in the
/// 16 KiB frames a client must use before it has seen the server's SETTINGS.
async fn health_with_large_headers(
    server: &TestServer,
    bytes: usize,
) -> Result<StatusCode, h2::Error> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await?;
    let connection = tokio::spawn(connection);
    let filler = hex::encode(pattern(9, bytes / 2));
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri("http://localhost/v1/health");
    for (i, piece) in filler.as_bytes().chunks(4000).enumerate() {
        builder = builder.header(format!("x-filler-{i}"), std::str::from_utf8(piece).unwrap());
    }
    let (response, _) = client.send_request(builder.body(()).unwrap(), true)?;
    let status = response.await?.status();
    drop(client);
    let _ = connection.await;
    Ok(status)
}

#[tokio::test]
async fn a_large_header_block_sent_before_settings_is_served() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let limit = asterope_serialization::MAX_HEADER_LIST_BYTES;
    for bytes in [100_000, 200_000, limit - 20_000] {
        let status = health_with_large_headers(&server, bytes).await;
        assert_eq!(
            status.ok(),
            Some(StatusCode::OK),
            "{bytes} bytes of headers"
        );
    }
    // Past the limit: a clean refusal of the request, not of the connection.
    let status = health_with_large_headers(&server, limit + 50_000).await;
    assert_eq!(
        status.ok(),
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    );
}

#[tokio::test]
async fn a_query_string_on_a_route_without_parameters_is_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let put = request(Method::PUT, "/v1/objects/a?b=c", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let reply = ask(&client, Method::GET, "/v1/objects/a", &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "stored under a cut key"
    );
    let put = request(Method::PUT, "/v1/objects/a%3Fb=c", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(reply.json()["key"], "a?b=c");
    for (method, path) in [
        (Method::GET, "/v1/objects/a%3Fb=c?x"),
        (Method::GET, "/v1/metadata/a%3Fb=c?x=1"),
        (Method::GET, "/v1/stats?verbose=1"),
        (Method::POST, "/v1/query?limit=5"),
    ] {
        let reply = ask(&client, method.clone(), path, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    let reply = ask(&client, Method::GET, "/v1/health?probe=1", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_json_keys_and_malformed_escapes_are_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let body = || Some(Bytes::from_static(b"x"));
    let meta = [("x-asterope-meta", r#"{"a":1,"a":2}"#)];
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/k", &meta),
        body(),
        None,
    )
    .await;
    assert_eq!(reply.error_code(), "invalid_metadata");
    let query = r#"{"filter":{"a":1},"filter":{"a":2}}"#;
    let post = request(Method::POST, "/v1/query", &[]);
    let reply = send(&client, post, Some(query.into()), None).await;
    assert_eq!(reply.error_code(), "invalid_query");
    let packed: &[u8] = &[
        0x81, 0xa6, b'f', b'i', b'l', b't', b'e', b'r', 0x82, 0xa1, b'a', 1, 0xa1, b'a', 2,
    ];
    let post = request(
        Method::POST,
        "/v1/query/count",
        &[("content-type", "application/msgpack")],
    );
    let reply = send(&client, post, Some(Bytes::copy_from_slice(packed)), None).await;
    assert_eq!(reply.error_code(), "invalid_query");
    for (method, path, code) in [
        (Method::PUT, "/v1/objects/a%ZZ", "invalid_key"),
        (Method::PUT, "/v1/objects/a%2", "invalid_key"),
        (Method::GET, "/v1/objects?prefix=%G1", "invalid_argument"),
        (Method::PUT, "/v1/indexes/a%", "invalid_query"),
    ] {
        let reply = send(&client, request(method.clone(), path, &[]), body(), None).await;
        assert_eq!(reply.error_code(), code, "{method} {path}");
    }
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/a%25ZZ", &[]),
        body(),
        None,
    )
    .await;
    assert_eq!(reply.json()["key"], "a%ZZ");
}

#[tokio::test]
async fn asterope_headers_where_they_mean_nothing_are_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let put = request(Method::PUT, "/v1/objects/k", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let digest = sha256(b"x").to_hex();
    for (method, path, header) in [
        (Method::GET, "/v1/objects/k", ("x-asterope-if-version", "1")),
        (
            Method::GET,
            "/v1/metadata/k",
            ("x-asterope-if-version", "1"),
        ),
        (Method::GET, "/v1/objects/k", ("x-asterope-meta", "{}")),
        (
            Method::DELETE,
            "/v1/objects/k",
            ("x-asterope-sha256", digest.as_str()),
        ),
        (
            Method::PUT,
            "/v1/metadata/k",
            ("x-asterope-sha256", digest.as_str()),
        ),
        (
            Method::PUT,
            "/v1/objects/k",
            ("x-asterope-verify", "client"),
        ),
        (Method::GET, "/v1/objects", ("x-asterope-if-version", "1")),
        (Method::POST, "/v1/query", ("x-asterope-meta", "{}")),
    ] {
        let body = matches!(method, Method::PUT | Method::POST).then(|| Bytes::from_static(b"{}"));
        let reply = send(
            &client,
            request(method.clone(), path, &[header]),
            body,
            None,
        )
        .await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{method} {path} {header:?}"
        );
    }
    // Where they apply, they work.
    let conditional = [("x-asterope-if-version", "1")];
    let update = request(Method::PUT, "/v1/metadata/k", &conditional);
    let reply = send(&client, update, Some(Bytes::from_static(b"{}")), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = ask(
        &client,
        Method::HEAD,
        "/v1/objects/k",
        &[("x-asterope-verify", "client")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// MessagePack bodies nested deeper than any valid request are refused before they are decoded:
/// a few hundred bytes of nested arrays used to overflow the stack of the worker decoding them
/// and abort the whole server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_messagepack_bodies_are_refused_not_a_crash() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let put = request(Method::PUT, "/v1/objects/k", &[]);
    send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    let nested = |prefix: &[u8], levels: usize, last: u8| {
        let mut body = prefix.to_vec();
        body.extend(std::iter::repeat_n(0x91u8, levels));
        body.push(last);
        Bytes::from(body)
    };
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/query/count",
            nested(b"\x81\xa6filter\x81\xa1a", 5000, 0x80),
        ),
        (
            Method::POST,
            "/v1/query",
            nested(b"\x81\xa6filter\x81\xa1a", 5000, 0x80),
        ),
        (
            Method::PUT,
            "/v1/metadata/k",
            nested(b"\x81\xa1a", 5000, 0xc0),
        ),
    ] {
        let head = request(
            method.clone(),
            path,
            &[("content-type", "application/msgpack")],
        );
        let reply = send(&client, head, Some(body), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    let health = ask(&client, Method::GET, "/v1/health", &[]).await;
    assert_eq!(health.status, StatusCode::OK);
}

/// Two streams of one connection, each with a metadata header of the largest valid size (about
/// 491 KB of JSON for a 64 KiB document), are both served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_largest_metadata_headers_are_served() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let reply = ask(&client, Method::GET, "/v1/health", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let items = vec![r#"{"$base64":""}"#; 32_765].join(",");
    let meta = format!(r#"{{"b":[{items}]}}"#);
    assert!(meta.len() > 490_000);
    let puts = (0..2).map(|i| {
        let request = request(
            Method::PUT,
            &format!("/v1/objects/h/{i}"),
            &[("x-asterope-meta", meta.as_str())],
        );
        send(&client, request, Some(Bytes::from_static(b"abc")), None)
    });
    for reply in futures::future::join_all(puts).await {
        assert_eq!(reply.status, StatusCode::CREATED);
    }
}

//! Uploads on the wire: the SHA-256 trailer is checked before commit, and reset, stalled or
//! unfinished uploads (at shutdown) commit nothing while the server keeps serving.

use std::time::Duration;

use asterope::{Database, ServerConfig};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::client::{read_reply, request, send, start};
use crate::common::{pattern, sha256, MIB};
use crate::server::TestServer;

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

//! The server beside objects: Prometheus metrics, transactions rolled back when their lease
//! ends, and curl speaking HTTP/2 with prior knowledge.

use std::time::Duration;

use asterope::ServerConfig;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::{request, send, start};
use crate::common::{pattern, sha256, MIB};

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

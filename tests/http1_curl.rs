//! curl speaking HTTP/1.1 to the server, without `--http2-prior-knowledge`: PUT (with a
//! content-length and as a chunked body of unknown length), GET, HEAD, ranges, queries, DELETE,
//! an announced SHA-256 header right and wrong, a store too full for an upload, an `Upgrade:
//! h2c` offer, and ALPN over TLS. curl is required: these tests fail when it is missing.
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

use asterope::{Database, ServerConfig};
use common::{pattern, sha256, MIB};
use curl::{curl, curl_with_stdin};
use raw_http1::text;
use server::TestServer;

async fn start(dir: &Path, config: ServerConfig) -> TestServer {
    let db = Database::builder(dir.join("data"))
        .extent_size(8 << 20)
        .capacity_limit(Some(32 << 20))
        .open()
        .unwrap();
    TestServer::start(db, config).await
}

/// The error code of a JSON error reply.
fn error_code(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    json["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_without_prior_knowledge_puts_gets_heads_ranges_queries_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let data = pattern(1, 3 * MIB + 17);
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let file = file.display().to_string();
    let url = format!("{}/v1/objects/plain%20curl", server.url());

    // `-T` sends a content-length body (and `Expect: 100-continue`).
    let out = curl(&[
        "-T",
        &file,
        "-H",
        "x-asterope-meta: {\"source\":\"curl\"}",
        "-w",
        "\n%{http_code} %{http_version}",
        &url,
    ])
    .await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with("\n201 1.1"),
        "{stdout} {}",
        text(&out.stderr)
    );
    let reply: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(reply["size"], data.len());
    assert_eq!(reply["meta"]["source"], "curl");
    assert_eq!(reply["sha256"], sha256(&data).to_hex());

    // `-T -` reads standard input: a chunked body of unknown length.
    let chunked_url = format!("{}/v1/objects/from-stdin", server.url());
    let out = curl_with_stdin(
        &["-T", "-", "-w", "\n%{http_code}", &chunked_url],
        Some(file.clone().into()),
    )
    .await;
    assert!(
        text(&out.stdout).ends_with("\n201"),
        "{}",
        text(&out.stdout)
    );

    for url in [&url, &chunked_url] {
        let out = curl(&[url]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(out.stdout == data.to_vec(), "GET returned other bytes");
    }

    // HEAD: the headers of the GET, its content-length included, and no body.
    let out = curl(&["-I", &url]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let head = text(&out.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", data.len())),
        "{head}"
    );
    assert!(head.contains(&format!("x-asterope-sha256: {}", sha256(&data).to_hex())));

    // Ranges: 206 with the bytes, 416 beyond the end.
    let out = curl(&["-r", "5-9", "-w", "%{http_code}", &url]).await;
    assert_eq!(&out.stdout[..5], &data[5..10]);
    assert_eq!(text(&out.stdout[5..]), "206");
    let beyond = format!("{}-", data.len() + 10);
    let out = curl(&["-r", &beyond, "-i", &url]).await;
    let reply = text(&out.stdout).to_ascii_lowercase();
    assert!(reply.starts_with("http/1.1 416"), "{reply}");
    assert!(reply.contains("\"code\":\"invalid_range\""), "{reply}");

    // Queries are plain POSTs.
    let out = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        "{\"filter\":{\"source\":\"curl\"}}",
        &format!("{}/v1/query", server.url()),
    ])
    .await;
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["key"], "plain curl");

    // An `Upgrade: h2c` offer (curl --http2 on http://) is answered over HTTP/1.1.
    let health = format!("{}/v1/health", server.url());
    let out = curl(&[
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        &health,
    ])
    .await;
    assert_eq!(text(&out.stdout), "200 1.1", "{}", text(&out.stderr));

    let out = curl(&["-X", "DELETE", "-w", "%{http_code}", &url]).await;
    assert_eq!(text(&out.stdout), "204");
    let out = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]).await;
    assert_eq!(text(&out.stdout), "404");
    let out = curl(&["-I", "-w", "%{http_code}", &url]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("404"));
    server.stop().await;
}

/// `curl -T` of `file` to `url` with the extra `headers`: with a content-length, or (`chunked`)
/// from standard input as a chunked body. Returns the status and the reply body.
async fn curl_put(url: &str, file: &str, chunked: bool, headers: &[&str]) -> (String, String) {
    let source = if chunked { "-" } else { file };
    let mut args = vec!["-T", source, "-w", "\n%{http_code}", url];
    for header in headers {
        args.extend(["-H", header]);
    }
    let stdin = chunked.then(|| file.into());
    let out = curl_with_stdin(&args, stdin).await;
    let stdout = text(&out.stdout);
    let (body, status) = stdout
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("no status in {stdout:?}: {}", text(&out.stderr)));
    (status.to_string(), body.to_string())
}

/// The status of a HEAD of `url`.
async fn head_status(url: &str) -> String {
    let out = curl(&["-I", "-o", "/dev/null", "-w", "%{http_code}", url]).await;
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_checksum_header_is_checked_over_http1() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let data = pattern(3, MIB + 3);
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let file = file.display().to_string();
    let url = format!("{}/v1/objects/checked", server.url());

    let wrong = format!("x-asterope-sha256: {}", sha256(b"other").to_hex());
    for chunked in [false, true] {
        let (status, body) = curl_put(&url, &file, chunked, &[&wrong]).await;
        assert_eq!(
            (status.as_str(), error_code(body.as_bytes()).as_str()),
            ("400", "checksum_mismatch"),
            "chunked {chunked}: {body}"
        );
        assert_eq!(
            head_status(&url).await,
            "404",
            "a refused upload stored nothing"
        );
    }

    let right = format!("x-asterope-sha256: {}", sha256(&data).to_hex());
    for chunked in [false, true] {
        let (status, body) = curl_put(&url, &file, chunked, &[&right]).await;
        assert_eq!(status, "201", "chunked {chunked}: {body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["sha256"], sha256(&data).to_hex());
        let out = curl(&[&url]).await;
        assert!(out.stdout == data.to_vec(), "GET returned other bytes");
    }
    server.stop().await;
}

/// The server answers 507 while the upload is still arriving, and reads on (lingering) until
/// curl has sent its body, so curl gets the reply instead of a reset connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_too_large_for_the_store_is_507_storage_full_over_http1() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let file = dir.path().join("too-large.bin");
    std::fs::write(&file, pattern(9, 48 * MIB)).unwrap();
    let file = file.display().to_string();
    let url = format!("{}/v1/objects/too-large", server.url());
    for chunked in [false, true] {
        let (status, body) = curl_put(&url, &file, chunked, &[]).await;
        assert_eq!(
            (status.as_str(), error_code(body.as_bytes()).as_str()),
            ("507", "storage_full"),
            "chunked {chunked}: {body}"
        );
    }
    assert_eq!(
        head_status(&url).await,
        "404",
        "a refused upload stored nothing"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_offers_http1_and_http2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let (config, cert) = common::self_signed_tls(dir.path());
    let server = start(dir.path(), config).await;
    let url = format!("https://localhost:{}/v1/health", server.addr.port());
    let cert = cert.display().to_string();
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = curl(&[
            flag,
            "--cacert",
            &cert,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            &url,
        ])
        .await;
        assert_eq!(
            text(&out.stdout),
            format!("200 {version}"),
            "{}",
            text(&out.stderr)
        );
    }
    server.stop().await;
}

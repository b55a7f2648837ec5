//! Listings and queries of objects with large metadata keep the server's memory bounded and do
//! not stall other clients: `GET /v1/objects?limit=300` (twice at once) and a sorted query over
//! 300 objects with ~60 KB of metadata each, run by a server process of its own, peak under
//! 256 MiB of anonymous RSS while `/v1/health` keeps answering.
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
#[path = "common/rss.rs"]
mod rss;

use std::time::{Duration, Instant};

use asterope::{Database, Key, Metadata, PutOptions, Store, Value};
use bytes::Bytes;
use futures::StreamExt;
use h2::client::SendRequest;
use http::{Method, Request, StatusCode};
use rss::PeakRss;

const OBJECTS: usize = 300;
/// The anonymous memory the server may reach while serving the big pages.
const BUDGET: u64 = 256 << 20;
/// How soon `/v1/health` must answer while they run (availability, not performance: a server
/// that does the work on its async workers stalls it for seconds).
const HEALTH_WITHIN: Duration = Duration::from_secs(1);

/// ~60 KB of metadata as JSON: 150 text fields of 120 bytes, and an array of 15,000 small
/// numbers (the densest shape: every tiny value becomes a node of a value tree).
fn big_metadata(seed: usize) -> Metadata {
    let mut metadata = Metadata::new();
    for field in 0..150 {
        let text: String = (0..120)
            .map(|i| char::from(b'a' + ((seed + field + i) % 26) as u8))
            .collect();
        metadata.insert(format!("f{field:03}").into(), Value::from(text));
    }
    let numbers = (0..15_000)
        .map(|i| Value::Int(((seed + i) % 100) as i64))
        .collect();
    metadata.insert("numbers".into(), Value::Array(numbers));
    metadata.insert("rank".into(), Value::Int(seed as i64));
    metadata
}

/// The server process, killed however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect(url: &str) -> SendRequest<Bytes> {
    let addr = url.trim_start_matches("http://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Sends a request; the status and the body.
async fn call(
    client: &SendRequest<Bytes>,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"));
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let mut client = client.clone().ready().await.unwrap();
    let (response, mut stream) = client
        .send_request(builder.body(()).unwrap(), body.is_none())
        .unwrap();
    if let Some(body) = body {
        stream
            .send_data(Bytes::from(body.to_string()), true)
            .unwrap();
    }
    let (parts, mut body) = response.await.unwrap().into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    (parts.status, bytes)
}

/// Every item of every page of `path` (a listing or query, following `next`), in order.
async fn all_pages(
    client: &SendRequest<Bytes>,
    method: Method,
    path: &str,
    query: Option<&str>,
) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (status, body) = match (&method, &cursor) {
            (&Method::GET, None) => call(client, Method::GET, path, None).await,
            (&Method::GET, Some(c)) => {
                let path = format!("{path}&cursor={c}");
                call(client, Method::GET, &path, None).await
            }
            (_, _) => {
                let mut request: serde_json::Value = serde_json::from_str(query.unwrap()).unwrap();
                if let Some(c) = &cursor {
                    request["cursor"] = serde_json::Value::from(c.clone());
                }
                call(client, method.clone(), path, Some(&request.to_string())).await
            }
        };
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(percent_encode(next)),
            None => return items,
        }
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_pages_keep_server_memory_bounded_and_health_answering() {
    let dir = tempfile::tempdir().unwrap();
    {
        // One commit for all: the setup is not what is measured.
        let db = Database::open(dir.path()).unwrap();
        let tx = db.begin().await.unwrap();
        for i in 0..OBJECTS {
            let key = Key::new(format!("obj/{i:04}")).unwrap();
            let body = futures::stream::iter([Ok(Bytes::from_static(b"x"))]).boxed();
            let options = PutOptions::default().with_metadata(big_metadata(i));
            tx.put(&key, body, options).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let (server, url) = common::spawn_server(dir.path(), &[]);
    let server = KillOnDrop(server);
    let peak = PeakRss::start(Some(server.0.id()));
    let health_client = connect(&url).await;
    let (big_a, big_b) = (connect(&url).await, connect(&url).await);

    // Health is polled on its own connection for as long as the big requests run.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let done = std::sync::Arc::clone(&done);
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let (status, _) = tokio::time::timeout(
                    Duration::from_secs(30),
                    call(&health_client, Method::GET, "/v1/health", None),
                )
                .await
                .expect("health never answered");
                assert_eq!(status, StatusCode::OK);
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            slowest
        })
    };
    let listing = "/v1/objects?limit=300";
    let sorted = r#"{"filter": {}, "sort": "-rank", "limit": 300}"#;
    {
        let (a, b, c) = tokio::join!(
            all_pages(&big_a, Method::GET, listing, None),
            all_pages(&big_b, Method::GET, listing, None),
            all_pages(&big_a, Method::POST, "/v1/query", Some(sorted)),
        );
        // Pages may end early (by bytes), but together they hold every object, in order.
        for items in [&a, &b] {
            let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
            let expected: Vec<String> = (0..OBJECTS).map(|i| format!("obj/{i:04}")).collect();
            assert_eq!(keys, expected);
        }
        let ranks: Vec<i64> = c
            .iter()
            .map(|i| i["meta"]["rank"].as_i64().unwrap())
            .collect();
        let expected: Vec<i64> = (0..OBJECTS as i64).rev().collect();
        assert_eq!(ranks, expected);
        let Some(Value::String(f000)) = big_metadata(7).get("f000").cloned() else {
            panic!("f000 is text");
        };
        assert_eq!(a[7]["meta"]["f000"], f000.as_str());
        assert_eq!(
            a[7]["meta"]["numbers"][14_999],
            (7 + 14_999) % 100,
            "{}",
            a[7]["meta"]["numbers"]
                .to_string()
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let slowest = poller.await.unwrap();
    let peak = peak.finish();
    drop(server);
    println!(
        "server peak RssAnon {} MiB; slowest /v1/health {slowest:?}",
        peak >> 20
    );
    assert!(peak > 0, "RssAnon was never sampled");
    assert!(peak < BUDGET, "server RssAnon peaked at {} MiB", peak >> 20);
    assert!(
        slowest < HEALTH_WITHIN,
        "/v1/health took {slowest:?} while big pages were built"
    );
}

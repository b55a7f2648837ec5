//! Metadata over the network: any Unicode text (every script, emoji, control characters) in
//! keys and metadata round-trips through the client and the server, whichever way it was stored
//! (embedded, via the client, via the metadata route, via a third party sending raw UTF-8), and
//! the header carrying it is always visible ASCII.

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{Client, Condition, Database, Key, Metadata, Query, ServerConfig, Store, StoreExt};
use asterope_serialization::{metadata_from_json_str, parse_filter};
use bytes::Bytes;
use common::pattern;
use server::TestServer;

/// Text in several scripts, with characters outside the Basic Multilingual Plane (surrogate
/// pairs in JSON), control characters and DEL.
const SAMPLES: &[&str] = &[
    "Zoë Ågren, née Müller",
    "Ελληνικά και кириллица",
    "漢字かなカナ 한국어",
    "العربية עברית",
    "emoji 🩻🧠👩🏽‍⚕️ and 𝄞",
    "tab\tnewline\ncontrol\u{1}\u{1f} del\u{7f} nbsp\u{a0} bom\u{feff}",
];

fn metadata(i: usize, text: &str) -> Metadata {
    let mut meta = Metadata::new();
    meta.insert("name".into(), text.into());
    meta.insert(format!("field {text}").as_str().into(), (i as i64).into());
    meta.insert(
        "nested".into(),
        asterope::Value::Array(vec![text.into(), asterope::Value::Int(1)]),
    );
    meta
}

fn key(prefix: &str, i: usize, text: &str) -> Key {
    let printable: String = text.chars().filter(|c| !c.is_control()).collect();
    Key::new(format!("{prefix}/{i}/{printable}")).unwrap()
}

/// Reads every object back through `store` and checks head, get, list and query.
async fn check_round_trip(store: &dyn Store, prefix: &str) {
    let listed = store.list_all(prefix).await.unwrap();
    assert_eq!(listed.len(), SAMPLES.len(), "{prefix}");
    for (i, text) in SAMPLES.iter().enumerate() {
        let k = key(prefix, i, text);
        let want = metadata(i, text);
        let head = store
            .head(&k)
            .await
            .unwrap_or_else(|e| panic!("head {k}: {e}"));
        assert_eq!(head.metadata, want, "head {k}");
        let (info, bytes) = store.get_bytes(&k).await.unwrap();
        assert_eq!(info.metadata, want, "get {k}");
        assert_eq!(bytes, pattern(i as u64, 100));
        let listing = listed.iter().find(|o| o.key == k).expect("listed");
        assert_eq!(listing.metadata, want, "list {k}");
        let filter = serde_json::json!({ "name": text }).to_string();
        let mut query = Query::new(parse_filter(&filter).unwrap());
        query.key_prefix = Some(format!("{prefix}/"));
        let page = store.query(&query).await.unwrap();
        assert_eq!(page.objects.len(), 1, "query {filter}");
        assert_eq!(page.objects[0].key, k);
        assert_eq!(page.objects[0].metadata, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_metadata_round_trips_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    for (i, text) in SAMPLES.iter().enumerate() {
        db.put_bytes(
            &key("embedded", i, text),
            pattern(i as u64, 100),
            metadata(i, text),
        )
        .await
        .unwrap();
    }
    let server = TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    for (i, text) in SAMPLES.iter().enumerate() {
        let put = client
            .put_bytes(
                &key("client", i, text),
                pattern(i as u64, 100),
                metadata(i, text),
            )
            .await
            .unwrap_or_else(|e| panic!("put {text:?}: {e}"));
        assert_eq!(put.metadata, metadata(i, text));
        let k = key("route", i, text);
        client
            .put_bytes(&k, pattern(i as u64, 100), Metadata::new())
            .await
            .unwrap();
        let updated = client
            .update_metadata(&k, metadata(i, text), Condition::default())
            .await
            .unwrap();
        assert_eq!(updated.metadata, metadata(i, text));
    }
    for prefix in ["embedded", "client", "route"] {
        check_round_trip(&client, prefix).await;
    }
    server.stop().await;
}

/// A third party may send the header as raw UTF-8; the reply header is escaped to visible ASCII
/// whatever was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_utf8_metadata_header_is_accepted_and_answered_in_ascii() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let server = TestServer::start(db, ServerConfig::default()).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let text = SAMPLES[4];
    let raw = serde_json::json!({ "name": text }).to_string();
    let put = http::Request::builder()
        .method("PUT")
        .uri("http://localhost/v1/objects/raw")
        .header(
            "x-asterope-meta",
            http::HeaderValue::from_bytes(raw.as_bytes()).unwrap(),
        )
        .body(())
        .unwrap();
    let mut h2 = h2.ready().await.unwrap();
    let (response, mut stream) = h2.send_request(put, false).unwrap();
    stream.send_data(Bytes::from_static(b"abc"), true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 201);
    let head = http::Request::builder()
        .method("HEAD")
        .uri("http://localhost/v1/objects/raw")
        .body(())
        .unwrap();
    let (response, _) = h2.send_request(head, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let header = response.headers()["x-asterope-meta"].as_bytes();
    assert!(
        header.iter().all(|b| (0x20..0x7f).contains(b)),
        "not visible ASCII: {}",
        String::from_utf8_lossy(header)
    );
    let parsed = metadata_from_json_str(std::str::from_utf8(header).unwrap()).unwrap();
    assert_eq!(parsed["name"], asterope::Value::from(text));
    server.stop().await;
}

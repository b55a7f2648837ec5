//! Metadata over the network: any Unicode text (every script, emoji, control characters) in
//! keys and metadata round-trips through the client and the server, whichever way it was stored
//! (embedded, via the client, via the metadata route, via a third party sending raw UTF-8), and
//! the header carrying it is always visible ASCII.

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{
    Client, Condition, Database, Key, Metadata, ObjectOps, Query, ServerConfig, Store, StoreExt,
};
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

/// `{"a": [count empty binaries], "s": "xx…"}` whose MessagePack is exactly `bytes` long: the
/// largest escaped header per byte of metadata.
fn metadata_of_size(count: usize, bytes: usize) -> Metadata {
    let build = |pad: usize| -> Metadata {
        let mut meta = Metadata::new();
        meta.insert(
            "a".into(),
            asterope::Value::Array(vec![asterope::Value::Binary(vec![]); count]),
        );
        meta.insert("s".into(), "x".repeat(pad).as_str().into());
        meta
    };
    let base = asterope_serialization::encode(&build(256)).unwrap().len();
    let meta = build(256 + bytes - base);
    assert_eq!(asterope_serialization::encode(&meta).unwrap().len(), bytes);
    meta
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_at_the_limit_round_trips_and_one_byte_over_is_refused_before_the_body() {
    use asterope::{PutOptions, MAX_LIST_LIMIT};
    use asterope_serialization::MAX_METADATA_BYTES;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let server = TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let largest = metadata_of_size(30_000, MAX_METADATA_BYTES);
    let header = asterope_serialization::metadata_to_header_json(&largest);
    assert!(header.len() > 400_000, "{}", header.len());
    let k = Key::new("limit/at").unwrap();
    let put = client
        .put_bytes(&k, pattern(1, 10), largest.clone())
        .await
        .unwrap();
    assert_eq!(put.metadata, largest);
    assert_eq!(client.head(&k).await.unwrap().metadata, largest);
    assert_eq!(client.get_bytes(&k).await.unwrap().0.metadata, largest);
    let listing = client
        .list(asterope::ListOptions::default().with_prefix("limit/"))
        .await
        .unwrap();
    assert_eq!(listing.objects[0].metadata, largest);
    assert!(listing.objects.len() < MAX_LIST_LIMIT);
    let updated = client
        .update_metadata(&k, largest.clone(), Condition::default())
        .await
        .unwrap();
    assert_eq!(updated.metadata, largest);

    let over = metadata_of_size(30_000, MAX_METADATA_BYTES + 1);
    let polled = Arc::new(AtomicBool::new(false));
    let body = {
        let polled = Arc::clone(&polled);
        futures::stream::once(async move {
            polled.store(true, Ordering::SeqCst);
            Ok(Bytes::from_static(b"body"))
        })
        .boxed()
    };
    let options = PutOptions {
        metadata: over.clone(),
        ..PutOptions::default()
    };
    let err = client
        .put(&Key::new("limit/over").unwrap(), body, options)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_metadata", "{err}");
    assert!(!polled.load(Ordering::SeqCst), "the body was read");
    let err = client
        .update_metadata(&k, over, Condition::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_metadata", "{err}");
    assert_eq!(client.head(&k).await.unwrap().metadata, largest);
    server.stop().await;
}

/// A server configured with a smaller header limit answers 431, which the client reports as
/// `invalid_metadata`, not as an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_list_over_a_servers_limit_is_invalid_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let config = ServerConfig {
        max_header_list_size: 4096,
        ..ServerConfig::default()
    };
    let server = TestServer::start(db, config).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut meta = Metadata::new();
    meta.insert("s".into(), "x".repeat(10_000).as_str().into());
    let err = client
        .put_bytes(&Key::new("small-limit").unwrap(), pattern(1, 10), meta)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_metadata", "{err}");
    server.stop().await;
}

/// Floats JSON numbers cannot hold (NaN, infinities) cross the network as themselves, tagged
/// `{"$float": "NaN"}` in JSON, instead of reading back as null.
#[tokio::test]
async fn non_finite_floats_round_trip_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let server = TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut meta = Metadata::new();
    for (name, x) in [
        ("nan", f64::NAN),
        ("inf", f64::INFINITY),
        ("neg", f64::NEG_INFINITY),
    ] {
        meta.insert(name.into(), asterope::Value::Float(x));
    }
    let k = Key::new("floats").unwrap();
    client
        .put_bytes(&k, Bytes::from_static(b"x"), meta.clone())
        .await
        .unwrap();
    let info = client.head(&k).await.unwrap();
    for (name, read) in &info.metadata {
        let (asterope::Value::Float(read), Some(asterope::Value::Float(sent))) =
            (read, meta.get(name))
        else {
            panic!("{name} read back as {read:?}");
        };
        assert!(read.is_nan() && sent.is_nan() || read == sent, "{name}");
    }
    assert_eq!(info.metadata.len(), 3);
    let json = asterope_serialization::metadata_to_json(&info.metadata);
    assert_eq!(json["nan"], serde_json::json!({"$float": "NaN"}));
    assert_eq!(json["neg"], serde_json::json!({"$float": "-Infinity"}));
}

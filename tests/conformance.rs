//! The conformance suite: one set of behaviours of the `Store` trait, run against the embedded
//! `Database` and against `Client` talking to a server over HTTP/2. Every result and every error
//! code must be the same.

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{
    field, ByteRange, Client, Condition, Database, Error, GetOptions, Key, ListOptions, Metadata,
    PutOptions, Query, ServerConfig, SortSpec, Store, StoreExt, Timestamp, Value,
};
use asterope_serialization::metadata_from_json_str;
use bytes::Bytes;
use common::{chunked, pattern, sha256, MIB};
use futures::stream::{self, StreamExt};
use server::TestServer;

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

fn test_db(dir: &std::path::Path) -> Database {
    Database::builder(dir)
        .extent_size(4 << 20)
        .capacity_limit(Some(48 << 20))
        .open()
        .unwrap()
}

async fn read(store: &dyn Store, k: &Key, options: GetOptions) -> asterope::Result<Bytes> {
    store.get(k, options).await?.bytes().await
}

async fn round_trips(store: &dyn Store) {
    for (i, size) in [0usize, 1, 4096, MIB - 1, MIB + 1, 9 * MIB + 7]
        .into_iter()
        .enumerate()
    {
        let data = pattern(i as u64, size);
        let k = key(&format!("rt/{size}"));
        let info = store
            .put(&k, chunked(data.clone(), 300_000), PutOptions::default())
            .await
            .unwrap();
        assert_eq!((info.size, info.sha256), (size as u64, sha256(&data)));
        assert!(read(store, &k, GetOptions::default()).await.unwrap() == data);
        assert_eq!(store.head(&k).await.unwrap(), info);
    }
}

async fn keys_with_odd_characters(store: &dyn Store) {
    for name in [
        "a b/c?d#e",
        "ünï/キー",
        "%2F..%00x",
        "trailing/",
        "/leading",
        "x+y=z&w",
        "../../escaped-key",
        "/tmp/escaped-key",
    ] {
        let k = key(name);
        store
            .put_bytes(&k, Bytes::from(name.to_string()), Metadata::new())
            .await
            .unwrap();
        let (info, bytes) = store.get_bytes(&k).await.unwrap();
        assert_eq!(info.key, k);
        assert_eq!(&bytes[..], name.as_bytes());
    }
}

async fn metadata_keeps_every_type(store: &dyn Store) {
    let mut meta = metadata_from_json_str(
        r#"{"patient_id":"12345","slices":120,"dose":0.25,"ok":true,"none":null,
            "tags":["CT","head"],"study":{"series":{"n":3}},"raw":{"$base64":"AAEC"}}"#,
    )
    .unwrap();
    meta.insert(
        "study_date".into(),
        Value::Timestamp(Timestamp::parse("2024-01-31T12:00:00.5Z").unwrap()),
    );
    let k = key("meta/doc");
    let put = store
        .put_bytes(&k, pattern(1, 10), meta.clone())
        .await
        .unwrap();
    assert_eq!(put.metadata, meta);
    assert_eq!(store.head(&k).await.unwrap().metadata, meta);
    let mut replacement = Metadata::new();
    replacement.insert("modality".into(), "MR".into());
    let updated = store
        .update_metadata(&k, replacement.clone(), Condition::default())
        .await
        .unwrap();
    assert_eq!(updated.metadata, replacement);
    assert!(updated.version > put.version);
    assert_eq!(store.get_bytes(&k).await.unwrap().1, pattern(1, 10));
    let mut bad = Metadata::new();
    bad.insert("big".into(), Value::Binary(vec![0; 70_000]));
    let err = store.put_bytes(&k, pattern(1, 10), bad).await.unwrap_err();
    assert_eq!(err.code(), "invalid_metadata");
}

async fn ranges(store: &dyn Store) {
    let data = pattern(5, 5 * MIB);
    let k = key("range/obj");
    store
        .put(&k, chunked(data.clone(), MIB), PutOptions::default())
        .await
        .unwrap();
    let n = data.len() as u64;
    for (range, expected) in [
        (ByteRange::Inclusive { first: 0, last: 9 }, 0..10usize),
        (
            ByteRange::Inclusive {
                first: 4 << 20,
                last: (4 << 20) + 99,
            },
            (4 << 20)..(4 << 20) + 100,
        ),
        (ByteRange::From(n - 3), data.len() - 3..data.len()),
        (ByteRange::Suffix(5), data.len() - 5..data.len()),
    ] {
        let result = store
            .get(&k, GetOptions::default().with_range(range))
            .await
            .unwrap();
        assert_eq!(result.range, expected.start as u64..expected.end as u64);
        assert_eq!(result.bytes().await.unwrap(), data.slice(expected));
    }
    let err = store
        .get(&k, GetOptions::default().with_range(ByteRange::From(n)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_range");
}

async fn overwrite_delete_and_missing(store: &dyn Store) {
    let k = key("ow/obj");
    let first = store
        .put_bytes(&k, pattern(1, 1000), Metadata::new())
        .await
        .unwrap();
    let second = store
        .put_bytes(&k, pattern(2, 2000), Metadata::new())
        .await
        .unwrap();
    assert!(second.version > first.version);
    assert_eq!(second.created, first.created);
    assert_eq!(store.get_bytes(&k).await.unwrap().1, pattern(2, 2000));
    store.delete(&k, Condition::default()).await.unwrap();
    for err in [
        store.head(&k).await.unwrap_err(),
        store.get(&k, GetOptions::default()).await.unwrap_err(),
        store.delete(&k, Condition::default()).await.unwrap_err(),
        store
            .update_metadata(&k, Metadata::new(), Condition::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::NotFound { key } if key == "ow/obj"),
            "{err:?}"
        );
    }
}

async fn conditional_writes(store: &dyn Store) {
    let k = key("cas/obj");
    let body = || chunked(pattern(1, 100), 100);
    let v1 = store
        .put(&k, body(), PutOptions::default().with_if_version(0))
        .await
        .unwrap();
    let err = store
        .put(&k, body(), PutOptions::default().with_if_version(0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::PreconditionFailed { required: 0, current, .. } if current == v1.version
    ));
    let err = store
        .delete(&k, Condition::if_version(v1.version + 1000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "precondition_failed");
    store
        .delete(&k, Condition::if_version(v1.version))
        .await
        .unwrap();
}

async fn refused_uploads_store_nothing(store: &dyn Store) {
    let k = key("refused/obj");
    let data = pattern(7, 3 * MIB);
    let err = store
        .put(
            &k,
            chunked(data.clone(), MIB),
            PutOptions::default().with_sha256(sha256(b"other")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    let err = store
        .put(
            &k,
            chunked(data.clone(), MIB),
            PutOptions::default().with_size(data.len() as u64 + 10),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "truncated", "{err}");
    let failing = chunked(data.slice(..MIB), MIB / 2)
        .chain(stream::once(async {
            Err(Error::Truncated {
                reason: "source went away".into(),
            })
        }))
        .boxed();
    let err = store
        .put(&k, failing, PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "truncated", "{err}");
    let err = store.head(&k).await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    // A correct announced digest is accepted.
    store
        .put(
            &k,
            chunked(data.clone(), MIB),
            PutOptions::default().with_sha256(sha256(&data)),
        )
        .await
        .unwrap();
}

async fn storage_full(store: &dyn Store) {
    let k = key("full/obj");
    let err = store
        .put(
            &k,
            chunked(pattern(9, 64 * MIB), MIB),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage_full", "{err}");
    assert_eq!(store.head(&k).await.unwrap_err().code(), "not_found");
}

async fn listing(store: &dyn Store) {
    for i in 0..12 {
        store
            .put_bytes(
                &key(&format!("list/{i:02}")),
                pattern(i, 3),
                Metadata::new(),
            )
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(
                ListOptions::default()
                    .with_prefix("list/")
                    .with_limit(5)
                    .with_cursor(cursor),
            )
            .await
            .unwrap();
        assert!(page.objects.len() <= 5);
        names.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..12).map(|i| format!("list/{i:02}")).collect();
    assert_eq!(names, expected);
    let err = store
        .list(ListOptions::default().with_limit(100_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
}

async fn corruption_is_reported(store: &dyn Store, dir: &std::path::Path) {
    let k = key("corrupt/obj");
    let data = pattern(11, 2 * MIB);
    let info = store
        .put(&k, chunked(data.clone(), MIB), PutOptions::default())
        .await
        .unwrap();
    // Find the blob in the extents by content and flip one byte of it.
    let mut flipped = false;
    for entry in std::fs::read_dir(dir.join("extents")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(64).position(|w| w == &data[..64]) {
            bytes[at + 1_000_000] ^= 0x55;
            std::fs::write(&path, &bytes).unwrap();
            flipped = true;
            break;
        }
    }
    assert!(flipped);
    let err = read(store, &k, GetOptions::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { key, .. } if key == "corrupt/obj"),
        "{err:?}"
    );
    assert_eq!(store.head(&k).await.unwrap().sha256, info.sha256);
}

async fn transactions(store: &dyn Store) {
    let mut meta = Metadata::new();
    meta.insert("n".into(), Value::Int(1));
    store
        .put_bytes(&key("tx/a"), pattern(1, 100), meta.clone())
        .await
        .unwrap();
    let tx = store.begin().await.unwrap();
    // Snapshot: a later commit by someone else is invisible.
    store
        .put_bytes(&key("tx/b"), pattern(2, 100), meta.clone())
        .await
        .unwrap();
    assert_eq!(tx.head(&key("tx/b")).await.unwrap_err().code(), "not_found");
    // Own writes are visible inside, not outside.
    let data = pattern(3, 2 * MIB);
    let staged = tx
        .put(
            &key("tx/c"),
            chunked(data.clone(), MIB),
            PutOptions::default().with_metadata(meta.clone()),
        )
        .await
        .unwrap();
    // A staged write is described as the transaction now reads it, with version 0 (no commit
    // version yet).
    assert_eq!(
        (staged.key.as_str(), staged.version, staged.size),
        ("tx/c", 0, 2 * MIB as u64)
    );
    assert_eq!((staged.sha256, &staged.metadata), (sha256(&data), &meta));
    let head = tx.head(&key("tx/c")).await.unwrap();
    assert_eq!(
        (head.version, head.size, head.sha256, head.metadata),
        (0, staged.size, staged.sha256, staged.metadata.clone())
    );
    let restaged = tx
        .update_metadata(&key("tx/c"), Metadata::new(), Condition::default())
        .await
        .unwrap();
    assert_eq!((restaged.version, restaged.size), (0, 2 * MIB as u64));
    assert!(restaged.metadata.is_empty());
    assert_eq!(read_in(&*tx, &key("tx/c")).await, data);
    assert_eq!(
        store.head(&key("tx/c")).await.unwrap_err().code(),
        "not_found"
    );
    tx.delete(&key("tx/a"), Condition::default()).await.unwrap();
    let listed: Vec<String> = tx
        .list(ListOptions::default().with_prefix("tx/"))
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(listed, vec!["tx/c"]);
    let version = tx.commit().await.unwrap();
    assert_eq!(store.head(&key("tx/c")).await.unwrap().version, version);
    assert_eq!(
        store.head(&key("tx/a")).await.unwrap_err().code(),
        "not_found"
    );

    // First committer wins.
    let t1 = store.begin().await.unwrap();
    let t2 = store.begin().await.unwrap();
    t1.update_metadata(&key("tx/c"), meta.clone(), Condition::default())
        .await
        .unwrap();
    t2.update_metadata(&key("tx/c"), Metadata::new(), Condition::default())
        .await
        .unwrap();
    t1.commit().await.unwrap();
    let err = t2.commit().await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { key } if key == "tx/c"),
        "{err:?}"
    );
    assert_eq!(store.head(&key("tx/c")).await.unwrap().metadata, meta);

    // Rollback discards.
    let tx = store.begin().await.unwrap();
    tx.put(
        &key("tx/d"),
        chunked(pattern(4, 10), 10),
        PutOptions::default(),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        store.head(&key("tx/d")).await.unwrap_err().code(),
        "not_found"
    );
}

async fn read_in(tx: &dyn asterope::Transaction, k: &Key) -> Bytes {
    tx.get(k, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

async fn queries_and_indexes(store: &dyn Store) {
    for i in 0..20i64 {
        let mut meta = Metadata::new();
        meta.insert("patient_id".into(), Value::from(format!("P{}", i % 4)));
        meta.insert("slices".into(), Value::Int(i));
        store
            .put_bytes(&key(&format!("q/{i:02}")), pattern(i as u64, 10), meta)
            .await
            .unwrap();
    }
    let info = store.create_index("patient_id").await.unwrap();
    assert_eq!(info.field, "patient_id");
    for _ in 0..200 {
        if store
            .list_indexes()
            .await
            .unwrap()
            .iter()
            .all(|i| i.state == "ready")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let query = Query::new(field("patient_id").eq("P1")).with_key_prefix("q/");
    assert_eq!(store.explain(&query).await.unwrap().access, "index");
    let keys: Vec<String> = store
        .query(&query)
        .await
        .unwrap()
        .objects
        .iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(keys, vec!["q/01", "q/05", "q/09", "q/13", "q/17"]);
    let sorted = Query::new(field("slices").gte(15))
        .with_sort(SortSpec::descending_by("slices"))
        .with_limit(2);
    let page = store.query(&sorted).await.unwrap();
    let first: Vec<String> = page.objects.iter().map(|o| o.key.to_string()).collect();
    assert_eq!(first, vec!["q/19", "q/18"]);
    let rest = store
        .query(&sorted.clone().with_cursor(page.next.unwrap()))
        .await
        .unwrap();
    let rest: Vec<String> = rest.objects.iter().map(|o| o.key.to_string()).collect();
    assert_eq!(rest, vec!["q/17", "q/16"]);
    assert_eq!(
        store
            .count(&Query::new(field("slices").lt(5)))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        store
            .explain(&Query::new(field("slices").lt(5)))
            .await
            .unwrap()
            .access,
        "scan"
    );
    let err = store
        .query(&Query::new(field("x").eq(1)).with_limit(1_000_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_query");
    store.drop_index("patient_id").await.unwrap();
    assert_eq!(
        store.drop_index("patient_id").await.unwrap_err().code(),
        "not_found"
    );
    assert_eq!(store.explain(&query).await.unwrap().access, "scan");
}

/// Keys never become file paths: nothing named after a key appears anywhere near the store.
fn no_file_named_after_keys(dir: &std::path::Path) {
    for place in [
        dir,
        dir.parent().unwrap_or(dir),
        std::path::Path::new("/tmp"),
    ] {
        assert!(!place.join("escaped-key").exists(), "{}", place.display());
    }
}

async fn suite(store: &dyn Store, dir: &std::path::Path) {
    transactions(store).await;
    queries_and_indexes(store).await;
    round_trips(store).await;
    keys_with_odd_characters(store).await;
    metadata_keeps_every_type(store).await;
    ranges(store).await;
    overwrite_delete_and_missing(store).await;
    conditional_writes(store).await;
    refused_uploads_store_nothing(store).await;
    storage_full(store).await;
    listing(store).await;
    corruption_is_reported(store, dir).await;
    no_file_named_after_keys(dir);
    stats_add_up(store).await;
    dedup_and_compaction(store).await;
}

async fn dedup_and_compaction(store: &dyn Store) {
    let before = store.stats().await.unwrap();
    let data = common::pattern(4242, 300_000);
    let (a, b) = (key("dedup/a"), key("dedup/b"));
    for k in [&a, &b] {
        store
            .put_bytes(k, data.clone(), Metadata::new())
            .await
            .unwrap();
    }
    let shared = store.stats().await.unwrap();
    assert_eq!(
        shared.physical_bytes - before.physical_bytes,
        300_032, // one copy, rounded up to the 512-byte allocation unit
        "{shared:?}"
    );
    assert_eq!(shared.dedup_saved_bytes - before.dedup_saved_bytes, 300_000);
    store.delete(&a, Condition::default()).await.unwrap();
    assert!(store.get_bytes(&b).await.unwrap().1 == data);
    store.delete(&b, Condition::default()).await.unwrap();
    assert_eq!(
        store.stats().await.unwrap().physical_bytes,
        before.physical_bytes
    );

    let report = store.compact().await.unwrap();
    let after = store.stats().await.unwrap();
    assert!(
        after.disk_bytes <= before.disk_bytes,
        "{report:?} {after:?}"
    );
    // Everything but the object damaged on purpose earlier still reads back.
    for info in store.list_all("").await.unwrap() {
        if info.key.as_str().starts_with("corrupt/") {
            continue;
        }
        let (got, bytes) = store.get_bytes(&info.key).await.unwrap();
        assert_eq!(
            common::sha256(&bytes),
            got.sha256,
            "{} after compaction",
            info.key
        );
    }
}

async fn stats_add_up(store: &dyn Store) {
    let objects = store.list_all("").await.unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.objects, objects.len() as u64);
    assert_eq!(
        stats.logical_bytes,
        objects.iter().map(|o| o.size).sum::<u64>()
    );
    assert!(stats.physical_bytes >= stats.logical_bytes, "{stats:?}");
    assert!(stats.extents >= 1);
    assert_eq!(
        stats.garbage_bytes, 0,
        "no reader holds old space: {stats:?}"
    );
    store
        .delete(&objects[0].key, Condition::default())
        .await
        .unwrap();
    let after = store.stats().await.unwrap();
    assert_eq!(after.objects, stats.objects - 1);
    assert_eq!(after.logical_bytes, stats.logical_bytes - objects[0].size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_database_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_db(dir.path());
    suite(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_client_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_db(dir.path()), ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    suite(&client, dir.path()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_multiplexes_concurrent_requests_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_db(dir.path()), ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..48u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let k = key(&format!("mux/{i}"));
            let data = pattern(i, 50_000 + i as usize);
            client
                .put_bytes(&k, data.clone(), Metadata::new())
                .await
                .unwrap();
            assert_eq!(client.get_bytes(&k).await.unwrap().1, data);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Everything went over the one connection the client opened.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let request = http::Request::get(format!("{}/metrics", server.url()))
        .body(())
        .unwrap();
    let (response, _) = h2.send_request(request, true).unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("asterope_connections_total 2"), "{text}");
    assert_eq!(client.list_all("mux/").await.unwrap().len(), 48);
}

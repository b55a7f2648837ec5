//! The conformance suite: one set of behaviours, run against the embedded `Database`, against
//! `Client` talking to a server over HTTP/2, and against a minimal store speaking HTTP/1.1
//! (`common/http1_store.rs`). Every result and every error code must be the same.
//!
//! Which cases run where:
//! - [`object_and_query_cases`] (the object and query routes: the cases of `objects.rs`,
//!   `storage_full` included, and `queries::queries`) runs on all three transports;
//! - [`suite`] adds, for the embedded database and the HTTP/2 client, the cases that need the
//!   rest of `Store` (transactions, indexes, stats, dedup and compaction: `store_wide.rs` and
//!   `queries::indexes`). The HTTP/1.1 store implements only the object and query routes; its
//!   other operations fail with an `unsupported:` error, which a test checks.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/http1_store.rs"]
mod http1_store;
#[path = "../common/server.rs"]
mod server;

mod objects;
mod queries;
mod store_wide;

use std::path::Path;

use asterope::{
    Client, Database, GetOptions, Key, Metadata, ObjectOps, ServerConfig, Store, StoreExt,
};
use bytes::Bytes;
use common::pattern;
use http1_store::{Http1Store, UNSUPPORTED};
use server::TestServer;

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

fn test_db(dir: &Path) -> Database {
    Database::builder(dir)
        .extent_size(4 << 20)
        .capacity_limit(Some(48 << 20))
        .open()
        .unwrap()
}

async fn read(store: &dyn ObjectOps, k: &Key, options: GetOptions) -> asterope::Result<Bytes> {
    store.get(k, options).await?.bytes().await
}

/// The cases over the object and query routes, which every transport runs.
async fn object_and_query_cases(store: &dyn ObjectOps, dir: &Path) {
    queries::queries(store).await;
    objects::round_trips(store).await;
    objects::keys_with_odd_characters(store).await;
    objects::metadata_keeps_every_type(store).await;
    objects::ranges(store).await;
    objects::overwrite_delete_and_missing(store).await;
    objects::conditional_writes(store).await;
    objects::refused_uploads_store_nothing(store).await;
    objects::listing(store).await;
    objects::corruption_is_reported(store, dir).await;
    objects::storage_full(store).await;
    objects::no_file_named_after_keys(dir);
}

/// Every case: the object and query cases, and those needing the whole `Store`.
async fn suite(store: &dyn Store, dir: &Path) {
    store_wide::transactions(store).await;
    object_and_query_cases(store, dir).await;
    queries::indexes(store).await;
    store_wide::stats_add_up(store).await;
    store_wide::dedup_and_compaction(store).await;
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

/// Over HTTP/1.1, the object and query cases only (see the module documentation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_object_and_query_routes_conform() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_db(dir.path()), ServerConfig::default()).await;
    let store = Http1Store::new(server.addr);
    object_and_query_cases(&store, dir.path()).await;
    server.stop().await;
}

/// What the HTTP/1.1 store does not implement says so, instead of passing silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http1_store_refuses_what_it_does_not_implement() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_db(dir.path()), ServerConfig::default()).await;
    let store = Http1Store::new(server.addr);
    let errors = [
        store.begin().await.map(drop).unwrap_err(),
        store.create_index("f").await.map(drop).unwrap_err(),
        store.drop_index("f").await.unwrap_err(),
        store.list_indexes().await.map(drop).unwrap_err(),
        store.stats().await.map(drop).unwrap_err(),
        store.compact().await.map(drop).unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.code(), "invalid_argument");
        assert!(error.to_string().contains(UNSUPPORTED), "{error}");
    }
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

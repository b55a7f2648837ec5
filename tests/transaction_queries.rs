//! Every read a transaction offers runs inside it: query, count and explain see the
//! transaction's snapshot and its own staged writes, embedded and over HTTP/2 alike.
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
#[path = "common/server.rs"]
mod server;

use std::time::Duration;

use asterope::{
    field, Client, Condition, Database, IndexState, Key, Metadata, PlanAccess, PutOptions, Query,
    ServerConfig, Store, StoreExt, Value,
};
use common::{chunked, pattern};
use server::TestServer;

fn kind(value: &str) -> Metadata {
    let mut metadata = Metadata::new();
    metadata.insert("kind".into(), Value::from(value));
    metadata
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

async fn wait_ready(store: &dyn Store, field: &str) {
    for _ in 0..200 {
        let indexes = store.list_indexes().await.unwrap();
        if indexes
            .iter()
            .any(|i| i.field == field && i.state == IndexState::Ready)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("index {field} not ready after 10 s");
}

async fn count_and_explain_run_inside_the_transaction(store: &dyn Store) {
    store
        .put_bytes(&key("old"), pattern(1, 10), kind("old"))
        .await
        .unwrap();
    let tx = store.begin().await.unwrap();
    for name in ["new/1", "new/2"] {
        tx.put(
            &key(name),
            chunked(pattern(2, 10), 10),
            PutOptions::default().with_metadata(kind("new")),
        )
        .await
        .unwrap();
    }
    tx.delete(&key("old"), Condition::default()).await.unwrap();
    // A commit by someone else, then an index ready only after the transaction's snapshot:
    // the transaction sees neither.
    store
        .put_bytes(&key("other"), pattern(3, 10), kind("new"))
        .await
        .unwrap();
    store.create_index("kind").await.unwrap();
    wait_ready(store, "kind").await;

    let new = Query::new(field("kind").eq("new"));
    let old = Query::new(field("kind").eq("old"));
    assert_eq!(tx.query(&new).await.unwrap().objects.len(), 2);
    assert_eq!(tx.count(&new).await.unwrap(), 2);
    assert_eq!(tx.count(&old).await.unwrap(), 0);
    assert_eq!(
        tx.count(&Query::new(field("kind").exists(true)).with_key_prefix("new/"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.count(&new).await.unwrap(), 1);
    assert_eq!(store.count(&old).await.unwrap(), 1);
    assert_eq!(store.explain(&new).await.unwrap().access, PlanAccess::Index);
    let inside = tx.explain(&new).await.unwrap();
    assert_eq!(inside.access, PlanAccess::Scan, "{inside:?}");

    tx.commit().await.unwrap();
    assert_eq!(store.count(&new).await.unwrap(), 3);
    assert_eq!(store.count(&old).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_count_and_explain_see_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    count_and_explain_run_inside_the_transaction(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networked_count_and_explain_see_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let server = TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    count_and_explain_run_inside_the_transaction(&client).await;
    server.stop().await;
}

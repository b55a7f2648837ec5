//! A metadata field that no query could address is refused when written (embedded and over
//! HTTP/2 alike), rather than stored out of reach of every filter.
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

use asterope::{
    field, Client, Condition, Database, Key, Metadata, Query, ServerConfig, Store, StoreExt, Value,
};
use common::pattern;
use server::TestServer;

async fn unqueryable_names_are_refused(store: &dyn Store) {
    let key = Key::new("named").unwrap();
    let nested = |name: &str| Value::Map(Metadata::from([(name.into(), Value::Int(1))]));
    for metadata in [
        Metadata::from([("a.b".into(), Value::Int(1))]),
        Metadata::from([("a\0b".into(), Value::Int(1))]),
        Metadata::from([("$where".into(), Value::Int(1))]),
        Metadata::from([("study".into(), nested("series.n"))]),
    ] {
        let err = store
            .put_bytes(&key, pattern(1, 10), metadata.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_metadata", "{metadata:?}: {err}");
    }
    let good = Metadata::from([("study".into(), nested("series"))]);
    store.put_bytes(&key, pattern(1, 10), good).await.unwrap();
    let dotted = Metadata::from([("a.b".into(), Value::Int(1))]);
    let err = store
        .update_metadata(&key, dotted.clone(), Condition::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_metadata");
    let tx = store.begin().await.unwrap();
    let err = tx
        .update_metadata(&key, dotted, Condition::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_metadata");
    tx.rollback().await.unwrap();
    // What is stored can be queried.
    let found = store
        .count(&Query::new(field("study.series").eq(1)))
        .await
        .unwrap();
    assert_eq!(found, 1);
}

#[tokio::test]
async fn embedded_refuses_unqueryable_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    unqueryable_names_are_refused(&db).await;
}

#[tokio::test]
async fn networked_refuses_unqueryable_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let server = TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    unqueryable_names_are_refused(&client).await;
    server.stop().await;
}

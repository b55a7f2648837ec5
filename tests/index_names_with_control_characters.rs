//! Field paths with NUL or other control characters are refused with `invalid_query` (HTTP 400)
//! everywhere an index is named: the library, a server, the CLI. Such a path once made a
//! durable definition whose build panicked on every open.
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

use asterope::{Client, Database, ServerConfig, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_with_control_characters_is_refused_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let server = server::TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    for field in ["a\0b", "a\u{1}b", "x.\n", "\u{7f}"] {
        let refused = client.create_index(field).await.unwrap_err();
        assert_eq!(refused.code(), "invalid_query", "{field:?}: {refused}");
    }
    assert!(client.list_indexes().await.unwrap().is_empty());
    drop(client);
    server.stop().await;
    // Nothing durable was left behind: the directory opens and has no index.
    let db = Database::open(dir.path()).unwrap();
    assert!(db.list_indexes().await.unwrap().is_empty());
}

#[test]
fn index_with_control_characters_is_refused_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_asterope"))
        .arg("--data")
        .arg(dir.path())
        .args(["index", "create", "a\u{1}b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[invalid_query]"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_asterope"))
        .arg("--data")
        .arg(dir.path())
        .args(["index", "ls"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

//! An extent file truncated under a running store (by an operator, a broken filesystem) makes
//! the reads of the objects in the lost part fail with `io_error`: the process survives (no
//! SIGBUS), the objects still whole stay readable, and `asterope verify --all` names the damaged
//! keys.

mod common;

use std::process::Command;

use asterope::{Client, Database, GetOptions, Key, Metadata, ObjectOps, Result, Store, StoreExt};
use common::{pattern, MIB};
use futures::StreamExt;

fn key(name: &str) -> Key {
    Key::new(name).expect("valid key")
}

/// Reads a whole object; the error code if the read fails at any point.
async fn read_all(
    store: &dyn Store,
    name: &str,
    verify: bool,
) -> std::result::Result<usize, String> {
    let options = GetOptions::default().with_verify(verify);
    let mut body = store
        .get(&key(name), options)
        .await
        .map_err(|e| e.code().to_string())?
        .body;
    let mut len = 0;
    while let Some(chunk) = body.next().await {
        len += chunk.map_err(|e| e.code().to_string())?.len();
    }
    Ok(len)
}

/// Cuts the first extent file down to `len` bytes, as `truncate -s` would.
fn truncate_first_extent(dir: &std::path::Path, len: usize) {
    let path = dir.join("extents/00000000.ext");
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len as u64).unwrap();
}

#[tokio::test]
async fn reading_a_truncated_extent_fails_with_io_error() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(16 << 20)
        .background_compaction(None)
        .open()?;
    db.put_bytes(&key("head"), pattern(1, MIB / 2), Metadata::new())
        .await?;
    db.put_bytes(&key("tail"), pattern(2, 3 * MIB), Metadata::new())
        .await?;
    // Warm reads first: whatever was read before must not make later reads unsafe.
    assert_eq!(read_all(&db, "tail", true).await, Ok(3 * MIB));

    truncate_first_extent(dir.path(), MIB);
    for verify in [true, false] {
        assert_eq!(read_all(&db, "tail", verify).await, Err("io_error".into()));
        assert_eq!(read_all(&db, "head", verify).await, Ok(MIB / 2));
    }
    let (_, bytes) = db.get_bytes(&key("head")).await?;
    assert_eq!(bytes, pattern(1, MIB / 2));

    // The directory still opens, and stays writable; so it does with the extent file gone.
    drop(db);
    for removed in [false, true] {
        if removed {
            std::fs::remove_file(dir.path().join("extents/00000000.ext")).unwrap();
        }
        let db = Database::builder(dir.path())
            .extent_size(16 << 20)
            .background_compaction(None)
            .open()?;
        assert_eq!(read_all(&db, "tail", true).await, Err("io_error".into()));
        let head = read_all(&db, "head", true).await;
        assert_eq!(
            head,
            if removed {
                Err("io_error".into())
            } else {
                Ok(MIB / 2)
            }
        );
        db.put_bytes(&key("new"), pattern(3, 2 * MIB), Metadata::new())
            .await?;
        assert_eq!(db.get_bytes(&key("new")).await?.1, pattern(3, 2 * MIB));
        db.delete(&key("new"), Default::default()).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_a_truncated_extent_and_verify_names_the_damaged_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let extent_size = (16 << 20).to_string();
    let (mut server, url) = common::spawn_server(
        &data,
        &["--extent-size", &extent_size, "--compaction-interval", "0"],
    );
    let client = Client::connect(&url).await.unwrap();
    client
        .put_bytes(&key("head"), pattern(1, MIB / 2), Metadata::new())
        .await
        .unwrap();
    for name in ["tail", "tail-copy"] {
        // The same content twice: one shared blob serving two keys.
        client
            .put_bytes(&key(name), pattern(2, 3 * MIB), Metadata::new())
            .await
            .unwrap();
    }
    assert_eq!(read_all(&client, "tail", true).await, Ok(3 * MIB));

    truncate_first_extent(&data, MIB);
    for verify in [true, false] {
        // Known before the reply starts: an error reply, not a stream cut short.
        let options = GetOptions::default().with_verify(verify);
        let refused = client.get(&key("tail"), options).await.err();
        assert_eq!(refused.map(|e| e.code()), Some("io_error"));
    }
    assert_eq!(
        server.try_wait().unwrap(),
        None,
        "the server died reading a truncated extent"
    );
    assert_eq!(read_all(&client, "head", true).await, Ok(MIB / 2));

    // `verify --all` names the damaged keys, through the server as embedded.
    let through_server = Command::new(env!("CARGO_BIN_EXE_asterope"))
        .args(["--server", &url, "verify", "--all"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let embedded = Command::new(env!("CARGO_BIN_EXE_asterope"))
        .arg("--data")
        .arg(&data)
        .args(["verify", "--all"])
        .output()
        .unwrap();
    for out in [through_server, embedded] {
        check_damage_report(out);
    }
}

/// `verify --all` output: a failed exit and one line per damaged key (`tail` and `tail-copy`,
/// which share one blob), each an I/O error.
fn check_damage_report(out: std::process::Output) {
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let damaged: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut keys: Vec<&str> = damaged.iter().filter_map(|d| d["key"].as_str()).collect();
    keys.sort_unstable();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(keys, ["tail", "tail-copy"], "{stdout} {stderr}");
    assert!(damaged.iter().all(|d| d["code"] == "io_error"), "{stdout}");
    // Both name the one blob they share, by its content.
    assert_eq!(damaged[0]["sha256"], damaged[1]["sha256"], "{stdout}");
    assert!(damaged[0]["sha256"].is_string(), "{stdout}");
}

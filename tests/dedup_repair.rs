//! Deduplication never shares damaged bytes: after a byte of a stored blob flips, uploading the
//! good content again (under the same key or another) keeps the fresh copy and repairs the
//! blob for every key that shares it, and `Database::verify_blobs` names the keys a damaged
//! blob serves.
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

use std::os::unix::fs::FileExt;

use asterope::{Database, Key, Metadata, Result, StoreExt};
use common::{pattern, MIB};

const SIZE: usize = 3 * MIB;

fn key(name: &str) -> Key {
    Key::new(name).expect("valid key")
}

fn open(dir: &std::path::Path) -> Result<Database> {
    Database::builder(dir)
        .extent_size(64 << 20)
        .background_compaction(None)
        .open()
}

/// Flips one byte, `offset` bytes into the stored copy of `content`, in the extent file.
fn flip_stored_byte(dir: &std::path::Path, content: &[u8], offset: usize) {
    let path = dir.join("extents/00000000.ext");
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &content[..64])
        .expect("the content is in the extent");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let flipped = [bytes[at + offset] ^ 0x40];
    file.write_all_at(&flipped, (at + offset) as u64).unwrap();
}

async fn code_of_get(db: &Database, name: &str) -> Option<String> {
    db.get_bytes(&key(name))
        .await
        .err()
        .map(|e| e.code().to_string())
}

#[tokio::test]
async fn uploading_good_content_again_repairs_every_key_sharing_the_damaged_blob() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path())?;
    let good = pattern(5, SIZE);
    for name in ["a", "b"] {
        db.put_bytes(&key(name), good.clone(), Metadata::new())
            .await?;
    }
    let used_before = db.space_stats().extent_bytes - db.space_stats().free_bytes;
    flip_stored_byte(dir.path(), &good, 2 * MIB + 10);
    assert_eq!(code_of_get(&db, "a").await.as_deref(), Some("corrupt"));

    let report = db.verify_blobs().await?;
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let mut keys: Vec<String> = report.damaged[0]
        .keys
        .iter()
        .map(|k| k.to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(report.damaged[0].code, "corrupt");

    // Another key, same good bytes: accepted, and it repairs the blob "a" and "b" share.
    db.put_bytes(&key("c"), good.clone(), Metadata::new())
        .await?;
    for name in ["a", "b", "c"] {
        let (_, bytes) = db.get_bytes(&key(name)).await?;
        assert!(bytes == good, "{name} does not read back the good content");
    }
    assert!(db.verify_blobs().await?.damaged.is_empty());
    // Still one copy: the damaged runs were retired, the three keys share the fresh copy.
    let used_after = db.space_stats().extent_bytes - db.space_stats().free_bytes;
    assert_eq!(used_after, used_before);

    drop(db);
    let db = open(dir.path())?;
    for name in ["a", "b", "c"] {
        let (_, bytes) = db.get_bytes(&key(name)).await?;
        assert!(bytes == good, "{name} does not read back after a reopen");
    }
    Ok(())
}

#[tokio::test]
async fn uploading_good_content_again_under_the_same_key_repairs_it() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path())?;
    let good = pattern(6, SIZE);
    db.put_bytes(&key("x"), good.clone(), Metadata::new())
        .await?;
    flip_stored_byte(dir.path(), &good, 100);
    assert_eq!(code_of_get(&db, "x").await.as_deref(), Some("corrupt"));
    db.put_bytes(&key("x"), good.clone(), Metadata::new())
        .await?;
    let (_, bytes) = db.get_bytes(&key("x")).await?;
    assert!(bytes == good);
    assert!(db.verify_blobs().await?.damaged.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_staged_upload_of_good_content_repairs_on_commit() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path())?;
    let good = pattern(7, SIZE);
    db.put_bytes(&key("y"), good.clone(), Metadata::new())
        .await?;
    flip_stored_byte(dir.path(), &good, MIB);
    let tx = asterope::Store::begin(&db).await?;
    tx.put(
        &key("z"),
        common::chunked(good.clone(), MIB),
        Default::default(),
    )
    .await?;
    tx.commit().await?;
    for name in ["y", "z"] {
        let (_, bytes) = db.get_bytes(&key(name)).await?;
        assert!(bytes == good, "{name}");
    }
    Ok(())
}

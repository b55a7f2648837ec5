//! A data directory written by the previous release (version records of format 2, each with its
//! blob's runs, no blob table) opens with this one: every object, index and shared blob is
//! still there, reads are verified against block checksums computed during the upgrade, and the
//! store takes new writes.
//!
//! The previous format is produced at run time by `asterope_storage::downgrade_to_format2`
//! (feature `test-support`), which rewrites a closed directory exactly as that release stored it.

mod common;

use asterope::{
    field, Condition, Database, GetOptions, Key, Metadata, ObjectOps, Query, Store, StoreExt,
};
use common::{pattern, MIB};

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

fn patient(id: &str) -> Metadata {
    let mut meta = Metadata::new();
    meta.insert("patient_id".into(), id.into());
    meta
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_format_directory_is_upgraded_on_open() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let big = pattern(1, 3 * MIB + 5);
    let small = pattern(2, 1000);
    {
        let db = Database::builder(dir.path())
            .background_compaction(None)
            .open()?;
        db.create_index("patient_id").await?;
        db.put_bytes(&key("a"), big.clone(), patient("P1")).await?;
        db.put_bytes(&key("b"), small.clone(), patient("P2"))
            .await?;
        db.put_bytes(&key("empty"), Default::default(), patient("P1"))
            .await?;
        // A metadata update: two versions shared the runs in the old format.
        db.update_metadata(&key("b"), patient("P1"), Condition::default())
            .await?;
        // The same content under two keys: one copy, named by both.
        db.put_bytes(&key("a-copy"), big.clone(), patient("P3"))
            .await?;
        while db.list_indexes().await?[0].state != "ready" {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    asterope_storage::downgrade_to_format2(dir.path())?;

    let db = Database::builder(dir.path())
        .background_compaction(None)
        .open()?;
    for (name, data) in [("a", &big), ("a-copy", &big), ("b", &small)] {
        let (_, bytes) = db.get_bytes(&key(name)).await?;
        assert!(bytes == *data, "{name} after the upgrade");
    }
    assert_eq!(db.head(&key("empty")).await?.size, 0);
    let stats = db.stats().await?;
    assert_eq!(stats.objects, 4);
    // Both sizes rounded up to the 512-byte allocation unit.
    assert_eq!(stats.physical_bytes, (3 * MIB + 512 + 1024) as u64);
    assert_eq!(stats.dedup_saved_bytes, big.len() as u64);
    let p1 = Query::new(field("patient_id").eq("P1"));
    let found: Vec<String> = db
        .query(&p1)
        .await?
        .objects
        .iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(found, ["a", "b", "empty"]);
    assert_eq!(db.count(&p1).await?, 3);

    // Damage in an upgraded blob is caught by the block checksums computed for it.
    let extent = dir.path().join("extents/00000000.ext");
    let mut stored = std::fs::read(&extent).unwrap();
    let at = stored
        .windows(64)
        .position(|w| w == &small[..64])
        .expect("b's bytes in the extent");
    stored[at + 10] ^= 0x40;
    std::fs::write(&extent, &stored).unwrap();
    let err = db
        .get(&key("b"), GetOptions::default())
        .await?
        .bytes()
        .await;
    assert_eq!(err.unwrap_err().code(), "corrupt");

    // New writes, deletes and a reopen work on the upgraded store.
    db.delete(&key("a"), Condition::default()).await?;
    assert!(db.get_bytes(&key("a-copy")).await?.1 == big);
    db.put_bytes(&key("c"), pattern(3, 5000), patient("P1"))
        .await?;
    drop(db);
    let db = Database::open(dir.path())?;
    assert_eq!(db.count(&p1).await?, 3);
    assert!(db.get_bytes(&key("a-copy")).await?.1 == big);
    Ok(())
}

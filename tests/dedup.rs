//! Content deduplication: uploads of content that is already stored share its blob, with
//! reference counts kept in the same commits as the versions, so deleting one copy never
//! touches the others and deleting the last frees the space.

mod common;

use asterope::{Database, Key, Metadata, ObjectOps, Store, StoreExt};
use common::{pattern, sha256, MIB};

fn key(i: usize) -> Key {
    Key::new(format!("scans/copy-{i:03}")).unwrap()
}

fn open(dir: &std::path::Path, dedup: bool) -> Database {
    Database::builder(dir)
        .dedup(dedup)
        .background_compaction(None)
        .open()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_uploads_of_one_file_are_stored_once() {
    const SIZE: usize = 100 * MIB;
    const COPIES: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    let data = pattern(42, SIZE);
    let digest = sha256(&data);
    for i in 0..COPIES {
        let info = db
            .put_bytes(&key(i), data.clone(), Metadata::new())
            .await
            .unwrap();
        assert_eq!(info.sha256, digest);
    }
    let stats = db.stats().await.unwrap();
    println!("{stats:?}");
    assert_eq!(stats.objects, COPIES as u64);
    assert_eq!(stats.logical_bytes, (COPIES * SIZE) as u64);
    assert_eq!(stats.physical_bytes, SIZE as u64, "one copy in the extents");
    assert_eq!(stats.dedup_saved_bytes, ((COPIES - 1) * SIZE) as u64);
    db.compact().await.unwrap();
    let disk = db.stats().await.unwrap().disk_bytes;
    assert!(
        disk <= (SIZE + SIZE / 20) as u64,
        "{disk} bytes on disk for one 100 MiB copy"
    );

    // Reference counts survive a reopen; deleting 99 copies keeps the last readable.
    drop(db);
    let db = open(dir.path(), true);
    for i in 0..COPIES - 1 {
        db.delete(&key(i), Default::default()).await.unwrap();
    }
    let (info, bytes) = db.get_bytes(&key(COPIES - 1)).await.unwrap();
    assert_eq!(info.sha256, digest);
    assert!(bytes == data, "the last copy no longer reads back");
    assert_eq!(db.stats().await.unwrap().physical_bytes, SIZE as u64);

    db.delete(&key(COPIES - 1), Default::default())
        .await
        .unwrap();
    let stats = db.stats().await.unwrap();
    assert_eq!((stats.objects, stats.physical_bytes), (0, 0), "{stats:?}");
    db.compact().await.unwrap();
    assert!(db.stats().await.unwrap().disk_bytes < MIB as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_blobs_follow_overwrites_metadata_updates_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    let a = pattern(1, 3 * MIB + 11);
    let b = pattern(2, 2 * MIB);
    let (x, y, z) = (key(1), key(2), key(3));
    db.put_bytes(&x, a.clone(), Metadata::new()).await.unwrap();
    // Two keys in one transaction sharing content with each other and with `x`.
    let tx = db.begin().await.unwrap();
    for k in [&y, &z] {
        let body = common::chunked(a.clone(), 256 * 1024);
        tx.put(k, body, Default::default()).await.unwrap();
    }
    tx.commit().await.unwrap();
    // Sizes are rounded up to the 512-byte allocation unit.
    let single = (3 * MIB + 512) as u64;
    assert_eq!(db.stats().await.unwrap().physical_bytes, single);

    // A metadata update keeps sharing; an overwrite with other content leaves the rest intact.
    let mut meta = Metadata::new();
    meta.insert("modality".into(), "CT".into());
    db.update_metadata(&y, meta, Default::default())
        .await
        .unwrap();
    db.put_bytes(&x, b.clone(), Metadata::new()).await.unwrap();
    assert_eq!(
        db.stats().await.unwrap().physical_bytes,
        single + (2 * MIB) as u64
    );
    assert!(db.get_bytes(&y).await.unwrap().1 == a);
    assert!(db.get_bytes(&z).await.unwrap().1 == a);
    assert!(db.get_bytes(&x).await.unwrap().1 == b);

    // Overwriting with identical content stores nothing new.
    db.put_bytes(&z, a.clone(), Metadata::new()).await.unwrap();
    db.delete(&y, Default::default()).await.unwrap();
    assert!(db.get_bytes(&z).await.unwrap().1 == a);
    db.delete(&z, Default::default()).await.unwrap();
    assert_eq!(db.stats().await.unwrap().physical_bytes, (2 * MIB) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dedup_off_every_upload_keeps_its_own_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let data = pattern(9, MIB + 1);
    for i in 0..3 {
        db.put_bytes(&key(i), data.clone(), Metadata::new())
            .await
            .unwrap();
    }
    let stats = db.stats().await.unwrap();
    assert_eq!(stats.physical_bytes, 3 * (MIB + 512) as u64);
    assert_eq!(stats.dedup_saved_bytes, 0);
    db.delete(&key(0), Default::default()).await.unwrap();
    assert!(db.get_bytes(&key(1)).await.unwrap().1 == data);
    assert_eq!(
        db.stats().await.unwrap().physical_bytes,
        2 * (MIB + 512) as u64
    );
}

//! Cases that need the whole `Store`, beyond the object operations: transactions (snapshot,
//! own writes, staged descriptions, first committer wins, rollback), statistics that add up,
//! and deduplication with compaction.

use asterope::{
    Condition, Error, GetOptions, Key, ListOptions, Metadata, PutOptions, Store, StoreExt, Value,
};
use bytes::Bytes;

use crate::common::{self, chunked, pattern, sha256, MIB};
use crate::key;

pub async fn transactions(store: &dyn Store) {
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

pub async fn dedup_and_compaction(store: &dyn Store) {
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

pub async fn stats_add_up(store: &dyn Store) {
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

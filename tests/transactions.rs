//! Snapshot isolation of transactions: repeatable reads under concurrent writers, first
//! committer wins (lost updates become conflicts), write skew as snapshot isolation allows,
//! own writes visible, rollback and drop discard everything (space included).

mod common;

use std::sync::Arc;

use asterope::{
    field, Condition, Database, Error, GetOptions, Key, ListOptions, Metadata, ObjectOps,
    PutOptions, Query, Store, StoreExt, Value,
};
use common::{chunked, pattern, MIB};

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

fn meta(name: &str, value: impl Into<Value>) -> Metadata {
    let mut m = Metadata::new();
    m.insert(name.into(), value.into());
    m
}

fn counter(info_meta: &Metadata) -> i64 {
    match info_meta.get("n") {
        Some(Value::Int(n)) => *n,
        other => panic!("bad counter {other:?}"),
    }
}

fn db(dir: &std::path::Path) -> Database {
    Database::builder(dir).extent_size(4 << 20).open().unwrap()
}

#[tokio::test]
async fn a_transaction_reads_one_snapshot_and_its_own_writes() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    db.put_bytes(&key("a"), pattern(1, 100), meta("n", 1))
        .await?;
    let tx = db.begin().await?;
    // Others commit after the transaction began: it does not see them.
    db.put_bytes(&key("a"), pattern(2, 100), meta("n", 2))
        .await?;
    db.put_bytes(&key("b"), pattern(3, 100), meta("n", 3))
        .await?;
    assert_eq!(counter(&tx.head(&key("a")).await?.metadata), 1);
    assert_eq!(tx.head(&key("b")).await.unwrap_err().code(), "not_found");
    let body = tx
        .get(&key("a"), GetOptions::default())
        .await?
        .bytes()
        .await?;
    assert_eq!(body, pattern(1, 100));
    // Its own writes are visible to it, not to others.
    tx.put(
        &key("c"),
        chunked(pattern(4, MIB + 5), 4096),
        PutOptions::default().with_metadata(meta("n", 4)),
    )
    .await?;
    tx.delete(&key("a"), Condition::default()).await?;
    assert_eq!(
        tx.get(&key("c"), GetOptions::default())
            .await?
            .bytes()
            .await?,
        pattern(4, MIB + 5)
    );
    assert_eq!(tx.head(&key("a")).await.unwrap_err().code(), "not_found");
    let listed: Vec<String> = tx
        .list(ListOptions::default())
        .await?
        .objects
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(listed, vec!["c"]);
    let found = tx.query(&Query::new(field("n").gte(1))).await?;
    assert_eq!(found.objects.len(), 1);
    assert_eq!(db.head(&key("c")).await.unwrap_err().code(), "not_found");
    // `a` was overwritten after the transaction began: deleting it conflicts.
    let err = tx.commit().await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { key } if key == "a"),
        "{err:?}"
    );
    assert_eq!(db.head(&key("c")).await.unwrap_err().code(), "not_found");
    assert_eq!(counter(&db.head(&key("a")).await?.metadata), 2);
    Ok(())
}

#[tokio::test]
async fn commit_is_atomic_and_visible_to_later_snapshots() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    db.put_bytes(&key("gone"), pattern(1, 10), Metadata::new())
        .await?;
    let tx = db.begin().await?;
    for i in 0..5 {
        tx.put(
            &key(&format!("batch/{i}")),
            chunked(pattern(i, 1000), 300),
            PutOptions::default(),
        )
        .await?;
    }
    tx.delete(&key("gone"), Condition::default()).await?;
    let version = tx.commit().await?;
    let listed = db.list_all("batch/").await?;
    assert_eq!(listed.len(), 5);
    assert!(listed.iter().all(|o| o.version == version));
    assert_eq!(db.head(&key("gone")).await.unwrap_err().code(), "not_found");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_updates_become_conflicts() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(db(dir.path()));
    let k = key("counter");
    db.put_bytes(&k, pattern(0, 8), meta("n", 0)).await?;
    let workers = 8;
    let increments_each = 15;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let db = Arc::clone(&db);
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            let mut done = 0;
            while done < increments_each {
                let tx = db.begin().await?;
                let n = counter(&tx.head(&k).await?.metadata);
                tx.update_metadata(&k, meta("n", n + 1), Condition::default())
                    .await?;
                match tx.commit().await {
                    Ok(_) => done += 1,
                    Err(Error::Conflict { .. }) => conflicts += 1,
                    Err(e) => return Err(e),
                }
            }
            Ok::<u32, Error>(conflicts)
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap()?;
    }
    // Every committed increment counted: no update was lost.
    assert_eq!(
        counter(&db.head(&k).await?.metadata),
        i64::from(workers * increments_each)
    );
    println!("{conflicts} conflicts retried");
    Ok(())
}

#[tokio::test]
async fn write_skew_is_allowed_as_snapshot_isolation_says() -> asterope::Result<()> {
    // Two doctors on call; each transaction checks that the other is on call and goes off.
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    db.put_bytes(&key("alice"), pattern(1, 1), meta("on_call", true))
        .await?;
    db.put_bytes(&key("bob"), pattern(2, 1), meta("on_call", true))
        .await?;
    let t1 = db.begin().await?;
    let t2 = db.begin().await?;
    assert_eq!(
        t1.head(&key("bob")).await?.metadata["on_call"],
        Value::Bool(true)
    );
    assert_eq!(
        t2.head(&key("alice")).await?.metadata["on_call"],
        Value::Bool(true)
    );
    t1.update_metadata(&key("alice"), meta("on_call", false), Condition::default())
        .await?;
    t2.update_metadata(&key("bob"), meta("on_call", false), Condition::default())
        .await?;
    // Disjoint write sets: both commit (serializable isolation would refuse one).
    t1.commit().await?;
    t2.commit().await?;
    let off = db.count(&Query::new(field("on_call").eq(false))).await?;
    assert_eq!(off, 2);
    Ok(())
}

#[tokio::test]
async fn rollback_and_drop_discard_writes_and_space() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let used = |db: &Database| {
        let s = db.space_stats();
        s.extent_bytes - s.free_bytes
    };
    let before = used(&db);
    let tx = db.begin().await?;
    tx.put(
        &key("big"),
        chunked(pattern(1, 3 * MIB), MIB),
        PutOptions::default(),
    )
    .await?;
    assert!(used(&db) >= before + 3 * MIB as u64);
    tx.rollback().await?;
    assert_eq!(used(&db), before);
    {
        let tx = db.begin().await?;
        tx.put(
            &key("big"),
            chunked(pattern(1, 3 * MIB), MIB),
            PutOptions::default(),
        )
        .await?;
    }
    assert_eq!(used(&db), before);
    assert_eq!(db.head(&key("big")).await.unwrap_err().code(), "not_found");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_queries_in_a_snapshot_are_identical_while_writers_run() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(db(dir.path()));
    for i in 0..40 {
        db.put_bytes(
            &key(&format!("s/{i:02}")),
            pattern(i, 16),
            meta("n", i as i64),
        )
        .await?;
    }
    let writer = {
        let db = Arc::clone(&db);
        tokio::spawn(async move {
            for round in 0..60i64 {
                let k = key(&format!("s/{:02}", round % 40));
                let outcome = db.update_metadata(&k, meta("n", 100 + round), Condition::default());
                match outcome.await {
                    Ok(_) => {}
                    Err(e) if e.code() == "not_found" => {}
                    Err(e) => return Err(e),
                }
                if round % 7 == 0 {
                    db.delete(
                        &key(&format!("s/{:02}", (round + 3) % 40)),
                        Condition::default(),
                    )
                    .await
                    .or_else(|e| {
                        if e.code() == "not_found" {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })?;
                }
            }
            Ok::<(), Error>(())
        })
    };
    let query = Query::new(field("n").lt(100)).with_limit(1000);
    for _ in 0..10 {
        let tx = db.begin().await?;
        let first = tx.query(&query).await?;
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let second = tx.query(&query).await?;
        assert_eq!(first, second);
        let listed_once = tx.list(ListOptions::default()).await?.objects;
        let listed_twice = tx.list(ListOptions::default()).await?.objects;
        assert_eq!(listed_once, listed_twice);
    }
    writer.await.unwrap()?;
    Ok(())
}

#[tokio::test]
async fn versions_above_a_snapshot_stay_readable_until_it_ends() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let k = key("v");
    db.put(&k, chunked(pattern(1, 2 * MIB), MIB), PutOptions::default())
        .await?;
    let tx = db.begin().await?;
    // Overwrite and delete while the snapshot is open: its version must survive both.
    db.put(&k, chunked(pattern(2, 2 * MIB), MIB), PutOptions::default())
        .await?;
    db.delete(&k, Condition::default()).await?;
    for i in 0..3 {
        db.put_bytes(
            &key(&format!("churn/{i}")),
            pattern(9 + i, 2 * MIB),
            Metadata::new(),
        )
        .await?;
    }
    let old = tx.get(&k, GetOptions::default()).await?.bytes().await?;
    assert_eq!(old, pattern(1, 2 * MIB));
    drop(tx);
    // With the snapshot gone the next commit on the key collects the old versions.
    db.put_bytes(&k, pattern(3, 10), Metadata::new()).await?;
    let stats = db.space_stats();
    let live = 3 * 2 * MIB as u64 + 4096;
    assert!(
        stats.extent_bytes - stats.free_bytes <= live + 4 * 4096,
        "{stats:?}"
    );
    Ok(())
}

//! Dropping an index and creating it again at once, the drop's cleanup racing the new build,
//! always ends with a ready index holding every entry: each incarnation of an index has key
//! prefixes of its own, so the cleanup of the old one never touches the new one's entries, and
//! a builder still running for a dropped incarnation never marks the new one ready.

use std::sync::Arc;
use std::time::{Duration, Instant};

use asterope::{field, Database, Key, Metadata, ObjectOps, PutOptions, Query, Result, Store};
use futures::stream::{self, StreamExt};

const OBJECTS: usize = 5_000;
const ROUNDS: usize = 20;

async fn fill(db: &Database) -> Result<()> {
    for batch in 0..OBJECTS / 1000 {
        let tx = db.begin().await?;
        for i in batch * 1000..(batch + 1) * 1000 {
            let mut meta = Metadata::new();
            meta.insert("f".into(), ((i % 100) as i64).into());
            let options = PutOptions::default().with_metadata(meta).with_size(0);
            let key = Key::new(format!("o/{i:05}"))?;
            tx.put(&key, stream::empty().boxed(), options).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn wait_ready(db: &Database) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let indexes = db.list_indexes().await?;
        match indexes
            .iter()
            .find(|i| i.field == "f")
            .map(|i| i.state.as_str())
        {
            Some("ready") => return Ok(()),
            Some("building") => {}
            other => panic!("index f is {other:?}"),
        }
        assert!(Instant::now() < deadline, "the index never became ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_dropped_and_recreated_at_once_is_complete() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder(dir.path())
            .background_compaction(None)
            .open()?,
    );
    fill(&db).await?;
    db.create_index("f").await?;
    wait_ready(&db).await?;
    // By the index (an exact range count over its entries) and by a scan (`$exists` is never
    // answered by an index).
    let by_index = Query::new(field("f").gte(0));
    let by_scan = Query::new(field("f").exists(true));
    assert_eq!(db.explain(&by_index).await?.access, "index");
    assert_eq!(db.count(&by_scan).await?, OBJECTS as u64);

    for round in 0..ROUNDS {
        let dropper = {
            let db = Arc::clone(&db);
            tokio::spawn(async move { db.drop_index("f").await })
        };
        // Create as soon as the drop has removed the definition, while it cleans up.
        loop {
            let gone = !db.list_indexes().await?.iter().any(|i| i.field == "f");
            if gone || dropper.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        db.create_index("f").await?;
        dropper
            .await
            .map_err(|e| asterope::Error::internal(e.to_string()))??;
        if round % 2 == 1 {
            // Again while that build is still running: the stale builder must neither finish
            // the new incarnation nor write into it.
            db.drop_index("f").await?;
            db.create_index("f").await?;
        }
        wait_ready(&db).await?;
        assert_eq!(
            db.count(&by_index).await?,
            OBJECTS as u64,
            "round {round}: the ready index misses entries"
        );
    }
    Ok(())
}

/// A database dropped while its index build is still running lets go of its directory for the
/// next open in the same process: the open waits for the build to stop instead of answering
/// `locked` (the build's batch held the last reference to the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_while_a_dropped_databases_build_winds_down_succeeds() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path())?;
        fill(&db).await?;
    }
    for round in 0..ROUNDS {
        let db = Database::open(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: the reopen failed: {e}"));
        let _ = db.drop_index("f").await;
        db.create_index("f").await?;
        drop(db);
    }
    Ok(())
}

//! I/O errors in the metadata store (injected through a per-database fault plan at the
//! storage's metadata seam). A failed batch changes nothing and the store goes on; a failed
//! flush leaves the commit's outcome unknown, so the store refuses everything with a clear
//! `io_error` until it is reopened, and the reopened store holds every earlier write and the
//! failed one either whole or not at all.
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

use asterope::{Condition, Database, Key, Metadata, ObjectOps, Store, StoreExt};
use asterope_storage::fault::{FaultPlan, FaultPoint};
use common::pattern;

fn tagged(tag: &str) -> Metadata {
    let mut m = Metadata::new();
    m.insert("tag".into(), tag.into());
    m
}

fn open(dir: &std::path::Path, plan: &FaultPlan) -> asterope::Result<Database> {
    Database::builder(dir)
        .background_compaction(None)
        .fault_plan(plan)
        .open()
}

#[tokio::test]
async fn a_failed_metadata_batch_changes_nothing() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let db = open(dir.path(), &plan)?;
    let kept = Key::new("kept")?;
    db.put_bytes(&kept, pattern(1, 5000), tagged("old")).await?;
    let before = db.head(&kept).await?;

    plan.fail_next(FaultPoint::MetaWrite, 1);
    let err = db
        .put_bytes(&kept, pattern(2, 7000), tagged("new"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert_eq!(plan.injected(FaultPoint::MetaWrite), 1);
    plan.fail_next(FaultPoint::MetaWrite, 1);
    let err = db.delete(&kept, Condition::default()).await.unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    plan.fail_next(FaultPoint::MetaWrite, 1);
    let fresh = Key::new("fresh")?;
    let err = db
        .put_bytes(&fresh, pattern(3, 100), Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");

    // Nothing of the failed writes is visible, and the store takes writes again.
    assert_eq!(db.head(&kept).await?, before);
    assert_eq!(db.get_bytes(&kept).await?.1, pattern(1, 5000));
    assert_eq!(db.head(&fresh).await.unwrap_err().code(), "not_found");
    assert_eq!(db.stats().await?.objects, 1);
    db.put_bytes(&fresh, pattern(4, 100), Metadata::new())
        .await?;
    let used = db.space_stats();
    drop(db);

    let db = open(dir.path(), &plan)?;
    assert_eq!(db.head(&kept).await?, before);
    assert_eq!(db.get_bytes(&fresh).await?.1, pattern(4, 100));
    assert_eq!(
        db.space_stats().extent_bytes - db.space_stats().free_bytes,
        used.extent_bytes - used.free_bytes,
        "space of the failed writes leaked"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_metadata_flush_stops_the_store_until_reopened() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let db = open(dir.path(), &plan)?;
    let kept = Key::new("kept")?;
    let other = Key::new("other")?;
    db.put_bytes(&kept, pattern(1, 5000), tagged("old")).await?;
    db.put_bytes(&other, pattern(2, 300), Metadata::new())
        .await?;
    db.create_index("tag").await?;

    plan.fail_next(FaultPoint::MetaFlush, 1);
    let err = db
        .put_bytes(&kept, pattern(3, 9000), tagged("new"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert_eq!(plan.injected(FaultPoint::MetaFlush), 1);

    // The outcome is unknown: nothing is answered from this handle any more, with an error
    // that says what to do.
    let refused = db.head(&kept).await.unwrap_err();
    assert_eq!(refused.code(), "io_error", "{refused}");
    assert!(refused.to_string().contains("reopen"), "{refused}");
    let refused = db
        .put_bytes(&Key::new("later")?, pattern(4, 10), Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "io_error", "{refused}");
    assert_eq!(
        db.list(Default::default()).await.unwrap_err().code(),
        "io_error"
    );
    drop(db);

    // Reopened: every earlier write is there, the failed one whole or not at all.
    let db = open(dir.path(), &plan)?;
    assert_eq!(db.get_bytes(&other).await?.1, pattern(2, 300));
    let (info, bytes) = db.get_bytes(&kept).await?;
    let tag = info.metadata.get("tag").cloned();
    if tag == Some("new".into()) {
        assert_eq!(bytes, pattern(3, 9000));
    } else {
        assert_eq!(tag, Some("old".into()));
        assert_eq!(bytes, pattern(1, 5000));
    }
    assert_eq!(db.stats().await?.objects, 2);
    let report = db.verify_blobs().await?;
    assert!(report.damaged.is_empty(), "{report:?}");
    // And it takes writes again.
    db.put_bytes(&Key::new("later")?, pattern(5, 10), Metadata::new())
        .await?;
    db.delete(&other, Condition::default()).await?;
    drop(db);
    let db = open(dir.path(), &plan)?;
    assert_eq!(db.get_bytes(&Key::new("later")?).await?.1, pattern(5, 10));
    assert_eq!(db.head(&other).await.unwrap_err().code(), "not_found");
    Ok(())
}

#[tokio::test]
async fn a_failed_transaction_flush_stops_the_store_until_reopened() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let db = open(dir.path(), &plan)?;
    let (a, b) = (Key::new("a")?, Key::new("b")?);
    db.put_bytes(&a, pattern(1, 100), Metadata::new()).await?;
    let tx = db.begin().await?;
    tx.put(
        &b,
        common::chunked(pattern(2, 200), 100),
        Default::default(),
    )
    .await?;
    tx.delete(&a, Condition::default()).await?;
    plan.fail_next(FaultPoint::MetaFlush, 1);
    assert_eq!(tx.commit().await.unwrap_err().code(), "io_error");
    drop(db);

    // Both writes of the transaction, or neither.
    let db = open(dir.path(), &plan)?;
    let has_a = db.head(&a).await.is_ok();
    let has_b = db.head(&b).await.is_ok();
    assert!(
        has_a != has_b,
        "a transaction applied in part: a {has_a}, b {has_b}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_metadata_read_fails_that_read_only() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let db = open(dir.path(), &plan)?;
    let k = Key::new("k")?;
    db.put_bytes(&k, pattern(1, 100), Metadata::new()).await?;
    plan.fail_next(FaultPoint::MetaRead, 1);
    assert_eq!(db.head(&k).await.unwrap_err().code(), "io_error");
    plan.fail_next(FaultPoint::MetaRead, 1);
    assert_eq!(
        db.list(Default::default()).await.unwrap_err().code(),
        "io_error"
    );
    assert_eq!(db.get_bytes(&k).await?.1, pattern(1, 100));
    db.put_bytes(&k, pattern(2, 100), Metadata::new()).await?;
    assert_eq!(db.get_bytes(&k).await?.1, pattern(2, 100));
    Ok(())
}

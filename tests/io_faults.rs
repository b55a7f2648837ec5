//! I/O errors on extent writes, syncs, growth and reads (injected through a per-database fault
//! plan at the storage's I/O seam) surface as `io_error`, never as acknowledged writes; nothing partial is stored,
//! earlier objects stay intact and the store keeps working once the disk recovers.
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
    Client, Condition, Database, Key, Metadata, ObjectOps, PutOptions, ServerConfig, StoreExt,
};
use asterope_storage::fault::{FaultPlan, FaultPoint};
use common::{chunked, pattern, MIB};
use server::TestServer;

fn used(db: &Database) -> u64 {
    let stats = db.space_stats();
    stats.extent_bytes - stats.free_bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_errors_are_errors_not_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let db = Database::builder(dir.path())
        .extent_size(16 << 20)
        .fault_plan(&plan)
        .open()
        .unwrap();
    let kept = Key::new("kept").unwrap();
    db.put_bytes(&kept, pattern(1, MIB), Metadata::new())
        .await
        .unwrap();
    let baseline = used(&db);

    for (what, point) in [
        ("sync", FaultPoint::ExtentSync),
        ("write", FaultPoint::ExtentWrite),
        ("allocation", FaultPoint::ExtentAllocate),
    ] {
        let k = Key::new(format!("failed-{what}")).unwrap();
        // Growth happens only when the extent runs out of room: a put larger than what is
        // left of its current length.
        let size = if point == FaultPoint::ExtentAllocate {
            8 * MIB
        } else {
            3 * MIB
        };
        plan.fail_next(point, 1);
        let err = db
            .put(&k, chunked(pattern(2, size), MIB), PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(plan.injected(point), 1, "{what}");
        assert_eq!(err.code(), "io_error", "{what}: {err}");
        assert!(err.to_string().contains("extent"), "{what}: {err}");
        assert_eq!(db.head(&k).await.unwrap_err().code(), "not_found", "{what}");
        assert_eq!(
            used(&db),
            baseline,
            "{what}: space of the failed put leaked"
        );
        // A failing overwrite leaves the old object in place.
        plan.fail_next(point, 1);
        let err = db
            .put(&kept, chunked(pattern(3, size), MIB), PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "io_error");
        assert_eq!(db.get_bytes(&kept).await.unwrap().1, pattern(1, MIB));
        plan.clear();
    }

    // Through the server the client gets the same code, and the server keeps serving.
    let server = TestServer::start(db.clone(), ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    plan.fail_next(FaultPoint::ExtentSync, 1);
    let err = client
        .put(
            &Key::new("remote").unwrap(),
            chunked(pattern(4, MIB), MIB / 4),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert_eq!(
        client
            .head(&Key::new("remote").unwrap())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    client
        .put_bytes(
            &Key::new("remote").unwrap(),
            pattern(5, 1000),
            Metadata::new(),
        )
        .await
        .unwrap();
    client
        .delete(&Key::new("remote").unwrap(), Condition::default())
        .await
        .unwrap();
    assert_eq!(client.get_bytes(&kept).await.unwrap().1, pattern(1, MIB));
    server.stop().await;
}

/// A failing read of an extent (the length check before a mapped read) fails that read with
/// `io_error`; nothing is damaged and the next read succeeds.
#[tokio::test]
async fn a_failed_read_fails_that_read_only() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let db = Database::builder(dir.path()).fault_plan(&plan).open()?;
    let k = Key::new("read")?;
    db.put_bytes(&k, pattern(6, 100_000), Metadata::new())
        .await?;
    plan.fail_next(FaultPoint::ExtentRead, 1);
    let err = match db.get_bytes(&k).await {
        Ok(_) => panic!("a read with a failing disk succeeded"),
        Err(err) => err,
    };
    assert_eq!(err.code(), "io_error", "{err}");
    assert_eq!(plan.injected(FaultPoint::ExtentRead), 1);
    assert_eq!(db.get_bytes(&k).await?.1, pattern(6, 100_000));
    Ok(())
}

/// Faults are per database: a plan armed for one leaves another in the same process alone.
#[tokio::test]
async fn a_plan_fails_only_its_own_database() -> asterope::Result<()> {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plan = FaultPlan::new();
    let faulty = Database::builder(one.path()).fault_plan(&plan).open()?;
    let healthy = Database::open(two.path())?;
    plan.fail_next(FaultPoint::ExtentWrite, 1);
    let k = Key::new("k")?;
    healthy
        .put_bytes(&k, pattern(7, 1000), Metadata::new())
        .await?;
    let err = faulty
        .put_bytes(&k, pattern(7, 1000), Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    faulty
        .put_bytes(&k, pattern(7, 1000), Metadata::new())
        .await?;
    Ok(())
}

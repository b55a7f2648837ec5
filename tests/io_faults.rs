//! I/O errors on extent writes and syncs (injected through the storage's test-only fault
//! switches) surface as `io_error`, never as acknowledged writes; nothing partial is stored,
//! earlier objects stay intact and the store keeps working once the disk recovers.

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{
    Client, Condition, Database, Key, Metadata, ObjectOps, PutOptions, ServerConfig, StoreExt,
};
use asterope_storage::fault::{fail_next_syncs, fail_next_writes};
use common::{chunked, pattern, MIB};
use server::TestServer;

fn used(db: &Database) -> u64 {
    let stats = db.space_stats();
    stats.extent_bytes - stats.free_bytes
}

// One test function: the fault switches are process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_errors_are_errors_not_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(16 << 20)
        .open()
        .unwrap();
    let kept = Key::new("kept").unwrap();
    db.put_bytes(&kept, pattern(1, MIB), Metadata::new())
        .await
        .unwrap();
    let baseline = used(&db);

    for (what, inject) in [
        ("sync", fail_next_syncs as fn(u64)),
        ("write", fail_next_writes),
    ] {
        let k = Key::new(format!("failed-{what}")).unwrap();
        inject(1);
        let err = db
            .put(&k, chunked(pattern(2, 3 * MIB), MIB), PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "io_error", "{what}: {err}");
        assert!(err.to_string().contains("extent"), "{what}: {err}");
        assert_eq!(db.head(&k).await.unwrap_err().code(), "not_found", "{what}");
        assert_eq!(
            used(&db),
            baseline,
            "{what}: space of the failed put leaked"
        );
        // A failing overwrite leaves the old object in place.
        inject(1);
        let err = db
            .put(
                &kept,
                chunked(pattern(3, 2 * MIB), MIB),
                PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "io_error");
        assert_eq!(db.get_bytes(&kept).await.unwrap().1, pattern(1, MIB));
    }

    // Through the server the client gets the same code, and the server keeps serving.
    let server = TestServer::start(db.clone(), ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    fail_next_syncs(1);
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

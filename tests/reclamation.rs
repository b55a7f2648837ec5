//! Space reclamation: deleted and overwritten blobs give their space back, compaction moves
//! live blobs out of sparse extents and deletes emptied ones, and free ranges are returned to
//! the filesystem, all while readers and writers keep going and every blob stays readable.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use asterope::{Database, GetOptions, Key, Metadata, ObjectOps, Store, StoreExt};
use common::{pattern, sha256, MIB};
use futures::StreamExt;

fn key(i: u64) -> Key {
    Key::new(format!("fill/{i:04}")).unwrap()
}

/// Sizes between 64 KiB and ~1.5 MiB, not multiples of the page size.
fn size_of(i: u64) -> usize {
    64 * 1024 + ((i * 7919) % 1400) as usize * 1024 + (i % 13) as usize
}

fn database(dir: &std::path::Path) -> Database {
    Database::builder(dir)
        .extent_size(16 << 20)
        .background_compaction(None)
        .open()
        .unwrap()
}

/// Fills a store, deletes a random half, and returns the survivors' digests.
async fn fill_and_delete_half(db: &Database, count: u64, seed: u64) -> BTreeMap<Key, [u8; 32]> {
    let mut live = BTreeMap::new();
    for i in 0..count {
        let data = pattern(seed + i, size_of(i));
        live.insert(key(i), sha256(&data).0);
        db.put_bytes(&key(i), data, Metadata::new()).await.unwrap();
    }
    let mut state = seed | 1;
    for i in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 2 == 0 {
            db.delete(&key(i), Default::default()).await.unwrap();
            live.remove(&key(i));
        }
    }
    live
}

async fn assert_all_read_back(db: &Database, live: &BTreeMap<Key, [u8; 32]>) {
    for (key, digest) in live {
        let (info, bytes) = db.get_bytes(key).await.unwrap();
        assert_eq!(&sha256(&bytes).0, digest, "{key} reads back wrong");
        assert_eq!(&info.sha256.0, digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_brings_disk_use_back_to_live_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let live = fill_and_delete_half(&db, 160, 1000).await;
    let before = db.stats().await.unwrap();
    let live_bytes: u64 = before.logical_bytes;
    assert_eq!(before.objects, live.len() as u64);
    assert!(
        before.extents >= 6,
        "the fill spans several extents: {before:?}"
    );
    assert!(
        before.disk_bytes > live_bytes * 3 / 2,
        "before compaction the extents are mostly holes of deleted blobs: {before:?}"
    );

    let report = db.compact().await.unwrap();
    let after = db.stats().await.unwrap();
    println!("live {live_bytes} before {before:?} report {report:?} after {after:?}");
    assert!(
        report.moved_bytes > 0 && report.extents_removed > 0,
        "{report:?}"
    );
    assert!(after.extents < before.extents);
    assert!(
        after.disk_bytes <= live_bytes + live_bytes / 10,
        "disk use {} is not within 10% of the {live_bytes} live bytes",
        after.disk_bytes
    );
    assert_eq!(after.logical_bytes, live_bytes);
    assert_all_read_back(&db, &live).await;

    // Freed space is reused, and the state survives a reopen.
    drop(db);
    let db = database(dir.path());
    assert_all_read_back(&db, &live).await;
    let reopened = db.stats().await.unwrap();
    assert_eq!(reopened.physical_bytes, after.physical_bytes);
    assert_eq!(reopened.extents, after.extents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_streaming_a_moved_blob_reads_the_old_bytes_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    // Extent 0: twelve 1 MiB fillers, then `keep`; extent 1: a 10 MiB object, with room left.
    for i in 0..12u64 {
        db.put_bytes(&key(i), pattern(i, MIB), Metadata::new())
            .await
            .unwrap();
    }
    let keep = Key::new("keep").unwrap();
    let data = pattern(7, 3 * MIB + 5);
    db.put_bytes(&keep, data.clone(), Metadata::new())
        .await
        .unwrap();
    let other = Key::new("other").unwrap();
    db.put_bytes(&other, pattern(8, 10 * MIB), Metadata::new())
        .await
        .unwrap();
    assert_eq!(db.stats().await.unwrap().extents, 2);

    // Make extent 0 sparse, start reading `keep`, and compact under the reader: `keep` moves
    // to extent 1.
    for i in 0..12u64 {
        db.delete(&key(i), Default::default()).await.unwrap();
    }
    let mut body = db.get(&keep, GetOptions::default()).await.unwrap().body;
    let mut received = body.next().await.unwrap().unwrap().to_vec();
    let report = db.compact().await.unwrap();
    assert_eq!(report.moved_blobs, 1, "{report:?}");
    assert!(
        db.stats().await.unwrap().garbage_bytes > 0,
        "old copy kept for the reader"
    );
    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert!(received == data, "the streaming reader saw other bytes");
    drop(body);
    // New readers see the moved copy; once the old reader is gone its copy is freed.
    let (_, bytes) = db.get_bytes(&keep).await.unwrap();
    assert!(bytes == data);
    assert_eq!(db.stats().await.unwrap().garbage_bytes, 0);
    let report = db.compact().await.unwrap();
    assert_eq!(report.extents_removed, 1, "{report:?}");
    assert_eq!(db.stats().await.unwrap().extents, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_under_concurrent_reads_and_writes_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let live = fill_and_delete_half(&db, 120, 5000).await;
    let stop = Arc::new(AtomicBool::new(false));

    let reader = {
        let (db, live, stop) = (db.clone(), live.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for (key, digest) in &live {
                    let (_, bytes) = db.get_bytes(key).await.unwrap();
                    assert_eq!(&sha256(&bytes).0, digest, "{key} changed under compaction");
                    reads += 1;
                    // Reads of mapped pages never wait: let the other tasks run.
                    tokio::task::yield_now().await;
                }
            }
            reads
        })
    };
    let writer = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut written = BTreeMap::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = Key::new(format!("new/{}", i % 20)).unwrap();
                let data = pattern(90_000 + i, size_of(i));
                db.put_bytes(&key, data.clone(), Metadata::new())
                    .await
                    .unwrap();
                written.insert(key.clone(), sha256(&data).0);
                if i % 3 == 0 {
                    db.delete(&key, Default::default()).await.unwrap();
                    written.remove(&key);
                }
                i += 1;
            }
            written
        })
    };
    let mut moved = 0;
    for _ in 0..6 {
        moved += db.compact().await.unwrap().moved_bytes;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let reads = reader.await.unwrap();
    let written = writer.await.unwrap();
    println!("moved {moved} bytes during {reads} reads");
    assert!(moved > 0);
    assert!(reads > 0);
    assert_all_read_back(&db, &live).await;
    assert_all_read_back(&db, &written).await;
    let stats = db.stats().await.unwrap();
    assert_eq!(stats.objects, (live.len() + written.len()) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_reclaims_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = asterope::CompactionSchedule {
        interval: std::time::Duration::from_millis(200),
        budget_bytes: 256 << 20,
    };
    let db = Database::builder(dir.path())
        .extent_size(16 << 20)
        .background_compaction(Some(schedule))
        .open()
        .unwrap();
    let live = fill_and_delete_half(&db, 120, 7000).await;
    let live_bytes: u64 = db.stats().await.unwrap().logical_bytes;
    // The fill needed this many extents; passes may already be running meanwhile.
    let filled_extents = (0..120).map(|i| size_of(i) as u64).sum::<u64>() / (16 << 20) + 1;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let after = loop {
        let stats = db.stats().await.unwrap();
        if stats.extents < filled_extents && stats.disk_bytes <= live_bytes + live_bytes / 10 {
            break stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "background passes did not reclaim the space of {live_bytes} live bytes in \
             {filled_extents} extents: {stats:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    println!("{live_bytes} live bytes -> {after:?}");
    assert_all_read_back(&db, &live).await;
}

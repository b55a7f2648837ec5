//! Disk use grows with the data: extent files start small and grow as blobs are written, so a
//! data directory takes about what it stores plus a small constant (measured like `du`, from
//! the blocks of every file); grown extents survive a reopen, keep growing to their maximum
//! and no further; a file left longer than its blobs (a crash midway through growing it) opens
//! and its tail is reused; and extents made at full size by earlier versions keep working.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use asterope::{Database, Key, ObjectOps, PutOptions, StoreExt};
use common::{chunked, pattern, MIB};

/// What `du` reports: the disk blocks of every file under `dir`.
fn disk_use(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        total += metadata.blocks() * 512;
        if metadata.is_dir() {
            total += disk_use(&entry.path());
        }
    }
    total
}

/// Lengths of the extent files, by name.
fn extent_lengths(dir: &Path) -> Vec<(String, u64)> {
    let mut lengths: Vec<(String, u64)> = std::fs::read_dir(dir.join("extents"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.metadata().unwrap().len())
        })
        .collect();
    lengths.sort();
    lengths
}

async fn put(db: &Database, key: &str, seed: u64, len: usize) {
    db.put_bytes(
        &Key::new(key).unwrap(),
        pattern(seed, len),
        Default::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn check(db: &Database, key: &str, seed: u64, len: usize) {
    let (_, bytes) = db
        .get_bytes(&Key::new(key).unwrap())
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"));
    assert!(bytes == pattern(seed, len), "{key}: bytes differ");
}

#[tokio::test]
async fn fresh_directory_after_a_small_put_is_under_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    // The default (1 GiB) maximum extent size, as the command line uses.
    let db = Database::builder(dir.path()).open().unwrap();
    put(&db, "hello.txt", 1, 1000).await;
    check(&db, "hello.txt", 1, 1000).await;
    drop(db);
    let used = disk_use(dir.path());
    assert!(
        used < 64 * MIB as u64,
        "{used} bytes on disk for 1000 stored"
    );
    // Reopened, it is still small and still readable.
    let db = Database::builder(dir.path()).open().unwrap();
    check(&db, "hello.txt", 1, 1000).await;
    assert!(disk_use(dir.path()) < 64 * MIB as u64);
}

#[tokio::test]
async fn disk_use_follows_the_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    let mut stored = 0u64;
    // Known sizes, streamed unknown sizes, and many small objects.
    for i in 0..4u64 {
        let data = pattern(10 + i, 9 * MIB + 12_345);
        stored += data.len() as u64;
        let options = PutOptions::default().with_size(data.len() as u64);
        db.put(
            &Key::new(format!("sized/{i}")).unwrap(),
            chunked(data, MIB),
            options,
        )
        .await
        .unwrap();
        let data = pattern(20 + i, 7 * MIB + 999);
        stored += data.len() as u64;
        db.put(
            &Key::new(format!("stream/{i}")).unwrap(),
            chunked(data, 64 * 1024),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    for i in 0..200u64 {
        put(&db, &format!("small/{i}"), 100 + i, 1024).await;
        stored += 1024;
    }
    for i in 0..4u64 {
        check(&db, &format!("sized/{i}"), 10 + i, 9 * MIB + 12_345).await;
        check(&db, &format!("stream/{i}"), 20 + i, 7 * MIB + 999).await;
    }
    drop(db);
    let used = disk_use(dir.path());
    assert!(used >= stored, "{used} bytes on disk for {stored} stored");
    assert!(
        used <= stored + 32 * MIB as u64,
        "{used} bytes on disk for {stored} stored: more than 32 MiB over"
    );
}

#[tokio::test]
async fn deduplicated_and_deleted_large_blobs_give_their_disk_back_at_once() {
    const SIZE: usize = 40 * MIB;
    let dir = tempfile::tempdir().unwrap();
    // No compaction: short-lived processes (the command line) never get to run one.
    let db = Database::builder(dir.path())
        .background_compaction(None)
        .open()
        .unwrap();
    // Each upload is written in full before it turns out to be a copy of the first.
    for i in 0..5 {
        put(&db, &format!("copy/{i}"), 7, SIZE).await;
    }
    let used = disk_use(dir.path());
    assert!(
        used <= (SIZE + 24 * MIB) as u64,
        "{used} bytes on disk for five copies of one {SIZE}-byte blob"
    );
    for i in 0..5 {
        db.delete(&Key::new(format!("copy/{i}")).unwrap(), Default::default())
            .await
            .unwrap();
    }
    let used = disk_use(dir.path());
    assert!(
        used <= 24 * MIB as u64,
        "{used} bytes on disk once everything is deleted"
    );
    // The space given back is allocated again before it is written.
    put(&db, "again", 8, SIZE).await;
    check(&db, "again", 8, SIZE).await;
}

#[tokio::test]
async fn grown_extents_reopen_and_grow_to_their_maximum_only() {
    const MAX: u64 = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Database::builder(dir.path())
            .extent_size(MAX)
            .open()
            .unwrap()
    };
    let mut written = Vec::new();
    for round in 0..6u64 {
        let db = open();
        for &(key, seed, len) in &written {
            check(&db, key, seed, len).await;
        }
        let key: &'static str = ["a", "b", "c", "d", "e", "f"][round as usize];
        let len = 3 * MIB + 1000 * round as usize;
        put(&db, key, round, len).await;
        // Read back in the same process: through the mapping made before the file grew.
        check(&db, key, round, len).await;
        written.push((key, round, len));
        for (name, length) in extent_lengths(dir.path()) {
            assert!(length <= MAX, "{name} grew to {length}, beyond {MAX}");
        }
    }
    let lengths = extent_lengths(dir.path());
    assert!(
        lengths.len() >= 3,
        "18 MiB fits in no fewer than 3 extents: {lengths:?}"
    );
    let db = open();
    for &(key, seed, len) in &written {
        check(&db, key, seed, len).await;
    }
}

#[tokio::test]
async fn a_file_left_longer_than_its_blobs_opens_and_its_tail_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Database::builder(dir.path())
            .extent_size(64 << 20)
            .open()
            .unwrap()
    };
    let db = open();
    put(&db, "a", 1, 100_000).await;
    drop(db);
    // As a crash midway through growing the file leaves it: longer than anything recorded in
    // it, by a length that is no multiple of the growth steps.
    let path = dir.path().join("extents/00000000.ext");
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let crashed_length = 5 * MIB as u64 + 8192;
    file.set_len(crashed_length).unwrap();
    drop(file);

    let db = open();
    check(&db, "a", 1, 100_000).await;
    // The tail is free space: 4 MiB more fit without the file growing or a new extent.
    put(&db, "b", 2, 4 * MIB).await;
    check(&db, "b", 2, 4 * MIB).await;
    assert_eq!(
        extent_lengths(dir.path()),
        vec![("00000000.ext".to_string(), crashed_length)]
    );
    // Then it grows again from there.
    put(&db, "c", 3, 2 * MIB).await;
    check(&db, "c", 3, 2 * MIB).await;
    drop(db);
    let db = open();
    for (key, seed, len) in [("a", 1, 100_000), ("b", 2, 4 * MIB), ("c", 3, 2 * MIB)] {
        check(&db, key, seed, len).await;
    }
}

#[tokio::test]
async fn full_size_extents_of_earlier_versions_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(4 << 20)
        .open()
        .unwrap();
    put(&db, "a", 1, 500_000).await;
    drop(db);
    // Earlier versions created every extent at its full size: 6 MiB here, more than this open
    // lets new extents grow to.
    let path = dir.path().join("extents/00000000.ext");
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    let length = file.metadata().unwrap().len();
    file.write_all(&vec![0; (6 << 20) - length as usize])
        .unwrap();
    drop(file);

    let db = Database::builder(dir.path())
        .extent_size(4 << 20)
        .open()
        .unwrap();
    check(&db, "a", 1, 500_000).await;
    // The full-size extent is filled first, then a new, small one grows.
    put(&db, "b", 2, 5 * MIB).await;
    assert_eq!(extent_lengths(dir.path()).len(), 1);
    put(&db, "c", 3, 2 * MIB).await;
    let lengths = extent_lengths(dir.path());
    assert_eq!(lengths.len(), 2, "{lengths:?}");
    assert_eq!(
        lengths[0].1,
        6 << 20,
        "the full-size extent never changes length"
    );
    assert!(lengths[1].1 <= 4 << 20, "{lengths:?}");
    for (key, seed, len) in [("a", 1, 500_000), ("b", 2, 5 * MIB), ("c", 3, 2 * MIB)] {
        check(&db, key, seed, len).await;
    }
}

/// Disk use of `count` objects of `size` bytes: (blob space allocated per object, metadata
/// directory growth per object, `du` of the whole directory).
async fn disk_use_per_object(count: u64, size: usize) -> (u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    put(&db, "first", 0, size).await;
    let meta_before = disk_use(&dir.path().join("meta"));
    for i in 0..count {
        put(&db, &format!("objects/{i:06}"), i + 1, size).await;
    }
    let stats = db.space_stats();
    let blob_bytes = stats.extent_bytes - stats.free_bytes;
    drop(db);
    let meta = disk_use(&dir.path().join("meta")).saturating_sub(meta_before);
    (blob_bytes / (count + 1), meta / count, disk_use(dir.path()))
}

/// Blob space is allocated in units of 512 bytes, not pages: a 1000-byte object takes 1024.
#[tokio::test]
async fn small_objects_take_their_size_rounded_to_512_bytes() {
    for (count, size) in [(2000, 1000), (300, 100_000)] {
        let (blob, meta, all) = disk_use_per_object(count, size).await;
        println!(
            "{count} objects of {size} bytes: blob space {blob} B/object, metadata {meta} \
             B/object; du of the directory {all} B"
        );
        assert_eq!(
            blob,
            (size as u64).div_ceil(512) * 512,
            "objects of {size} bytes"
        );
    }
}

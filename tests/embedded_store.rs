//! Behaviour of the embedded database through the `Store` API: round trips, ranges, overwrite,
//! delete, reopen, errors, preconditions, listing, and space reuse.

mod common;

use asterope::{
    ByteRange, Condition, Database, Error, GetOptions, Key, ListOptions, Metadata, ObjectOps,
    PutOptions, StoreExt, Value,
};
use bytes::Bytes;
use common::{chunked, pattern, sha256, small_extent_db, MIB};
use futures::stream::{self, StreamExt};

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

async fn read_all(db: &Database, k: &Key, options: GetOptions) -> asterope::Result<Bytes> {
    db.get(k, options).await?.bytes().await
}

#[tokio::test]
async fn round_trips_sizes_around_chunk_and_extent_boundaries() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let sizes = [
        0,
        1,
        4095,
        4096,
        4097,
        MIB - 1,
        MIB,
        MIB + 1,
        3 * MIB + MIB / 2,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let data = pattern(i as u64, size);
        for chunk in [7777, MIB / 4, 2 * MIB] {
            let k = key(&format!("obj/{size}/{chunk}"));
            let info = db
                .put(&k, chunked(data.clone(), chunk), PutOptions::default())
                .await?;
            assert_eq!(info.size, size as u64);
            assert_eq!(info.sha256, sha256(&data));
            let back = read_all(&db, &k, GetOptions::default()).await?;
            assert_eq!(back.len(), data.len());
            assert!(
                back == data,
                "content differs for size {size} chunk {chunk}"
            );
            assert_eq!(db.head(&k).await?, info);
        }
    }
    // 3.5 MiB blobs cannot fit in one 1 MiB extent.
    assert!(db.space_stats().extents >= 4);
    Ok(())
}

#[tokio::test]
async fn ranges_cross_extent_boundaries() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let data = pattern(9, 3 * MIB + 123);
    let k = key("ranged");
    db.put(&k, chunked(data.clone(), MIB), PutOptions::default())
        .await?;
    let n = data.len() as u64;
    let cases = [
        (ByteRange::Inclusive { first: 0, last: 9 }, 0..10),
        (
            ByteRange::Inclusive {
                first: MIB as u64 - 5,
                last: 2 * MIB as u64 + 5,
            },
            MIB - 5..2 * MIB + 6,
        ),
        (ByteRange::From(n - 1), data.len() - 1..data.len()),
        (ByteRange::Suffix(200), data.len() - 200..data.len()),
        (
            ByteRange::Inclusive {
                first: 100,
                last: n + 1000,
            },
            100..data.len(),
        ),
    ];
    for (range, expected) in cases {
        let result = db.get(&k, GetOptions::default().with_range(range)).await?;
        assert_eq!(
            result.range,
            expected.start as u64..expected.end as u64,
            "{range:?}"
        );
        assert_eq!(result.bytes().await?, data.slice(expected), "{range:?}");
    }
    let err = db
        .get(&k, GetOptions::default().with_range(ByteRange::From(n)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_range");
    Ok(())
}

#[tokio::test]
async fn overwrite_replaces_and_keeps_created_time() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("doc");
    let mut meta = Metadata::new();
    meta.insert("rev".into(), Value::Int(1));
    let first = db.put_bytes(&k, pattern(1, 5000), meta.clone()).await?;
    meta.insert("rev".into(), Value::Int(2));
    let second = db.put_bytes(&k, pattern(2, 70_000), meta.clone()).await?;
    assert!(second.version > first.version);
    assert_eq!(second.created, first.created);
    let (info, bytes) = db.get_bytes(&k).await?;
    assert_eq!(bytes, pattern(2, 70_000));
    assert_eq!(info.metadata, meta);
    Ok(())
}

#[tokio::test]
async fn delete_frees_space_for_reuse() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("cycle");
    for round in 0..20 {
        db.put_bytes(&k, pattern(round, 2 * MIB + 17), Metadata::new())
            .await?;
        db.delete(&k, Condition::default()).await?;
    }
    let stats = db.space_stats();
    // One blob's worth of extents is enough when deleted space is reused.
    assert!(stats.extents <= 4, "{stats:?}");
    assert_eq!(stats.free_bytes, stats.extent_bytes, "{stats:?}");
    assert_eq!(db.head(&k).await.unwrap_err().code(), "not_found");
    assert_eq!(
        db.delete(&k, Condition::default())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        db.get(&k, GetOptions::default()).await.unwrap_err().code(),
        "not_found"
    );
    Ok(())
}

#[tokio::test]
async fn a_reader_keeps_the_old_blob_alive_until_it_finishes() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("hot");
    let old = pattern(1, 3 * MIB);
    db.put(&k, chunked(old.clone(), MIB), PutOptions::default())
        .await?;
    let mut reading = db.get(&k, GetOptions::default()).await?.body;
    let first = reading.next().await.unwrap()?;
    // Overwrite, then churn so that freed space would be reused at once if it were freed.
    db.put(&k, chunked(pattern(2, 3 * MIB), MIB), PutOptions::default())
        .await?;
    assert!(db.space_stats().pending_reclaim_bytes >= 3 * MIB as u64);
    for i in 0..4 {
        db.put_bytes(
            &key(&format!("churn{i}")),
            pattern(10 + i, 2 * MIB),
            Metadata::new(),
        )
        .await?;
    }
    let mut rest = first.to_vec();
    while let Some(chunk) = reading.next().await {
        rest.extend_from_slice(&chunk?);
    }
    assert!(rest == old, "old version changed under its reader");
    drop(reading);
    drop(first);
    assert_eq!(db.space_stats().pending_reclaim_bytes, 0);
    Ok(())
}

#[tokio::test]
async fn reopen_keeps_everything_and_versions_keep_growing() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let mut last_version = 0;
    for round in 0..4u64 {
        let db = small_extent_db(dir.path());
        // Everything written by earlier openings is intact.
        for i in 0..round {
            let (info, bytes) = db.get_bytes(&key(&format!("k{i}"))).await?;
            assert_eq!(bytes, pattern(i, 100_000 + i as usize));
            assert!(info.version <= last_version);
        }
        let k = key(&format!("k{round}"));
        let data = pattern(round, 100_000 + round as usize);
        let info = db.put_bytes(&k, data, Metadata::new()).await?;
        assert!(info.version > last_version);
        last_version = info.version;
    }
    Ok(())
}

#[tokio::test]
async fn second_opener_is_refused_until_the_first_closes() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let err = Database::open(dir.path()).unwrap_err();
    assert_eq!(err.code(), "locked");
    drop(db);
    Database::open(dir.path())?;
    Ok(())
}

#[tokio::test]
async fn refused_uploads_store_nothing() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("kept");
    let original = db
        .put_bytes(&k, pattern(1, 10_000), Metadata::new())
        .await?;
    let used = |db: &Database| {
        let stats = db.space_stats();
        stats.extent_bytes - stats.free_bytes
    };
    let used_before = used(&db);
    let data = pattern(2, 3 * MIB);

    let wrong_sha = PutOptions::default().with_sha256(sha256(b"something else"));
    let err = db.put(&k, chunked(data.clone(), MIB), wrong_sha).await;
    assert_eq!(err.unwrap_err().code(), "checksum_mismatch");

    let right_sha = PutOptions::default().with_sha256(sha256(&data));
    let too_short = right_sha.clone().with_size(data.len() as u64 + 1);
    let err = db.put(&k, chunked(data.clone(), MIB), too_short).await;
    assert_eq!(err.unwrap_err().code(), "truncated");
    let too_long = right_sha.with_size(data.len() as u64 - 1);
    let err = db.put(&k, chunked(data.clone(), MIB), too_long).await;
    assert_eq!(err.unwrap_err().code(), "truncated");

    // A body that fails midway (a vanished client, a read error).
    let failing = chunked(data.slice(..2 * MIB), MIB)
        .chain(stream::once(async {
            Err(Error::Truncated {
                reason: "connection reset".into(),
            })
        }))
        .boxed();
    let err = db.put(&k, failing, PutOptions::default()).await;
    assert_eq!(err.unwrap_err().code(), "truncated");

    // A put abandoned midway (its future dropped).
    let stalled = chunked(data.slice(..MIB), MIB / 2)
        .chain(stream::pending())
        .boxed();
    let abandoned = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        db.put(&k, stalled, PutOptions::default()),
    )
    .await;
    assert!(abandoned.is_err());

    let mut bad_meta = Metadata::new();
    bad_meta.insert("".into(), Value::Nil);
    let err = db
        .put(
            &k,
            chunked(data, MIB),
            PutOptions::default().with_metadata(bad_meta),
        )
        .await;
    assert_eq!(err.unwrap_err().code(), "invalid_metadata");

    assert_eq!(db.head(&k).await?, original);
    // Give the abandoned writer thread a moment to hand its space back.
    for _ in 0..50 {
        if used(&db) == used_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(used(&db), used_before);
    Ok(())
}

#[tokio::test]
async fn conditional_writes_follow_versions() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("cas");
    let body = || chunked(pattern(1, 100), 100);
    let created = db
        .put(&k, body(), PutOptions::default().with_if_version(0))
        .await?;
    let err = db
        .put(&k, body(), PutOptions::default().with_if_version(0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::PreconditionFailed { required: 0, current, .. } if current == created.version
    ));
    let updated = db
        .update_metadata(&k, Metadata::new(), Condition::if_version(created.version))
        .await?;
    assert!(updated.version > created.version);
    let err = db
        .delete(&k, Condition::if_version(created.version))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "precondition_failed");
    db.delete(&k, Condition::if_version(updated.version))
        .await?;
    let err = db
        .update_metadata(&k, Metadata::new(), Condition::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
    Ok(())
}

#[tokio::test]
async fn metadata_update_keeps_the_blob() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("m");
    db.put_bytes(&k, pattern(5, 50_000), Metadata::new())
        .await?;
    let mut meta = Metadata::new();
    meta.insert("patient_id".into(), "12345".into());
    db.update_metadata(&k, meta.clone(), Condition::default())
        .await?;
    let (info, bytes) = db.get_bytes(&k).await?;
    assert_eq!(info.metadata, meta);
    assert_eq!(bytes, pattern(5, 50_000));
    Ok(())
}

#[tokio::test]
async fn listing_pages_through_a_prefix() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    for i in 0..25 {
        db.put_bytes(&key(&format!("a/{i:03}")), pattern(i, 10), Metadata::new())
            .await?;
    }
    db.put_bytes(&key("b/0"), pattern(0, 1), Metadata::new())
        .await?;
    db.put_bytes(&key("a"), pattern(0, 1), Metadata::new())
        .await?;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .list(
                ListOptions::default()
                    .with_prefix("a/")
                    .with_limit(10)
                    .with_cursor(cursor),
            )
            .await?;
        assert!(page.objects.len() <= 10);
        seen.extend(page.objects.into_iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("a/{i:03}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(db.list_all("").await?.len(), 27);
    let err = db
        .list(ListOptions::default().with_limit(1_000_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    Ok(())
}

#[tokio::test]
async fn corrupted_extent_bytes_are_reported_not_served() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = small_extent_db(dir.path());
    let k = key("fragile");
    db.put_bytes(&k, pattern(3, 300_000), Metadata::new())
        .await?;
    // The only blob of a fresh store starts at offset 0 of the first extent.
    let extent = dir.path().join("extents/00000000.ext");
    let mut bytes = std::fs::read(&extent).unwrap();
    bytes[1234] ^= 0xff;
    std::fs::write(&extent, &bytes).unwrap();
    let err = read_all(&db, &k, GetOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "corrupt");
    // Reading without verification returns the (damaged) bytes as stored.
    let raw = read_all(&db, &k, GetOptions::default().with_verify(false)).await?;
    assert_eq!(raw.len(), 300_000);
    Ok(())
}

#[tokio::test]
async fn a_damaged_block_is_never_handed_out_and_other_blocks_still_read() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .background_compaction(None)
        .open()?;
    let k = key("three-blocks");
    let data = pattern(5, 3 * MIB - 7);
    db.put_bytes(&k, data.clone(), Metadata::new()).await?;
    // The only blob of a fresh store starts at offset 0 of the first extent: damage block 1.
    let extent = dir.path().join("extents/00000000.ext");
    let mut bytes = std::fs::read(&extent).unwrap();
    bytes[MIB + 77] ^= 0x01;
    std::fs::write(&extent, &bytes).unwrap();

    // The stream delivers block 0, then fails before a single byte of block 1.
    let mut body = db.get(&k, GetOptions::default()).await?.body;
    let mut delivered = 0;
    let err = loop {
        match body.next().await {
            Some(Ok(chunk)) => delivered += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("a damaged blob streamed to its end"),
        }
    };
    assert_eq!((err.code(), delivered), ("corrupt", MIB));
    // Ranges are checked too: one touching block 1 fails, ones around it read back.
    let touching = GetOptions::default().with_range(ByteRange::parse("1048570-1048580")?);
    assert_eq!(
        read_all(&db, &k, touching).await.unwrap_err().code(),
        "corrupt"
    );
    let before = GetOptions::default().with_range(ByteRange::parse("10-1048575")?);
    assert!(read_all(&db, &k, before).await? == data.slice(10..MIB));
    let after = GetOptions::default().with_range(ByteRange::parse("2097152-")?);
    assert!(read_all(&db, &k, after).await? == data.slice(2 * MIB..));
    Ok(())
}

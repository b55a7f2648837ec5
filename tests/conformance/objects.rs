//! Cases over the object routes: round trips of every size, odd keys, every metadata type,
//! ranges, overwrites and deletes, conditional writes, refused uploads, a full store,
//! listings with cursors, and corruption reported as `corrupt`.

use asterope::{
    ByteRange, Condition, Error, GetOptions, ListOptions, Metadata, ObjectOps, PutOptions,
    StoreExt, Timestamp, Value,
};
use asterope_serialization::metadata_from_json_str;
use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::common::{chunked, pattern, sha256, MIB};
use crate::{key, read};

pub async fn round_trips(store: &dyn ObjectOps) {
    for (i, size) in [0usize, 1, 4096, MIB - 1, MIB + 1, 9 * MIB + 7]
        .into_iter()
        .enumerate()
    {
        let data = pattern(i as u64, size);
        let k = key(&format!("rt/{size}"));
        let info = store
            .put(&k, chunked(data.clone(), 300_000), PutOptions::default())
            .await
            .unwrap();
        assert_eq!((info.size, info.sha256), (size as u64, sha256(&data)));
        assert!(read(store, &k, GetOptions::default()).await.unwrap() == data);
        assert_eq!(store.head(&k).await.unwrap(), info);
    }
}

pub async fn keys_with_odd_characters(store: &dyn ObjectOps) {
    for name in [
        "a b/c?d#e",
        "ünï/キー",
        "%2F..%00x",
        "trailing/",
        "/leading",
        "x+y=z&w",
        "../../escaped-key",
        "/tmp/escaped-key",
    ] {
        let k = key(name);
        store
            .put_bytes(&k, Bytes::from(name.to_string()), Metadata::new())
            .await
            .unwrap();
        let (info, bytes) = store.get_bytes(&k).await.unwrap();
        assert_eq!(info.key, k);
        assert_eq!(&bytes[..], name.as_bytes());
    }
}

pub async fn metadata_keeps_every_type(store: &dyn ObjectOps) {
    let mut meta = metadata_from_json_str(
        r#"{"patient_id":"12345","slices":120,"dose":0.25,"ok":true,"none":null,
            "tags":["CT","head"],"study":{"series":{"n":3}},"raw":{"$base64":"AAEC"}}"#,
    )
    .unwrap();
    meta.insert(
        "study_date".into(),
        Value::Timestamp(Timestamp::parse("2024-01-31T12:00:00.5Z").unwrap()),
    );
    let k = key("meta/doc");
    let put = store
        .put_bytes(&k, pattern(1, 10), meta.clone())
        .await
        .unwrap();
    assert_eq!(put.metadata, meta);
    assert_eq!(store.head(&k).await.unwrap().metadata, meta);
    let mut replacement = Metadata::new();
    replacement.insert("modality".into(), "MR".into());
    let updated = store
        .update_metadata(&k, replacement.clone(), Condition::default())
        .await
        .unwrap();
    assert_eq!(updated.metadata, replacement);
    assert!(updated.version > put.version);
    assert_eq!(store.get_bytes(&k).await.unwrap().1, pattern(1, 10));
    let mut bad = Metadata::new();
    bad.insert("big".into(), Value::Binary(vec![0; 70_000]));
    let err = store.put_bytes(&k, pattern(1, 10), bad).await.unwrap_err();
    assert_eq!(err.code(), "invalid_metadata");
}

pub async fn ranges(store: &dyn ObjectOps) {
    let data = pattern(5, 5 * MIB);
    let k = key("range/obj");
    store
        .put(&k, chunked(data.clone(), MIB), PutOptions::default())
        .await
        .unwrap();
    let n = data.len() as u64;
    for (range, expected) in [
        (ByteRange::Inclusive { first: 0, last: 9 }, 0..10usize),
        (
            ByteRange::Inclusive {
                first: 4 << 20,
                last: (4 << 20) + 99,
            },
            (4 << 20)..(4 << 20) + 100,
        ),
        (ByteRange::From(n - 3), data.len() - 3..data.len()),
        (ByteRange::Suffix(5), data.len() - 5..data.len()),
    ] {
        let result = store
            .get(&k, GetOptions::default().with_range(range))
            .await
            .unwrap();
        assert_eq!(result.range, expected.start as u64..expected.end as u64);
        assert_eq!(result.bytes().await.unwrap(), data.slice(expected));
    }
    let err = store
        .get(&k, GetOptions::default().with_range(ByteRange::From(n)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_range");
}

pub async fn overwrite_delete_and_missing(store: &dyn ObjectOps) {
    let k = key("ow/obj");
    let first = store
        .put_bytes(&k, pattern(1, 1000), Metadata::new())
        .await
        .unwrap();
    let second = store
        .put_bytes(&k, pattern(2, 2000), Metadata::new())
        .await
        .unwrap();
    assert!(second.version > first.version);
    assert_eq!(second.created, first.created);
    assert_eq!(store.get_bytes(&k).await.unwrap().1, pattern(2, 2000));
    store.delete(&k, Condition::default()).await.unwrap();
    for err in [
        store.head(&k).await.unwrap_err(),
        store.get(&k, GetOptions::default()).await.unwrap_err(),
        store.delete(&k, Condition::default()).await.unwrap_err(),
        store
            .update_metadata(&k, Metadata::new(), Condition::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::NotFound { key } if key == "ow/obj"),
            "{err:?}"
        );
    }
}

pub async fn conditional_writes(store: &dyn ObjectOps) {
    let k = key("cas/obj");
    let body = || chunked(pattern(1, 100), 100);
    let v1 = store
        .put(&k, body(), PutOptions::default().with_if_version(0))
        .await
        .unwrap();
    let err = store
        .put(&k, body(), PutOptions::default().with_if_version(0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::PreconditionFailed { required: 0, current, .. } if current == v1.version
    ));
    let err = store
        .delete(&k, Condition::if_version(v1.version + 1000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "precondition_failed");
    store
        .delete(&k, Condition::if_version(v1.version))
        .await
        .unwrap();
}

pub async fn refused_uploads_store_nothing(store: &dyn ObjectOps) {
    let k = key("refused/obj");
    let data = pattern(7, 3 * MIB);
    let err = store
        .put(
            &k,
            chunked(data.clone(), MIB),
            PutOptions::default().with_sha256(sha256(b"other")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    let err = store
        .put(
            &k,
            chunked(data.clone(), MIB),
            PutOptions::default().with_size(data.len() as u64 + 10),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "truncated", "{err}");
    let failing = chunked(data.slice(..MIB), MIB / 2)
        .chain(stream::once(async {
            Err(Error::Truncated {
                reason: "source went away".into(),
            })
        }))
        .boxed();
    let err = store
        .put(&k, failing, PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "truncated", "{err}");
    let err = store.head(&k).await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    // A correct announced digest is accepted.
    store
        .put(
            &k,
            chunked(data.clone(), MIB),
            PutOptions::default().with_sha256(sha256(&data)),
        )
        .await
        .unwrap();
}

pub async fn storage_full(store: &dyn ObjectOps) {
    let k = key("full/obj");
    let err = store
        .put(
            &k,
            chunked(pattern(9, 64 * MIB), MIB),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage_full", "{err}");
    assert_eq!(store.head(&k).await.unwrap_err().code(), "not_found");
}

pub async fn listing(store: &dyn ObjectOps) {
    for i in 0..12 {
        store
            .put_bytes(
                &key(&format!("list/{i:02}")),
                pattern(i, 3),
                Metadata::new(),
            )
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(
                ListOptions::default()
                    .with_prefix("list/")
                    .with_limit(5)
                    .with_cursor(cursor),
            )
            .await
            .unwrap();
        assert!(page.objects.len() <= 5);
        names.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..12).map(|i| format!("list/{i:02}")).collect();
    assert_eq!(names, expected);
    let err = store
        .list(ListOptions::default().with_limit(100_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
}

pub async fn corruption_is_reported(store: &dyn ObjectOps, dir: &std::path::Path) {
    let k = key("corrupt/obj");
    let data = pattern(11, 2 * MIB);
    let info = store
        .put(&k, chunked(data.clone(), MIB), PutOptions::default())
        .await
        .unwrap();
    // Find the blob in the extents by content and flip one byte of it.
    let mut flipped = false;
    for entry in std::fs::read_dir(dir.join("extents")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(64).position(|w| w == &data[..64]) {
            bytes[at + 1_000_000] ^= 0x55;
            std::fs::write(&path, &bytes).unwrap();
            flipped = true;
            break;
        }
    }
    assert!(flipped);
    let err = read(store, &k, GetOptions::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { key, .. } if key == "corrupt/obj"),
        "{err:?}"
    );
    assert_eq!(store.head(&k).await.unwrap().sha256, info.sha256);
}

/// Keys never become file paths: nothing named after a key appears anywhere near the store.
pub fn no_file_named_after_keys(dir: &std::path::Path) {
    for place in [
        dir,
        dir.parent().unwrap_or(dir),
        std::path::Path::new("/tmp"),
    ] {
        assert!(!place.join("escaped-key").exists(), "{}", place.display());
    }
}

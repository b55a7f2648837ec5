//! Checks that the store (or a transaction) agrees with the model.

use std::collections::{BTreeMap, BTreeSet};

use asterope::{
    ByteRange, Database, GetOptions, Key, ListOptions, ObjectInfo, ObjectOps, Query, QueryPage,
    Sha256Digest, Store, StoreExt, Transaction,
};

use crate::model::{expected_answer, key, queries, sorted_queries, Model, Object};
use crate::{EXTENT, INDEXABLE, KEYS};

/// Opens `dir` with small extents and no background compaction (the sequence compacts).
fn try_open(dir: &std::path::Path, dedup: bool) -> asterope::Result<Database> {
    Database::builder(dir)
        .extent_size(EXTENT as u64)
        .background_compaction(None)
        .dedup(dedup)
        .open()
}

/// Opens `dir` (again).
pub(crate) async fn open(dir: &std::path::Path, dedup: bool) -> Database {
    try_open(dir, dedup).expect("open database")
}

pub(crate) fn check_info(info: &ObjectInfo, object: &Object) {
    assert_eq!(info.size, object.bytes.len() as u64, "{} size", info.key);
    assert_eq!(info.sha256, object.sha256, "{} sha256", info.key);
    assert_eq!(info.metadata, object.metadata, "{} metadata", info.key);
    if let Some(version) = object.version {
        assert_eq!(info.version, version, "{} version", info.key);
    }
    if let Some(created) = object.created {
        assert_eq!(info.created, created, "{} created", info.key);
    }
}

/// Every key, the listing, the statistics, the indexes and the queries agree with the model.
pub(crate) async fn check_store(db: &Database, model: &mut Model) {
    for name in KEYS {
        let k = Key::new(name).expect("valid key");
        match model.objects.get_mut(name) {
            None => {
                let err = db.head(&k).await.expect_err("deleted key has no head");
                assert_eq!(err.code(), "not_found", "{k}");
                let err = db.get(&k, GetOptions::default()).await.expect_err("no get");
                assert_eq!(err.code(), "not_found", "{k}");
            }
            Some(object) => {
                let head = db.head(&k).await.expect("head");
                check_info(&head, object);
                object.version = Some(head.version);
                object.created = Some(head.created);
                let (info, bytes) = db.get_bytes(&k).await.expect("get");
                assert_eq!(info, head, "{k}: get and head differ");
                assert!(bytes == object.bytes, "{k}: content differs");
                // A middle range (across the first block boundary for blobs over 1.5 MiB).
                let size = object.bytes.len();
                if size > 0 {
                    let (first, last) = (size / 3, size * 2 / 3);
                    let range = ByteRange::Inclusive {
                        first: first as u64,
                        last: last as u64,
                    };
                    let part = db
                        .get(&k, GetOptions::default().with_range(range))
                        .await
                        .expect("ranged get")
                        .bytes()
                        .await
                        .expect("ranged read");
                    assert!(
                        part == object.bytes.slice(first..=last),
                        "{k}: range differs"
                    );
                }
            }
        }
    }
    for (k, object) in &model.objects {
        if let Some(version) = object.version {
            assert!(version <= model.last_version, "{k} version beyond the last");
        }
    }

    // The model knows every commit: a snapshot reads at the last one.
    let snapshot = db.begin().await.expect("begin").snapshot_version();
    assert_eq!(snapshot, model.last_version, "snapshot version");

    let listed = list_paged(db, "", 2).await;
    let expected: Vec<String> = model.objects.keys().cloned().collect();
    assert_eq!(listed, expected, "listing");
    let listed = list_paged(db, "a/", 1).await;
    let expected: Vec<String> = model
        .objects
        .keys()
        .filter(|k| k.starts_with("a/"))
        .cloned()
        .collect();
    assert_eq!(listed, expected, "listing under a/");

    let stats = db.stats().await.expect("stats");
    assert_eq!(stats.objects, model.objects.len() as u64, "{stats:?}");
    let logical: u64 = model.objects.values().map(|o| o.bytes.len() as u64).sum();
    assert_eq!(stats.logical_bytes, logical, "{stats:?}");
    // Identical content is stored once (in allocation units, so `physical_bytes` may be
    // more), and no old version is kept: no reader holds one.
    let distinct: BTreeMap<(Sha256Digest, u64), ()> = model
        .objects
        .values()
        .map(|o| ((o.sha256, o.bytes.len() as u64), ()))
        .collect();
    let distinct: u64 = distinct.keys().map(|(_, size)| size).sum();
    if model.dedup_always {
        assert_eq!(stats.dedup_saved_bytes, logical - distinct, "{stats:?}");
    } else {
        assert!(stats.dedup_saved_bytes <= logical - distinct, "{stats:?}");
    }
    assert!(stats.physical_bytes >= distinct, "{stats:?}");
    assert_eq!(stats.garbage_bytes, 0, "{stats:?}");

    let indexes = db.list_indexes().await.expect("list indexes");
    let declared: BTreeSet<String> = indexes.iter().map(|i| i.field.clone()).collect();
    assert_eq!(declared, model.indexes, "declared indexes");
    // A finished index serves equality on its field; an undeclared field is scanned.
    for field in INDEXABLE {
        let plan = db
            .explain(&Query::new(crate::model::field_eq(field)))
            .await
            .expect("explain");
        match indexes.iter().find(|i| i.field == field) {
            Some(index) if index.state == "ready" => {
                assert_eq!(plan.index.as_deref(), Some(field), "{plan:?}");
            }
            Some(index) => assert_eq!(index.state, "building", "{index:?}"),
            None => assert_eq!(plan.access, "scan", "{plan:?}"),
        }
    }

    check_queries(Reader::Store(db), model).await;
}

/// Where queries are asked: the store now, or a transaction at its snapshot.
#[derive(Clone, Copy)]
pub(crate) enum Reader<'a> {
    Store(&'a Database),
    Transaction(&'a dyn Transaction),
}

impl Reader<'_> {
    async fn count(self, query: &Query) -> asterope::Result<u64> {
        match self {
            Reader::Store(db) => db.count(query).await,
            Reader::Transaction(tx) => tx.count(query).await,
        }
    }

    async fn query(self, query: &Query) -> asterope::Result<QueryPage> {
        match self {
            Reader::Store(db) => db.query(query).await,
            Reader::Transaction(tx) => tx.query(query).await,
        }
    }
}

/// Every checked query's count and pages (two objects each, through cursors) agree with the
/// model.
pub(crate) async fn check_queries(reader: Reader<'_>, model: &Model) {
    for (query, predicate) in queries().into_iter().chain(sorted_queries()) {
        let expected = expected_answer(&model.objects, &query, predicate);
        let count = reader.count(&query).await.expect("count");
        assert_eq!(count, expected.len() as u64, "count of {query:?}");
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut paged = query.clone().with_limit(2);
            if let Some(c) = cursor.take() {
                paged = paged.with_cursor(c);
            }
            let page = reader.query(&paged).await.expect("query");
            assert!(page.objects.len() <= 2, "page over its limit");
            for info in &page.objects {
                check_info(info, &model.objects[info.key.as_str()]);
                found.push(info.key.to_string());
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(found.len() <= KEYS.len(), "query pages never end");
        }
        assert_eq!(found, expected, "answer of {query:?}");
    }
}

pub(crate) async fn list_paged(db: &Database, prefix: &str, limit: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let options = ListOptions::default()
            .with_prefix(prefix)
            .with_limit(limit)
            .with_cursor(cursor);
        let page = db.list(options).await.expect("list");
        assert!(page.objects.len() <= limit, "page over its limit");
        keys.extend(page.objects.into_iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
        assert!(keys.len() <= KEYS.len(), "list pages never end");
    }
}

/// What a transaction shows of `k` agrees with its staged state.
pub(crate) async fn check_in_transaction(tx: &dyn Transaction, index: usize, staged: &Model) {
    let k = key(index);
    match staged.objects.get(KEYS[index]) {
        None => {
            let err = tx.head(&k).await.expect_err("staged delete has no head");
            assert_eq!(err.code(), "not_found", "{k} in transaction");
        }
        Some(object) => {
            let head = tx.head(&k).await.expect("head in transaction");
            check_info(&head, object);
            let bytes = tx
                .get(&k, GetOptions::default())
                .await
                .expect("get in transaction")
                .bytes()
                .await
                .expect("read in transaction");
            assert!(bytes == object.bytes, "{k}: staged content differs");
        }
    }
}

//! Operation-sequence property test: random sequences of puts, overwrites, deletes, metadata
//! updates, conditional writes, transactions (committed, rolled back, or racing another
//! writer), index creation and removal, compaction, reopening and deduplicated uploads, applied
//! both to an embedded [`Database`] and to a `BTreeMap` model. After every step every key's
//! bytes (whole and a middle range), size, SHA-256, version, creation time and metadata, the
//! listing (paged through cursors), the snapshot version, the object and deduplication
//! statistics, the declared indexes and the answers of a set of queries over indexed and
//! non-indexed fields (count and pages through cursors) agree with the model.
//!
//! The number of cases is `ASTEROPE_MODEL_CASES`, else `PROPTEST_CASES`, else 64.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use asterope::{
    and, field, not, or, ByteRange, Condition, Database, Filter, GetOptions, Key, ListOptions,
    Metadata, ObjectInfo, PutOptions, Query, Sha256Digest, Store, StoreExt, Timestamp, Transaction,
    Value,
};
use bytes::Bytes;
use common::{chunked, pattern, sha256, MIB};
use proptest::prelude::*;

/// Extent size of the database under test: a few checksum blocks (1 MiB each).
const EXTENT: usize = 2 * MIB;
/// The keys operations draw from: few enough that they collide often.
const KEYS: [&str; 6] = ["a/0", "a/1", "a/2", "b/0", "b/1", "c"];
const TAGS: [&str; 3] = ["x", "y", "z"];
/// Fields an index may be declared on (`w` never is).
const INDEXABLE: [&str; 2] = ["n", "tag"];

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// Blob content: `size` bytes of `pattern(seed)`. Few seeds, so identical content recurs.
#[derive(Clone, Copy, Debug)]
struct Content {
    seed: u64,
    size: usize,
}

impl Content {
    fn bytes(self) -> Bytes {
        pattern(self.seed, self.size)
    }
}

/// A small metadata document: `n` (int), `tag` (string) and `w` (bool), each maybe absent.
#[derive(Clone, Debug)]
struct Meta {
    n: Option<i64>,
    tag: Option<usize>,
    w: Option<bool>,
}

impl Meta {
    fn document(&self) -> Metadata {
        let mut m = Metadata::new();
        if let Some(n) = self.n {
            m.insert("n".into(), Value::Int(n));
        }
        if let Some(tag) = self.tag {
            m.insert("tag".into(), TAGS[tag].into());
        }
        if let Some(w) = self.w {
            m.insert("w".into(), Value::Bool(w));
        }
        m
    }
}

/// One write staged in a transaction.
#[derive(Clone, Debug)]
enum Staged {
    Put {
        key: usize,
        content: Content,
        meta: Meta,
    },
    Delete {
        key: usize,
    },
    UpdateMetadata {
        key: usize,
        meta: Meta,
    },
}

#[derive(Clone, Debug)]
enum Op {
    /// A put (a create or an overwrite), written in pieces of `chunk` bytes.
    Put {
        key: usize,
        content: Content,
        meta: Meta,
        chunk: usize,
    },
    Delete {
        key: usize,
    },
    UpdateMetadata {
        key: usize,
        meta: Meta,
    },
    /// A put with `if_version`: the current version if `matching`, another one if not.
    ConditionalPut {
        key: usize,
        content: Content,
        meta: Meta,
        matching: bool,
    },
    ConditionalDelete {
        key: usize,
        matching: bool,
    },
    ConditionalUpdate {
        key: usize,
        meta: Meta,
        matching: bool,
    },
    Transaction {
        writes: Vec<Staged>,
        commit: bool,
    },
    /// A transaction stages a put, then another writer puts `outside_key` before it commits:
    /// the commit conflicts if both wrote the same key, and succeeds otherwise.
    RacingTransaction {
        tx_key: usize,
        outside_key: usize,
        content: Content,
        meta: Meta,
    },
    CreateIndex {
        field: usize,
    },
    DropIndex {
        field: usize,
    },
    Compact,
    Reopen,
    /// The same content under two keys, then one of them deleted.
    Dedup {
        first: usize,
        second: usize,
        content: Content,
        delete_first: bool,
    },
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => Just(0usize),
        6 => 1usize..300,
        6 => 300usize..70_000,
        1 => Just(MIB - 1),
        1 => Just(MIB),
        1 => Just(MIB + 1),
        1 => Just(EXTENT - 1),
        1 => Just(EXTENT + 7),
    ]
}

fn content_strategy() -> impl Strategy<Value = Content> {
    (0u64..4, size_strategy()).prop_map(|(seed, size)| Content { seed, size })
}

fn meta_strategy() -> impl Strategy<Value = Meta> {
    (
        proptest::option::weighted(0.8, 0i64..4),
        proptest::option::weighted(0.7, 0usize..TAGS.len()),
        proptest::option::weighted(0.5, any::<bool>()),
    )
        .prop_map(|(n, tag, w)| Meta { n, tag, w })
}

fn key_strategy() -> impl Strategy<Value = usize> {
    0usize..KEYS.len()
}

fn staged_strategy() -> impl Strategy<Value = Staged> {
    prop_oneof![
        3 => (key_strategy(), content_strategy(), meta_strategy())
            .prop_map(|(key, content, meta)| Staged::Put { key, content, meta }),
        1 => key_strategy().prop_map(|key| Staged::Delete { key }),
        1 => (key_strategy(), meta_strategy())
            .prop_map(|(key, meta)| Staged::UpdateMetadata { key, meta }),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key_strategy(), content_strategy(), meta_strategy(),
              prop_oneof![Just(4096usize), Just(MIB / 3), Just(MIB)])
            .prop_map(|(key, content, meta, chunk)| Op::Put { key, content, meta, chunk }),
        3 => key_strategy().prop_map(|key| Op::Delete { key }),
        3 => (key_strategy(), meta_strategy())
            .prop_map(|(key, meta)| Op::UpdateMetadata { key, meta }),
        2 => (key_strategy(), content_strategy(), meta_strategy(), any::<bool>())
            .prop_map(|(key, content, meta, matching)| Op::ConditionalPut {
                key, content, meta, matching,
            }),
        1 => (key_strategy(), any::<bool>())
            .prop_map(|(key, matching)| Op::ConditionalDelete { key, matching }),
        1 => (key_strategy(), meta_strategy(), any::<bool>())
            .prop_map(|(key, meta, matching)| Op::ConditionalUpdate { key, meta, matching }),
        3 => (proptest::collection::vec(staged_strategy(), 1..5), any::<bool>())
            .prop_map(|(writes, commit)| Op::Transaction { writes, commit }),
        1 => (key_strategy(), key_strategy(), content_strategy(), meta_strategy())
            .prop_map(|(tx_key, outside_key, content, meta)| Op::RacingTransaction {
                tx_key, outside_key, content, meta,
            }),
        2 => (0usize..INDEXABLE.len()).prop_map(|field| Op::CreateIndex { field }),
        1 => (0usize..INDEXABLE.len()).prop_map(|field| Op::DropIndex { field }),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => (key_strategy(), key_strategy(), content_strategy(), any::<bool>())
            .prop_filter("two different keys", |(a, b, _, _)| a != b)
            .prop_map(|(first, second, content, delete_first)| Op::Dedup {
                first, second, content, delete_first,
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// What the model knows of one stored object.
#[derive(Clone, Debug)]
struct Object {
    bytes: Bytes,
    sha256: Sha256Digest,
    metadata: Metadata,
    /// The commit version; unknown (`None`) only for writes staged in an open transaction.
    version: Option<u64>,
    /// Learnt from the store at the first write (or first check after a transaction created
    /// the key), then kept across overwrites and metadata updates.
    created: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    objects: BTreeMap<String, Object>,
    indexes: BTreeSet<String>,
    /// The highest commit version seen: every later write must have a higher one.
    last_version: u64,
}

impl Model {
    fn put(&mut self, key: &str, content: Content, meta: &Meta, version: Option<u64>) {
        let bytes = content.bytes();
        let created = self.objects.get(key).and_then(|o| o.created);
        self.objects.insert(
            key.to_string(),
            Object {
                sha256: sha256(&bytes),
                bytes,
                metadata: meta.document(),
                version,
                created,
            },
        );
    }

    fn current_version(&self, key: &str) -> u64 {
        self.objects
            .get(key)
            .map_or(0, |o| o.version.expect("committed objects have versions"))
    }

    /// Records the version of a successful write and checks that versions increase.
    fn committed(&mut self, version: u64) {
        assert!(
            version > self.last_version,
            "version {version} after {}",
            self.last_version
        );
        self.last_version = version;
    }

    /// Checks what a successful write returned against the model state after it.
    fn check_written(&mut self, info: &ObjectInfo) {
        self.committed(info.version);
        let object = self
            .objects
            .get_mut(info.key.as_str())
            .expect("written key is in the model");
        assert_eq!(info.size, object.bytes.len() as u64, "{}", info.key);
        assert_eq!(info.sha256, object.sha256, "{}", info.key);
        assert_eq!(info.metadata, object.metadata, "{}", info.key);
        object.version = Some(info.version);
        match object.created {
            Some(created) => assert_eq!(info.created, created, "{} created", info.key),
            None => object.created = Some(info.created),
        }
    }
}

fn key(index: usize) -> Key {
    Key::new(KEYS[index]).expect("valid key")
}

/// A version no key has: the model's last one plus a margin.
fn other_version(model: &Model, key: &str) -> u64 {
    match model.objects.get(key) {
        Some(_) if model.last_version % 2 == 0 => 0,
        _ => model.last_version + 1_000,
    }
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

fn int_field(m: &Metadata, name: &str) -> Option<i64> {
    match m.get(name) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

fn tag_is(m: &Metadata, tag: &str) -> bool {
    matches!(m.get("tag"), Some(Value::String(s)) if s == tag)
}

fn w_is(m: &Metadata, w: bool) -> bool {
    m.get("w") == Some(&Value::Bool(w))
}

/// The queries checked after every step, each with the model's own evaluation.
type ModelPredicate = fn(&str, &Metadata) -> bool;

fn queries() -> Vec<(Query, ModelPredicate)> {
    vec![
        (Query::new(field("n").eq(2)), |_, m| {
            int_field(m, "n") == Some(2)
        }),
        (Query::new(field("n").gte(2)), |_, m| {
            int_field(m, "n").is_some_and(|n| n >= 2)
        }),
        (Query::new(field("n").lt(2)), |_, m| {
            int_field(m, "n").is_some_and(|n| n < 2)
        }),
        (Query::new(field("tag").eq("x")), |_, m| tag_is(m, "x")),
        (Query::new(field("tag").is_in(["y", "z"])), |_, m| {
            tag_is(m, "y") || tag_is(m, "z")
        }),
        (Query::new(field("tag").exists(false)), |_, m| {
            !m.contains_key("tag")
        }),
        (Query::new(not(field("tag").eq("x"))), |_, m| {
            !tag_is(m, "x")
        }),
        (
            Query::new(and([field("n").gte(1), field("tag").eq("y")])),
            |_, m| int_field(m, "n").is_some_and(|n| n >= 1) && tag_is(m, "y"),
        ),
        (Query::new(field("w").eq(true)), |_, m| w_is(m, true)),
        (
            Query::new(or([field("n").eq(0), field("w").eq(false)])),
            |_, m| int_field(m, "n") == Some(0) || w_is(m, false),
        ),
        (
            Query::new(field("n").exists(true)).with_key_prefix("a/"),
            |k, m| k.starts_with("a/") && m.contains_key("n"),
        ),
        (Query::new(Filter::True), |_, _| true),
    ]
}

fn expected_keys(objects: &BTreeMap<String, Object>, predicate: ModelPredicate) -> Vec<String> {
    objects
        .iter()
        .filter(|(k, o)| predicate(k, &o.metadata))
        .map(|(k, _)| k.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn open(dir: &std::path::Path) -> Database {
    Database::builder(dir)
        .extent_size(EXTENT as u64)
        .background_compaction(None)
        .open()
        .expect("open database")
}

/// Opens `dir` again, retrying while the background index builder of the dropped handle may
/// still hold the directory lock for a moment (as `tests/query_indexes.rs` does).
async fn reopen(dir: &std::path::Path) -> Database {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Database::builder(dir)
            .extent_size(EXTENT as u64)
            .background_compaction(None)
            .open()
        {
            Err(err) if err.code() == "locked" && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            other => return other.expect("reopen database"),
        }
    }
}

fn check_info(info: &ObjectInfo, object: &Object) {
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
async fn check_store(db: &Database, model: &mut Model) {
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
    assert_eq!(stats.dedup_saved_bytes, logical - distinct, "{stats:?}");
    assert!(stats.physical_bytes >= distinct, "{stats:?}");
    assert_eq!(stats.garbage_bytes, 0, "{stats:?}");

    let indexes: BTreeSet<String> = db
        .list_indexes()
        .await
        .expect("list indexes")
        .into_iter()
        .map(|i| i.field)
        .collect();
    assert_eq!(indexes, model.indexes, "declared indexes");

    for (query, predicate) in queries() {
        let expected = expected_keys(&model.objects, predicate);
        let count = db.count(&query).await.expect("count");
        assert_eq!(count, expected.len() as u64, "count of {query:?}");
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut paged = query.clone().with_limit(2);
            if let Some(c) = cursor.take() {
                paged = paged.with_cursor(c);
            }
            let page = db.query(&paged).await.expect("query");
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

async fn list_paged(db: &Database, prefix: &str, limit: usize) -> Vec<String> {
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
async fn check_in_transaction(tx: &dyn Transaction, index: usize, staged: &Model) {
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

// ---------------------------------------------------------------------------------------------
// Applying operations
// ---------------------------------------------------------------------------------------------

fn expect_code<T: std::fmt::Debug>(result: asterope::Result<T>, codes: &[&str], what: &str) {
    match result {
        Ok(value) => panic!("{what} succeeded: {value:?}"),
        Err(err) => assert!(codes.contains(&err.code()), "{what}: {err:?}"),
    }
}

async fn put(
    db: &Database,
    model: &mut Model,
    index: usize,
    content: Content,
    meta: &Meta,
    chunk: usize,
    condition: Option<u64>,
) -> asterope::Result<ObjectInfo> {
    let mut options = PutOptions::default().with_metadata(meta.document());
    if let Some(version) = condition {
        options = options.with_if_version(version);
    }
    let result = db
        .put(&key(index), chunked(content.bytes(), chunk), options)
        .await;
    if let Ok(info) = &result {
        model.put(KEYS[index], content, meta, None);
        model.check_written(info);
    }
    result
}

async fn delete(db: &Database, model: &mut Model, index: usize, condition: Condition) {
    let result = db.delete(&key(index), condition).await;
    let name = KEYS[index];
    if model.objects.contains_key(name) {
        result.expect("delete of a stored key");
        model.objects.remove(name);
        // A delete answers no version: a snapshot taken now reads at it.
        let snapshot = db.begin().await.expect("begin").snapshot_version();
        model.committed(snapshot);
    } else {
        expect_code(result, &["not_found"], "delete of a missing key");
    }
}

async fn update(db: &Database, model: &mut Model, index: usize, meta: &Meta, condition: Condition) {
    let result = db
        .update_metadata(&key(index), meta.document(), condition)
        .await;
    let name = KEYS[index];
    match model.objects.get_mut(name) {
        Some(object) => {
            let info = result.expect("metadata update of a stored key");
            object.metadata = meta.document();
            model.check_written(&info);
        }
        None => expect_code(result, &["not_found"], "metadata update of a missing key"),
    }
}

async fn transaction(db: &Database, model: &mut Model, writes: &[Staged], commit: bool) {
    let tx = db.begin().await.expect("begin");
    let mut staged = model.clone();
    for write in writes {
        let index = match write {
            Staged::Put {
                key: index,
                content,
                meta,
            } => {
                let options = PutOptions::default().with_metadata(meta.document());
                tx.put(&key(*index), chunked(content.bytes(), MIB / 2), options)
                    .await
                    .expect("staged put");
                staged.put(KEYS[*index], *content, meta, None);
                *index
            }
            Staged::Delete { key: index } => {
                let result = tx.delete(&key(*index), Condition::default()).await;
                if staged.objects.remove(KEYS[*index]).is_some() {
                    result.expect("staged delete");
                } else {
                    expect_code(result, &["not_found"], "staged delete of a missing key");
                }
                *index
            }
            Staged::UpdateMetadata { key: index, meta } => {
                let result = tx
                    .update_metadata(&key(*index), meta.document(), Condition::default())
                    .await;
                match staged.objects.get_mut(KEYS[*index]) {
                    Some(object) => {
                        result.expect("staged metadata update");
                        object.metadata = meta.document();
                        object.version = None;
                    }
                    None => expect_code(result, &["not_found"], "staged update of a missing key"),
                }
                *index
            }
        };
        check_in_transaction(tx.as_ref(), index, &staged).await;
        // Others do not see staged writes.
        match model.objects.get(KEYS[index]) {
            Some(object) => check_info(&db.head(&key(index)).await.expect("head"), object),
            None => expect_code(db.head(&key(index)).await, &["not_found"], "head"),
        }
    }
    let listed: Vec<String> = tx
        .list(ListOptions::default())
        .await
        .expect("list in transaction")
        .objects
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    let expected: Vec<String> = staged.objects.keys().cloned().collect();
    assert_eq!(listed, expected, "listing in transaction");
    for (query, predicate) in queries().into_iter().take(4) {
        let count = tx.count(&query).await.expect("count in transaction");
        let expected = expected_keys(&staged.objects, predicate);
        assert_eq!(
            count,
            expected.len() as u64,
            "count of {query:?} in transaction"
        );
    }
    if commit {
        let version = tx
            .commit()
            .await
            .expect("commit without concurrent writers");
        let changed = staged.objects.len() != model.objects.len()
            || staged
                .objects
                .iter()
                .any(|(name, o)| o.version.is_none() || !model.objects.contains_key(name));
        if !changed {
            // Nothing left to write (every staged write failed or was undone): the commit
            // writes nothing and answers its snapshot's version.
            assert_eq!(version, model.last_version, "version of an empty commit");
            return;
        }
        model.committed(version);
        for (name, object) in &mut staged.objects {
            if object.version.is_none() {
                object.version = Some(version);
                if !model.objects.contains_key(name) {
                    object.created = None;
                }
            }
        }
        staged.last_version = version;
        *model = staged;
    } else {
        tx.rollback().await.expect("rollback");
    }
}

async fn racing_transaction(
    db: &Database,
    model: &mut Model,
    tx_key: usize,
    outside_key: usize,
    content: Content,
    meta: &Meta,
) {
    let tx = db.begin().await.expect("begin");
    let options = PutOptions::default().with_metadata(meta.document());
    tx.put(&key(tx_key), chunked(content.bytes(), MIB / 2), options)
        .await
        .expect("staged put");
    let mut staged = model.clone();
    staged.put(KEYS[tx_key], content, meta, None);
    // The other writer stores different content, so that whichever wins is visible.
    let outside = Content {
        seed: content.seed + 100,
        size: content.size / 2 + 1,
    };
    put(db, model, outside_key, outside, meta, MIB, None)
        .await
        .expect("put outside the transaction");
    // The transaction still reads its snapshot and its own write.
    check_in_transaction(tx.as_ref(), outside_key, &staged).await;
    check_in_transaction(tx.as_ref(), tx_key, &staged).await;
    let result = tx.commit().await;
    if tx_key == outside_key {
        expect_code(result, &["conflict"], "commit over a newer write");
        return;
    }
    let version = result.expect("commit of a key nobody else wrote");
    model.committed(version);
    model.put(KEYS[tx_key], content, meta, Some(version));
}

async fn apply(db: &Database, model: &mut Model, op: &Op) {
    match op {
        Op::Put {
            key: index,
            content,
            meta,
            chunk,
        } => {
            put(db, model, *index, *content, meta, *chunk, None)
                .await
                .expect("put");
        }
        Op::Delete { key: index } => delete(db, model, *index, Condition::default()).await,
        Op::UpdateMetadata { key: index, meta } => {
            update(db, model, *index, meta, Condition::default()).await;
        }
        Op::ConditionalPut {
            key: index,
            content,
            meta,
            matching,
        } => {
            let name = KEYS[*index];
            if *matching {
                let version = model.current_version(name);
                put(db, model, *index, *content, meta, MIB, Some(version))
                    .await
                    .expect("put with a matching version");
            } else {
                let version = other_version(model, name);
                let result = put(db, model, *index, *content, meta, MIB, Some(version)).await;
                expect_code(result, &["precondition_failed"], "put with another version");
            }
        }
        Op::ConditionalDelete {
            key: index,
            matching,
        } => {
            let name = KEYS[*index];
            if *matching || !model.objects.contains_key(name) {
                let condition = Condition::if_version(model.current_version(name));
                delete(db, model, *index, condition).await;
            } else {
                let condition = Condition::if_version(other_version(model, name));
                let result = db.delete(&key(*index), condition).await;
                expect_code(
                    result,
                    &["precondition_failed"],
                    "delete with another version",
                );
            }
        }
        Op::ConditionalUpdate {
            key: index,
            meta,
            matching,
        } => {
            let name = KEYS[*index];
            if *matching || !model.objects.contains_key(name) {
                let condition = Condition::if_version(model.current_version(name));
                update(db, model, *index, meta, condition).await;
            } else {
                let condition = Condition::if_version(other_version(model, name));
                let result = db
                    .update_metadata(&key(*index), meta.document(), condition)
                    .await;
                expect_code(
                    result,
                    &["precondition_failed"],
                    "update with another version",
                );
            }
        }
        Op::Transaction { writes, commit } => transaction(db, model, writes, *commit).await,
        Op::RacingTransaction {
            tx_key,
            outside_key,
            content,
            meta,
        } => racing_transaction(db, model, *tx_key, *outside_key, *content, meta).await,
        Op::CreateIndex { field } => {
            let name = INDEXABLE[*field];
            let info = db.create_index(name).await.expect("create index");
            assert_eq!(info.field, name);
            model.indexes.insert(name.to_string());
        }
        Op::DropIndex { field } => {
            let name = INDEXABLE[*field];
            let result = db.drop_index(name).await;
            if model.indexes.remove(name) {
                result.expect("drop index");
            } else {
                expect_code(result, &["not_found"], "drop of a missing index");
            }
        }
        Op::Compact => {
            db.compact().await.expect("compact");
        }
        // Run by `run_case`, which owns the handle.
        Op::Reopen => {}
        Op::Dedup {
            first,
            second,
            content,
            delete_first,
        } => {
            let meta = Meta {
                n: None,
                tag: None,
                w: None,
            };
            put(db, model, *first, *content, &meta, MIB, None)
                .await
                .expect("first copy");
            put(db, model, *second, *content, &meta, 4096, None)
                .await
                .expect("second copy");
            let stats = db.stats().await.expect("stats");
            assert!(
                stats.dedup_saved_bytes >= content.size as u64,
                "identical copies not shared: {stats:?}"
            );
            let gone = if *delete_first { *first } else { *second };
            delete(db, model, gone, Condition::default()).await;
        }
    }
}

async fn run_case(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut db = open(dir.path());
    let mut model = Model::default();
    for op in &ops {
        if let Op::Reopen = op {
            // Closing and opening again changes nothing the model knows.
            drop(db);
            db = reopen(dir.path()).await;
        } else {
            apply(&db, &mut model, op).await;
        }
        check_store(&db, &mut model).await;
    }
}

fn cases() -> u32 {
    ["ASTEROPE_MODEL_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_agrees_with_a_map_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_case(ops));
    }
}

//! Applies each operation to the store and to the model, checking what the store answers.

use asterope::{
    Condition, Database, GetOptions, ListOptions, ObjectInfo, ObjectOps, PutOptions, Store,
};
use futures::StreamExt;

use crate::check::{check_in_transaction, check_info, check_queries, Reader};
use crate::common::{chunked, MIB};
use crate::model::{expected_keys, key, other_version, queries, Model};
use crate::ops::{Content, Meta, Op, Staged};
use crate::{INDEXABLE, KEYS};

pub(crate) fn expect_code<T: std::fmt::Debug>(
    result: asterope::Result<T>,
    codes: &[&str],
    what: &str,
) {
    match result {
        Ok(value) => panic!("{what} succeeded: {value:?}"),
        Err(err) => assert!(codes.contains(&err.code()), "{what}: {err:?}"),
    }
}

pub(crate) async fn put(
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

pub(crate) async fn delete(db: &Database, model: &mut Model, index: usize, condition: Condition) {
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

pub(crate) async fn update(
    db: &Database,
    model: &mut Model,
    index: usize,
    meta: &Meta,
    condition: Condition,
) {
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

pub(crate) async fn transaction(db: &Database, model: &mut Model, writes: &[Staged], commit: bool) {
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

pub(crate) async fn racing_transaction(
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

/// Waits (at most 10 s) until the index on `field` is built.
async fn wait_until_ready(db: &Database, field: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let indexes = db.list_indexes().await.expect("list indexes");
        let state = indexes.iter().find(|i| i.field == field).map(|i| &i.state);
        match state.map(String::as_str) {
            Some("ready") => return,
            Some("building") if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            other => panic!("index {field} is {other:?}"),
        }
    }
}

async fn held_snapshot(db: &Database, model: &mut Model, reader_key: usize, writes: &[Op]) {
    let before = model.clone();
    let tx = db.begin().await.expect("begin");
    let reader = match db.get(&key(reader_key), GetOptions::default()).await {
        Ok(mut result) => {
            let first = result.body.next().await.transpose().expect("first piece");
            Some((result.body, first.unwrap_or_default()))
        }
        Err(err) => {
            assert_eq!(err.code(), "not_found", "reader of {}", KEYS[reader_key]);
            None
        }
    };
    for write in writes {
        Box::pin(apply(db, model, write)).await;
    }
    for index in 0..KEYS.len() {
        check_in_transaction(tx.as_ref(), index, &before).await;
    }
    check_queries(Reader::Transaction(tx.as_ref()), &before).await;
    if let Some((mut body, first)) = reader {
        let mut read = first.to_vec();
        while let Some(piece) = body.next().await {
            read.extend_from_slice(&piece.expect("piece of an old version"));
        }
        let old = &before.objects[KEYS[reader_key]].bytes;
        assert!(
            read == *old,
            "{}: old version changed under its reader",
            KEYS[reader_key]
        );
    }
    tx.rollback().await.expect("rollback");
}

pub(crate) async fn apply(db: &Database, model: &mut Model, op: &Op) {
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
        Op::CreateIndex { field, wait } => {
            let name = INDEXABLE[*field];
            let info = db.create_index(name).await.expect("create index");
            assert_eq!(info.field, name);
            model.indexes.insert(name.to_string());
            if *wait {
                wait_until_ready(db, name).await;
            }
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
        Op::Reopen { .. } => {}
        Op::HeldSnapshot { reader_key, writes } => {
            held_snapshot(db, model, *reader_key, writes).await;
        }
        Op::Dedup {
            first,
            second,
            content,
            delete_first,
        } => {
            let meta = Meta::empty();
            put(db, model, *first, *content, &meta, MIB, None)
                .await
                .expect("first copy");
            put(db, model, *second, *content, &meta, 4096, None)
                .await
                .expect("second copy");
            let stats = db.stats().await.expect("stats");
            if model.dedup {
                assert!(
                    stats.dedup_saved_bytes >= content.size as u64,
                    "identical copies not shared: {stats:?}"
                );
            }
            let gone = if *delete_first { *first } else { *second };
            delete(db, model, gone, Condition::default()).await;
        }
    }
}

//! Fault steps: a write, or an open, meeting an injected I/O failure. A write whose I/O fails
//! answers `io_error` and changes nothing, except after a failed metadata flush, whose outcome
//! is unknown: the store then refuses everything until reopened, and the reopened store holds
//! the write whole or not at all (the model learns which from the commit version).

use std::path::Path;

use asterope::{Condition, Database, ObjectOps, PutOptions, Store};
use asterope_storage::fault::FaultPlan;

use crate::apply::{record_delete, record_put, record_update, wait_until_ready};
use crate::check::{open, try_open};
use crate::common::{chunked, MIB};
use crate::model::{key, Model};
use crate::ops::{Fault, Staged, KEYS};

/// Waits until no index is building, so that the armed fault meets the step's own I/O and no
/// background build's.
async fn settle(db: &Database, model: &Model) {
    for field in &model.indexes {
        wait_until_ready(db, field).await;
    }
}

/// Runs `write` with the next I/O operation of the `fault` kind failing; returns the store to
/// go on with (opened again after a failed flush).
pub(crate) async fn failing_write(
    db: Database,
    dir: &Path,
    plan: &FaultPlan,
    model: &mut Model,
    fault: Fault,
    write: &Staged,
) -> Database {
    settle(&db, model).await;
    let point = fault.point();
    let before = plan.injected(point);
    plan.fail_next(point, 1);
    let result = match write {
        Staged::Put {
            key: index,
            content,
            meta,
        } => {
            let options = PutOptions::default().with_metadata(meta.document());
            db.put(&key(*index), chunked(content.bytes(), MIB / 2), options)
                .await
                .map(Some)
        }
        Staged::Delete { key: index } => db
            .delete(&key(*index), Condition::default())
            .await
            .map(|()| None),
        Staged::UpdateMetadata { key: index, meta } => db
            .update_metadata(&key(*index), meta.document(), Condition::default())
            .await
            .map(Some),
    };
    plan.clear();
    if plan.injected(point) == before || result.is_ok() {
        // The write had nothing of that kind to do (an empty blob, a missing key, an extent
        // with room), or met the fault only after it committed (giving freed space back to
        // the filesystem is best effort): it ran as without faults.
        match write {
            Staged::Put {
                key: index,
                content,
                meta,
            } => record_put(model, *index, *content, meta, &result.map(Option::unwrap)),
            Staged::Delete { key: index } => {
                record_delete(&db, model, *index, result.map(drop)).await;
            }
            Staged::UpdateMetadata { key: index, meta } => {
                record_update(model, *index, meta, result.map(Option::unwrap));
            }
        }
        return db;
    }
    let err = result.expect_err("a write whose I/O failed succeeded");
    assert_eq!(err.code(), "io_error", "{fault:?}: {err}");
    if fault != Fault::MetaFlush {
        return db;
    }
    let refused = db
        .head(&key(0))
        .await
        .expect_err("a store after a failed flush");
    assert_eq!(refused.code(), "io_error", "{refused}");
    drop(db);
    let db = open(dir, model.dedup, plan).await;
    let version = db.begin().await.expect("begin").snapshot_version();
    if version == model.last_version {
        return db; // the write did not reach the disk
    }
    model.committed(version);
    match write {
        Staged::Put {
            key: index,
            content,
            meta,
        } => model.put(KEYS[*index], *content, meta, Some(version)),
        Staged::Delete { key: index } => {
            model.objects.remove(KEYS[*index]);
        }
        Staged::UpdateMetadata { key: index, meta } => {
            let object = model
                .objects
                .get_mut(KEYS[*index])
                .expect("an update that committed had its key");
            object.metadata = meta.document();
            object.version = Some(version);
        }
    }
    db
}

/// Closes the store and opens it again with the next I/O operation of the `fault` kind
/// failing; returns the store opened once the fault is gone.
pub(crate) async fn failing_reopen(
    db: Database,
    dir: &Path,
    plan: &FaultPlan,
    model: &Model,
    fault: Fault,
) -> Database {
    settle(&db, model).await;
    drop(db);
    let point = fault.point();
    let before = plan.injected(point);
    plan.fail_next(point, 1);
    let result = try_open(dir, model.dedup, plan);
    plan.clear();
    match result {
        Ok(db) => {
            assert_eq!(
                plan.injected(point),
                before,
                "an open met a fault and succeeded"
            );
            db
        }
        Err(err) => {
            assert_eq!(err.code(), "io_error", "{fault:?}: {err}");
            open(dir, model.dedup, plan).await
        }
    }
}

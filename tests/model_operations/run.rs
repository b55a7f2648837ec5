//! Runs one operation sequence against a fresh store and the model, checking everything after
//! each step.

use asterope_storage::fault::FaultPlan;

use crate::apply::apply;
use crate::check::{check_store, open};
use crate::faults::{failing_reopen, failing_write};
use crate::model::Model;
use crate::ops::Op;

/// Applies `ops` to a fresh store and to the model, checking everything after each.
pub(crate) async fn run_case(dedup: bool, ops: &[Op]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let plan = FaultPlan::new();
    let mut db = open(dir.path(), dedup, &plan).await;
    let mut model = Model {
        dedup,
        dedup_always: dedup,
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Reopen { dedup } => {
                // Closing and opening again changes nothing the model knows.
                drop(db);
                db = open(dir.path(), *dedup, &plan).await;
                model.dedup = *dedup;
                model.dedup_always &= *dedup;
            }
            Op::Failing { fault, write } => {
                db = failing_write(db, dir.path(), &plan, &mut model, *fault, write).await;
            }
            Op::FailingReopen { fault } => {
                db = failing_reopen(db, dir.path(), &plan, &model, *fault).await;
            }
            op => apply(&db, &mut model, op).await,
        }
        check_store(&db, &mut model).await;
    }
}

//! Operation-sequence property test: random sequences of puts, overwrites, deletes, metadata
//! updates, conditional writes, transactions (committed, rolled back, or racing another
//! writer), index creation and removal, compaction, reopening, deduplicated uploads, and writes
//! and compactions run while a snapshot and a half-read reader are held, applied
//! both to an embedded [`Database`] and to a `BTreeMap` model. After every step every key's
//! bytes (whole and a middle range), size, SHA-256, version, creation time and metadata, the
//! listing (paged through cursors), the snapshot version, the object and deduplication
//! statistics, the declared indexes and the answers of a set of queries over indexed and
//! non-indexed fields (count and pages through cursors) agree with the model.
//!
//! A case opens its database with content deduplication on or off, and each reopen may switch
//! it: stored copies must read back either way.
//!
//! The number of cases is `ASTEROPE_MODEL_CASES`, else `PROPTEST_CASES`, else 64.

#[path = "../common/mod.rs"]
mod common;

mod apply;
mod check;
mod model;
mod ops;

use proptest::prelude::*;

use apply::apply;
use check::{check_store, open};
use common::MIB;
use model::Model;
use ops::{op_strategy, Op};

/// Extent size of the database under test: a few checksum blocks (1 MiB each).
const EXTENT: usize = 2 * MIB;
/// The keys operations draw from: few enough that they collide often.
const KEYS: [&str; 6] = ["a/0", "a/1", "a/2", "b/0", "b/1", "c"];
/// The values of the `tag` field.
const TAGS: [&str; 3] = ["x", "y", "z"];
/// Fields an index may be declared on (`w` never is).
const INDEXABLE: [&str; 2] = ["n", "tag"];

/// Applies `ops` to a fresh store and to the model, checking everything after each.
async fn run_case(dedup: bool, ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut db = open(dir.path(), dedup).await;
    let mut model = Model {
        dedup,
        dedup_always: dedup,
        ..Model::default()
    };
    for op in &ops {
        if let Op::Reopen { dedup } = *op {
            // Closing and opening again changes nothing the model knows.
            drop(db);
            db = open(dir.path(), dedup).await;
            model.dedup = dedup;
            model.dedup_always &= dedup;
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
    fn store_agrees_with_a_map_model(
        dedup in proptest::bool::weighted(0.8),
        ops in proptest::collection::vec(op_strategy(), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_case(dedup, ops));
    }
}

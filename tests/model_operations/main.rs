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
//! Fault steps make the next extent write, sync or allocation, or metadata batch or flush, fail
//! under a put, delete or metadata update (through the database's own fault plan), or the next
//! extent or metadata read, batch or flush fail while the directory is opened again: the
//! failing operation changes nothing, and every later step agrees with the model again.
//!
//! The same sequences are fuzzed by `fuzz/fuzz_targets/operations.rs`, which includes these
//! modules (all but the proptest strategies).
//!
//! The number of cases is `ASTEROPE_MODEL_CASES`, else `PROPTEST_CASES`, else 64.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

#[path = "../common/mod.rs"]
mod common;

mod apply;
mod check;
mod faults;
mod model;
mod ops;
mod run;
mod strategy;

use proptest::prelude::*;

use strategy::op_strategy;

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
        runtime.block_on(run::run_case(dedup, &ops));
    }
}

//! Metadata queries through secondary indexes on the embedded database: randomized filters
//! checked against a naive evaluation, explain, sorted and key-ordered pagination, snapshot
//! consistency while writers run, and index maintenance across overwrites, deletes, drop and
//! reopen.
//!
//! The randomized test uses a small deterministic xorshift generator over a fixed list of seeds
//! (the root package has no `proptest` dev-dependency), so every failure is reproducible.
//!
//! `rng` is the generator, `data` the documents and filters it draws, and `model` the naive
//! evaluation every answer is compared with; each other module holds the tests of one concern.
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

mod counts;
mod data;
mod maintenance;
mod model;
mod pages;
mod plans;
mod random_filters;
mod rng;
mod snapshots;

//! The proptest strategies that generate operation sequences.

use proptest::prelude::*;

use crate::common::MIB;
use crate::ops::{Content, Fault, Meta, Number, Op, Staged, EXTENT, INDEXABLE, KEYS, TAGS};

pub(crate) fn size_strategy() -> impl Strategy<Value = usize> {
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

pub(crate) fn content_strategy() -> impl Strategy<Value = Content> {
    (0u64..4, size_strategy()).prop_map(|(seed, size)| Content { seed, size })
}

pub(crate) fn meta_strategy() -> impl Strategy<Value = Meta> {
    let number = (0i64..8, proptest::bool::weighted(0.2))
        .prop_map(|(halves, float)| Number { halves, float });
    let tags = prop_oneof![
        4 => (0usize..TAGS.len()).prop_map(|t| vec![t]),
        1 => proptest::collection::vec(0usize..TAGS.len(), 0..3),
    ];
    (
        proptest::option::weighted(0.8, proptest::option::weighted(0.9, number)),
        proptest::option::weighted(0.7, tags),
        proptest::option::weighted(0.5, any::<bool>()),
    )
        .prop_map(|(n, tag, w)| Meta { n, tag, w })
}

pub(crate) fn key_strategy() -> impl Strategy<Value = usize> {
    0usize..KEYS.len()
}

pub(crate) fn staged_strategy() -> impl Strategy<Value = Staged> {
    prop_oneof![
        3 => (key_strategy(), content_strategy(), meta_strategy())
            .prop_map(|(key, content, meta)| Staged::Put { key, content, meta }),
        1 => key_strategy().prop_map(|key| Staged::Delete { key }),
        1 => (key_strategy(), meta_strategy())
            .prop_map(|(key, meta)| Staged::UpdateMetadata { key, meta }),
    ]
}

fn put_op() -> impl Strategy<Value = Op> {
    (
        key_strategy(),
        content_strategy(),
        meta_strategy(),
        prop_oneof![Just(4096usize), Just(MIB / 3), Just(MIB)],
    )
        .prop_map(|(key, content, meta, chunk)| Op::Put {
            key,
            content,
            meta,
            chunk,
        })
}

fn delete_op() -> impl Strategy<Value = Op> {
    key_strategy().prop_map(|key| Op::Delete { key })
}

fn update_op() -> impl Strategy<Value = Op> {
    (key_strategy(), meta_strategy()).prop_map(|(key, meta)| Op::UpdateMetadata { key, meta })
}

fn dedup_op() -> impl Strategy<Value = Op> {
    (
        key_strategy(),
        key_strategy(),
        content_strategy(),
        any::<bool>(),
    )
        .prop_filter("two different keys", |(a, b, _, _)| a != b)
        .prop_map(|(first, second, content, delete_first)| Op::Dedup {
            first,
            second,
            content,
            delete_first,
        })
}

/// The writes, compactions and index changes that run while a snapshot and a reader are held.
fn held_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => put_op(),
        2 => delete_op(),
        1 => update_op(),
        2 => Just(Op::Compact),
        1 => dedup_op(),
        1 => (0usize..INDEXABLE.len()).prop_map(|field| Op::CreateIndex { field, wait: false }),
        1 => (0usize..INDEXABLE.len()).prop_map(|field| Op::DropIndex { field }),
    ]
}

pub(crate) fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => put_op(),
        3 => delete_op(),
        3 => update_op(),
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
        2 => (0usize..INDEXABLE.len(), any::<bool>())
            .prop_map(|(field, wait)| Op::CreateIndex { field, wait }),
        1 => (0usize..INDEXABLE.len()).prop_map(|field| Op::DropIndex { field }),
        1 => Just(Op::Compact),
        1 => proptest::bool::weighted(0.8).prop_map(|dedup| Op::Reopen { dedup }),
        1 => dedup_op(),
        2 => (key_strategy(), proptest::collection::vec(held_op(), 1..6))
            .prop_map(|(reader_key, writes)| Op::HeldSnapshot { reader_key, writes }),
        2 => (write_fault(), staged_strategy())
            .prop_map(|(fault, write)| Op::Failing { fault, write }),
        1 => reopen_fault().prop_map(|fault| Op::FailingReopen { fault }),
    ]
}

/// The faults a write may meet.
fn write_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::ExtentWrite),
        Just(Fault::ExtentSync),
        Just(Fault::ExtentAllocate),
        Just(Fault::MetaWrite),
        Just(Fault::MetaFlush),
    ]
}

/// The faults an open may meet.
fn reopen_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::ExtentRead),
        Just(Fault::MetaRead),
        Just(Fault::MetaWrite),
        Just(Fault::MetaFlush),
    ]
}

//! The operations of a sequence and the strategies that generate them.

use bytes::Bytes;
use proptest::prelude::*;

use asterope::{Metadata, Value};

use crate::common::{pattern, MIB};
use crate::{EXTENT, INDEXABLE, KEYS, TAGS};

/// Blob content: `size` bytes of `pattern(seed)`. Few seeds, so identical content recurs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Content {
    pub(crate) seed: u64,
    pub(crate) size: usize,
}

impl Content {
    pub(crate) fn bytes(self) -> Bytes {
        pattern(self.seed, self.size)
    }
}

/// A number of `n`: `halves / 2`, stored as an integer when whole unless `float`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Number {
    pub(crate) halves: i64,
    pub(crate) float: bool,
}

/// A small metadata document: `n` (a number or nil), `tag` (a string or an array of them) and
/// `w` (bool), each maybe absent.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) n: Option<Option<Number>>,
    pub(crate) tag: Option<Vec<usize>>,
    pub(crate) w: Option<bool>,
}

impl Meta {
    /// No field at all.
    pub(crate) fn empty() -> Meta {
        Meta {
            n: None,
            tag: None,
            w: None,
        }
    }

    pub(crate) fn document(&self) -> Metadata {
        let mut m = Metadata::new();
        match self.n {
            None => {}
            Some(None) => {
                m.insert("n".into(), Value::Nil);
            }
            Some(Some(number)) => {
                let value = if number.halves % 2 == 0 && !number.float {
                    Value::Int(number.halves / 2)
                } else {
                    Value::Float(number.halves as f64 / 2.0)
                };
                m.insert("n".into(), value);
            }
        }
        match self.tag.as_deref() {
            None => {}
            // One tag is a plain string; none or several, an array.
            Some([one]) => {
                m.insert("tag".into(), TAGS[*one].into());
            }
            Some(many) => {
                let values = many.iter().map(|&t| TAGS[t].into()).collect();
                m.insert("tag".into(), Value::Array(values));
            }
        }
        if let Some(w) = self.w {
            m.insert("w".into(), Value::Bool(w));
        }
        m
    }
}

/// One write staged in a transaction.
#[derive(Clone, Debug)]
pub(crate) enum Staged {
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
pub(crate) enum Op {
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
    /// Declares an index, then (if `wait`) waits until its build is finished.
    CreateIndex {
        field: usize,
        wait: bool,
    },
    DropIndex {
        field: usize,
    },
    Compact,
    /// Closes and opens the directory again, deduplicating content from then on or not.
    Reopen {
        dedup: bool,
    },
    /// A transaction's snapshot and a reader of `reader_key` (one piece read) are held while
    /// `writes` run: afterwards both still see what was there before.
    HeldSnapshot {
        reader_key: usize,
        writes: Vec<Op>,
    },
    /// The same content under two keys, then one of them deleted.
    Dedup {
        first: usize,
        second: usize,
        content: Content,
        delete_first: bool,
    },
}

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
    ]
}

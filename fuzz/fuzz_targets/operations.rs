//! Operation sequences decoded from the fuzzer's bytes, run against an embedded database and
//! the `BTreeMap` model of `tests/model_operations/` (whose modules this target includes, all
//! but the proptest strategies): puts, deletes, metadata updates, conditional writes,
//! transactions, index changes, compaction, reopening and injected I/O faults; after every
//! step the store must agree with the model.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model_operations/apply.rs"]
mod apply;
#[path = "../../tests/model_operations/check.rs"]
mod check;
#[path = "../../tests/common/data.rs"]
mod common;
#[path = "../../tests/model_operations/faults.rs"]
mod faults;
#[path = "../../tests/model_operations/model.rs"]
mod model;
#[path = "../../tests/model_operations/ops.rs"]
mod ops;
#[path = "../../tests/model_operations/run.rs"]
mod run;

use common::MIB;
use ops::{Content, Fault, Meta, Number, Op, Staged, EXTENT, INDEXABLE, KEYS, TAGS};

/// Longest sequence decoded from one input: a case stays short enough to run often.
const MAX_OPS: usize = 24;

fn key(u: &mut Unstructured<'_>) -> Result<usize> {
    u.choose_index(KEYS.len())
}

fn field(u: &mut Unstructured<'_>) -> Result<usize> {
    u.choose_index(INDEXABLE.len())
}

fn content(u: &mut Unstructured<'_>) -> Result<Content> {
    let seed = u.int_in_range(0..=3)?;
    let size = match u.int_in_range(0..=7u8)? {
        0 => 0,
        1 | 2 => u.int_in_range(1..=299)?,
        3 | 4 => u.int_in_range(300..=69_999)?,
        5 => MIB - 1 + u.int_in_range(0..=2)?,
        6 => EXTENT - 1,
        _ => EXTENT + 7,
    };
    Ok(Content { seed, size })
}

fn meta(u: &mut Unstructured<'_>) -> Result<Meta> {
    let n = if u.ratio(4, 5)? {
        Some(if u.ratio(9, 10)? {
            Some(Number {
                halves: u.int_in_range(0..=7)?,
                float: u.ratio(1, 5)?,
            })
        } else {
            None
        })
    } else {
        None
    };
    let tag = if u.ratio(7, 10)? {
        let count = u.int_in_range(0..=2)?;
        let mut tags = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            tags.push(u.choose_index(TAGS.len())?);
        }
        Some(tags)
    } else {
        None
    };
    let w = if u.arbitrary()? {
        Some(u.arbitrary()?)
    } else {
        None
    };
    Ok(Meta { n, tag, w })
}

fn staged(u: &mut Unstructured<'_>) -> Result<Staged> {
    Ok(match u.int_in_range(0..=4u8)? {
        0..=2 => Staged::Put {
            key: key(u)?,
            content: content(u)?,
            meta: meta(u)?,
        },
        3 => Staged::Delete { key: key(u)? },
        _ => Staged::UpdateMetadata {
            key: key(u)?,
            meta: meta(u)?,
        },
    })
}

fn fault(u: &mut Unstructured<'_>) -> Result<Fault> {
    Ok(*u.choose(&[
        Fault::ExtentWrite,
        Fault::ExtentSync,
        Fault::ExtentAllocate,
        Fault::ExtentRead,
        Fault::MetaWrite,
        Fault::MetaFlush,
        Fault::MetaRead,
    ])?)
}

/// One operation; `held` is false inside a held snapshot (no nesting, reopening or faults).
fn op(u: &mut Unstructured<'_>, held: bool) -> Result<Op> {
    let choices = if held { 8 } else { 16 };
    Ok(match u.choose_index(choices)? {
        0 | 1 => Op::Put {
            key: key(u)?,
            content: content(u)?,
            meta: meta(u)?,
            chunk: *u.choose(&[4096, MIB / 3, MIB])?,
        },
        2 => Op::Delete { key: key(u)? },
        3 => Op::UpdateMetadata {
            key: key(u)?,
            meta: meta(u)?,
        },
        4 => Op::Compact,
        5 => Op::CreateIndex {
            field: field(u)?,
            wait: !held && u.arbitrary()?,
        },
        6 => Op::DropIndex { field: field(u)? },
        7 => {
            let first = key(u)?;
            let second = (first + 1 + u.choose_index(KEYS.len() - 1)?) % KEYS.len();
            Op::Dedup {
                first,
                second,
                content: content(u)?,
                delete_first: u.arbitrary()?,
            }
        }
        8 => Op::ConditionalPut {
            key: key(u)?,
            content: content(u)?,
            meta: meta(u)?,
            matching: u.arbitrary()?,
        },
        9 => Op::ConditionalDelete {
            key: key(u)?,
            matching: u.arbitrary()?,
        },
        10 => Op::ConditionalUpdate {
            key: key(u)?,
            meta: meta(u)?,
            matching: u.arbitrary()?,
        },
        11 => {
            let count = u.int_in_range(1..=4)?;
            let mut writes = Vec::with_capacity(count);
            for _ in 0..count {
                writes.push(staged(u)?);
            }
            Op::Transaction {
                writes,
                commit: u.arbitrary()?,
            }
        }
        12 => Op::RacingTransaction {
            tx_key: key(u)?,
            outside_key: key(u)?,
            content: content(u)?,
            meta: meta(u)?,
        },
        13 => Op::Reopen {
            dedup: u.ratio(4, 5)?,
        },
        14 => {
            let count = u.int_in_range(1..=5)?;
            let mut writes = Vec::with_capacity(count);
            for _ in 0..count {
                writes.push(op(u, true)?);
            }
            Op::HeldSnapshot {
                reader_key: key(u)?,
                writes,
            }
        }
        _ if u.arbitrary()? => Op::Failing {
            fault: fault(u)?,
            write: staged(u)?,
        },
        _ => Op::FailingReopen { fault: fault(u)? },
    })
}

fn case(u: &mut Unstructured<'_>) -> Result<(bool, Vec<Op>)> {
    let dedup = u.ratio(4, 5)?;
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        ops.push(op(u, false)?);
    }
    Ok((dedup, ops))
}

fuzz_target!(|data: &[u8]| {
    let Ok((dedup, ops)) = case(&mut Unstructured::new(data)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run::run_case(dedup, &ops));
});

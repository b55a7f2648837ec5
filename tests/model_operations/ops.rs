//! The operations of a sequence, and the small world they draw from.

use asterope::{Metadata, Value};
use asterope_storage::fault::FaultPoint;
use bytes::Bytes;

use crate::common::{pattern, MIB};

/// Extent size of the database under test: a few checksum blocks (1 MiB each).
pub(crate) const EXTENT: usize = 2 * MIB;
/// The keys operations draw from: few enough that they collide often.
pub(crate) const KEYS: [&str; 6] = ["a/0", "a/1", "a/2", "b/0", "b/1", "c"];
/// The values of the `tag` field.
pub(crate) const TAGS: [&str; 3] = ["x", "y", "z"];
/// Fields an index may be declared on (`w` never is).
pub(crate) const INDEXABLE: [&str; 2] = ["n", "tag"];

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
    /// `write`, with the next I/O operation of the `fault` kind failing: a write that fails
    /// changes nothing (after a failed metadata flush, the store is reopened and holds the
    /// write whole or not at all).
    Failing {
        fault: Fault,
        write: Staged,
    },
    /// Closes and opens the directory again with the next I/O operation of the `fault` kind
    /// failing: the open fails (or finds nothing of that kind to do), and the next one sees
    /// everything as it was.
    FailingReopen {
        fault: Fault,
    },
}

/// The kind of I/O operation a fault step makes fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    ExtentWrite,
    ExtentSync,
    ExtentAllocate,
    ExtentRead,
    MetaWrite,
    MetaFlush,
    MetaRead,
}

impl Fault {
    pub(crate) fn point(self) -> FaultPoint {
        match self {
            Fault::ExtentWrite => FaultPoint::ExtentWrite,
            Fault::ExtentSync => FaultPoint::ExtentSync,
            Fault::ExtentAllocate => FaultPoint::ExtentAllocate,
            Fault::ExtentRead => FaultPoint::ExtentRead,
            Fault::MetaWrite => FaultPoint::MetaWrite,
            Fault::MetaFlush => FaultPoint::MetaFlush,
            Fault::MetaRead => FaultPoint::MetaRead,
        }
    }
}

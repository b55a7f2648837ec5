//! Query rows: a candidate a query looks at, held either decoded (a transaction's staged
//! record) or still encoded as stored, and decoded only as far as each step needs: the fields
//! a filter reads, the field a sort orders by, the whole record only for rows returned.
//!
//! Invariant kept here: decoding a batch of rows keeps their order, and skips rows holding no
//! object (tombstones), whether the batch is decoded here or split over several threads.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use asterope_core::{Error, Filter, Key, Result, SortSpec, Value};
use asterope_serialization::encode;

use crate::meta::MetaBytes;
use crate::mvcc::{decode_version, decode_version_fields};
use crate::record::ObjectRecord;

/// Candidate or matching rows, in key order.
pub(crate) type Rows<'q> = Box<dyn Iterator<Item = Result<(Key, Row)>> + 'q>;

/// One candidate row: a record at hand, or a stored encoding decoded only as far as needed.
pub(crate) enum Row {
    Decoded(ObjectRecord),
    /// An encoded version record: `bytes[offset..]` (an index entry's starts after its superseding
    /// version).
    Encoded {
        bytes: MetaBytes,
        offset: usize,
    },
}

impl Row {
    /// The record (`None`: the encoding is a tombstone's).
    pub(crate) fn into_record(self, key: &Key) -> Result<Option<ObjectRecord>> {
        match self {
            Row::Decoded(record) => Ok(Some(record)),
            Row::Encoded { bytes, offset } => {
                let encoded = bytes.get(offset..).unwrap_or_default();
                Ok(decode_version(key.as_bytes(), encoded)?.into_object())
            }
        }
    }

    /// The size of the row's stored metadata and record, in bytes: what a page's byte budget
    /// counts.
    pub(crate) fn stored_len(&self) -> usize {
        match self {
            Row::Encoded { bytes, offset } => bytes.len().saturating_sub(*offset),
            // Staged rows only (a transaction's own writes): measured by encoding them.
            Row::Decoded(record) => encode(&record.metadata).map_or(0, |bytes| bytes.len()),
        }
    }

    /// The row's sort value (a missing field sorts as null), decoding only the field sorted on;
    /// `None` if the row holds no object.
    pub(crate) fn sort_value(&self, key: &Key, sort: &SortSpec) -> Result<Option<Value>> {
        let lookup = |metadata: &asterope_core::Metadata| {
            sort.path.lookup(metadata).cloned().unwrap_or(Value::Nil)
        };
        match self {
            Row::Decoded(record) => Ok(Some(lookup(&record.metadata))),
            Row::Encoded { bytes, offset } => {
                let encoded = bytes.get(*offset..).unwrap_or_default();
                let top = sort.path.segments().first().map(String::as_bytes);
                let wanted = |name: &[u8]| Some(name) == top;
                let metadata = decode_version_fields(key.as_bytes(), encoded, wanted)?;
                Ok(metadata.as_ref().map(lookup))
            }
        }
    }

    /// Whether the row is an object that `filter` selects; `fields` are the filter's
    /// [`Filter::top_level_fields`], the only ones decoded.
    pub(crate) fn satisfies(
        &self,
        key: &Key,
        filter: &Filter,
        fields: &BTreeSet<&str>,
    ) -> Result<bool> {
        match self {
            Row::Decoded(record) => Ok(filter.matches(&record.metadata)),
            Row::Encoded { bytes, offset } => {
                let encoded = bytes.get(*offset..).unwrap_or_default();
                let wanted = |name: &[u8]| fields.iter().any(|f| f.as_bytes() == name);
                let metadata = decode_version_fields(key.as_bytes(), encoded, wanted)?;
                Ok(metadata.is_some_and(|m| filter.matches(&m)))
            }
        }
    }
}

/// Rows of a batch this large or larger are decoded on several threads.
const PARALLEL_DECODE_ROWS: usize = 1024;
/// Most threads one batch is decoded on.
const MAX_DECODE_THREADS: usize = 4;

/// How many threads a large batch is decoded on: the cores this process may use (asked once:
/// the answer takes reading cgroup files), at most [`MAX_DECODE_THREADS`].
fn decode_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(MAX_DECODE_THREADS)
    })
}

/// A part of a batch waiting for the thread that decodes it.
type Slot = Mutex<Option<Vec<(Key, Row)>>>;

/// Decodes the rows (drained, in order) and appends their objects to `objects`; a row that
/// turns out to hold no object is skipped. A large batch is split over the available cores,
/// each part decoded on its own thread; if a thread cannot be started, its part is decoded here.
pub(crate) fn decode_rows(
    rows: &mut Vec<(Key, Row)>,
    objects: &mut Vec<(Key, ObjectRecord)>,
) -> Result<()> {
    let decode = |part: Vec<(Key, Row)>| -> Result<Vec<(Key, ObjectRecord)>> {
        let mut out = Vec::with_capacity(part.len());
        for (key, row) in part {
            if let Some(record) = row.into_record(&key)? {
                out.push((key, record));
            }
        }
        Ok(out)
    };
    if rows.len() < PARALLEL_DECODE_ROWS || decode_threads() < 2 {
        objects.extend(decode(std::mem::take(rows))?);
        return Ok(());
    }
    let threads = decode_threads();
    let part_len = rows.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    while rows.len() > part_len {
        parts.push(rows.split_off(rows.len() - part_len));
    }
    parts.push(std::mem::take(rows));
    parts.reverse();
    // Each part waits in a slot, so that a part whose thread could not start is still at hand.
    let slots: Vec<Slot> = parts
        .into_iter()
        .map(|part| Mutex::new(Some(part)))
        .collect();
    let take = |slot: &Slot| {
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    };
    let decoded: Vec<Result<Vec<(Key, ObjectRecord)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = slots
            .iter()
            .skip(1)
            .map(|slot| {
                std::thread::Builder::new()
                    .name("query-decode".into())
                    .spawn_scoped(scope, move || decode(take(slot)))
                    .ok()
            })
            .collect();
        let mut decoded = Vec::with_capacity(slots.len());
        decoded.extend(slots.first().map(|slot| decode(take(slot))));
        for (slot, handle) in slots.iter().skip(1).zip(handles) {
            decoded.push(match handle {
                Some(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::internal("a query decoding thread panicked"))),
                None => decode(take(slot)),
            });
        }
        decoded
    });
    for part in decoded {
        objects.extend(part?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use asterope_core::{Metadata, Sha256Digest, Timestamp};

    use super::*;
    use crate::meta::MetaStore;
    use crate::record::VersionRecord;

    fn record(i: usize) -> VersionRecord {
        let mut metadata = Metadata::new();
        metadata.insert("i".into(), Value::Int(i64::try_from(i).unwrap()));
        VersionRecord::Object(ObjectRecord {
            version: 1,
            size: 0,
            sha256: Sha256Digest([0; 32]),
            created: Timestamp { secs: 1, nanos: 0 },
            updated: Timestamp { secs: 1, nanos: 0 },
            metadata,
            blob: None,
        })
    }

    /// A batch large enough to be split over threads comes back whole and in order, rows
    /// without an object skipped, whatever form each row takes.
    #[test]
    fn large_batches_decode_in_order_on_several_threads() {
        let rows = 3 * PARALLEL_DECODE_ROWS + 17;
        let meta_dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(meta_dir.path(), 1 << 20).unwrap();
        // Encoded rows need stored bytes: keep each encoding in the store and read it back.
        let mut batch = Vec::new();
        for i in 0..rows {
            let version = if i % 7 == 3 {
                VersionRecord::Tombstone
            } else {
                record(i)
            };
            batch.push((
                format!("k{i:06}").into_bytes(),
                Some(version.encode().unwrap()),
            ));
        }
        meta.apply(batch).unwrap();
        let mut input = Vec::with_capacity(rows);
        for i in 0..rows {
            let key = Key::new(format!("k{i:06}")).unwrap();
            let row = if i % 2 == 0 {
                let bytes = meta.get(key.as_bytes()).unwrap().unwrap();
                Row::Encoded { bytes, offset: 0 }
            } else {
                match record(i) {
                    VersionRecord::Object(object) if i % 7 != 3 => Row::Decoded(object),
                    _ => Row::Encoded {
                        bytes: meta.get(key.as_bytes()).unwrap().unwrap(),
                        offset: 0,
                    },
                }
            };
            input.push((key, row));
        }
        let mut objects = Vec::new();
        decode_rows(&mut input, &mut objects).unwrap();
        assert!(input.is_empty());
        let expected: Vec<usize> = (0..rows).filter(|i| i % 7 != 3).collect();
        let got: Vec<usize> = objects
            .iter()
            .map(|(key, record)| {
                let i: usize = key.as_str()[1..].parse().unwrap();
                assert_eq!(
                    record.metadata.get("i"),
                    Some(&Value::Int(i64::try_from(i).unwrap()))
                );
                i
            })
            .collect();
        assert_eq!(got, expected);
    }
}

//! Posting lists: per value of an index, the keys whose newest version holds it, in one tree
//! value, so that an equality or `$in` lookup is one point read instead of a range seek (a
//! sled range seek copies the leaf it lands in; a point read shares it).
//!
//! A posting list mirrors the index entries of its value that nothing has superseded, each
//! with the entry's value, so a covered record comes along. Commits maintain it in the same
//! atomic batch as the entries: a commit that adds or removes an entry of a value rewrites the
//! value's list and stamps it with its commit version. A snapshot at `ts` may use a list
//! stamped at or before `ts`: every commit it sees that touched the value is in the list, and
//! no later commit has touched it yet. Otherwise (a newer stamp, or no list) the snapshot
//! reads the index entries, as it would without lists.
//!
//! Lists are kept only for ready indexes, and written only by commits after readiness, so a
//! list stamped at or before its index became ready is a leftover of a dropped earlier index
//! on that field, and ignored. A value held by more than [`MAX_ENTRIES`] keys (or whose list
//! outgrows [`MAX_BYTES`]) gets an *overflowed* marker instead of a list: its lookups read the
//! entries (a range returning that many rows costs little more per row), and commits stop
//! rewriting a list. The marker keeps how many keys hold the value, so that counts need not
//! walk its entries.
//!
//! Layout of a list: state (1 byte: 0 list, 1 overflowed), stamp (8 bytes BE), then per entry,
//! in key order: key length (u32 BE), key, value length (u32 BE), entry value. A marker: state,
//! stamp, number of keys (8 bytes BE).

use std::collections::BTreeMap;
use std::ops::{Bound, Range};

use asterope_core::{Error, Result};

use crate::index::{parse_entry_value, successor, Index};
use crate::keys::split_version_key;
use crate::meta::{BatchOp, MetaBytes, MetaStore};

/// Most keys a list holds before it overflows.
pub(crate) const MAX_ENTRIES: usize = 32;
/// Largest encoded list.
pub(crate) const MAX_BYTES: usize = 16 << 10;

const STATE_LIST: u8 = 0;
const STATE_OVERFLOWED: u8 = 1;
const HEADER_LEN: usize = 9;

/// The tree key of the list of one encoded value of an index.
pub(crate) fn posting_key(index: &Index, value: &[u8]) -> Vec<u8> {
    [&index.posting_prefix[..], value].concat()
}

/// A stored list as a reader may use it.
pub(crate) struct PostingList {
    bytes: MetaBytes,
}

impl PostingList {
    /// The list of `value` if a snapshot at `ts` may use it (`None`: read the entries). A list
    /// returned is well formed.
    pub(crate) fn read(
        meta: &MetaStore,
        index: &Index,
        value: &[u8],
        ts: u64,
    ) -> Result<Option<PostingList>> {
        Ok(usable(meta, index, value, ts)?
            .filter(|bytes| bytes.first() == Some(&STATE_LIST))
            .map(|bytes| PostingList { bytes }))
    }

    /// How many keys hold `value` as a snapshot at `ts` sees it, if its list or overflow marker
    /// tells (`None`: count the entries).
    pub(crate) fn count(
        meta: &MetaStore,
        index: &Index,
        value: &[u8],
        ts: u64,
    ) -> Result<Option<u64>> {
        let Some(bytes) = usable(meta, index, value, ts)? else {
            return Ok(None);
        };
        if bytes.first() == Some(&STATE_OVERFLOWED) {
            return Ok(marker_count(&bytes));
        }
        let mut count = 0;
        PostingList { bytes }.for_each(|_, _| {
            count += 1;
            Ok(())
        })?;
        Ok(Some(count))
    }

    /// Calls `found` with each key and its entry value, in key order.
    pub(crate) fn for_each(
        &self,
        mut found: impl FnMut(&[u8], &MetaBytes) -> Result<()>,
    ) -> Result<()> {
        let mut at = HEADER_LEN;
        while at < self.bytes.len() {
            let (key, value) = parse_entry(&self.bytes, at)?;
            at = value.end;
            let value = self.bytes.slice(value).ok_or_else(malformed)?;
            found(&self.bytes[key], &value)?;
        }
        Ok(())
    }
}

/// The stored list or marker of `value`, if well formed and stamped after its index became
/// ready and at or before `ts`. A damaged one is passed over (the next commit touching the
/// value rebuilds it).
fn usable(meta: &MetaStore, index: &Index, value: &[u8], ts: u64) -> Result<Option<MetaBytes>> {
    let Some(ready_at) = index.def.ready_at else {
        return Ok(None);
    };
    Ok(meta
        .get(&posting_key(index, value))?
        .filter(|bytes| well_formed(bytes).is_some_and(|stamp| stamp > ready_at && stamp <= ts)))
}

/// The lists a commit changes, loaded on first touch and written back in its batch.
pub(crate) struct PostingEdits<'a> {
    meta: &'a MetaStore,
    lists: BTreeMap<Vec<u8>, Edit>,
}

enum Edit {
    /// The stored list (`None`: an empty one) and, by key, what the commit changes in it: an
    /// entry value, or `None` for a removal.
    List {
        stored: Option<MetaBytes>,
        changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    },
    /// Too many for a list: how many keys hold the value (`None`: not known, from a marker
    /// that records none), and whether the marker must be written.
    Overflowed { count: Option<u64>, changed: bool },
}

impl<'a> PostingEdits<'a> {
    pub(crate) fn new(meta: &'a MetaStore) -> PostingEdits<'a> {
        PostingEdits {
            meta,
            lists: BTreeMap::new(),
        }
    }

    /// `key` no longer holds `value` in its newest version.
    pub(crate) fn remove(&mut self, index: &Index, value: &[u8], key: &[u8]) -> Result<()> {
        match self.edit(index, value)? {
            Some(Edit::List { changes, .. }) => {
                changes.insert(key.to_vec(), None);
            }
            Some(Edit::Overflowed { count, changed }) => {
                *count = count.map(|c| c.saturating_sub(1));
                *changed = true;
            }
            None => {}
        }
        Ok(())
    }

    /// `key`'s newest version holds `value`, with this entry value.
    pub(crate) fn insert(
        &mut self,
        index: &Index,
        value: &[u8],
        key: &[u8],
        entry_value: &[u8],
    ) -> Result<()> {
        match self.edit(index, value)? {
            Some(Edit::List { changes, .. }) => {
                changes.insert(key.to_vec(), Some(entry_value.to_vec()));
            }
            // Every insert follows the removal of the key's previous entry of the value, if
            // it had one: the count stays exact.
            Some(Edit::Overflowed { count, changed }) => {
                *count = count.map(|c| c + 1);
                *changed = true;
            }
            None => {}
        }
        Ok(())
    }

    /// The batch operations writing every changed list, stamped with the commit's version.
    pub(crate) fn finish(self, version: u64) -> Result<Vec<BatchOp>> {
        let stamp = version.to_be_bytes();
        let overflowed = |count: Option<u64>| {
            let mut marker = [&[STATE_OVERFLOWED][..], &stamp].concat();
            marker.extend(count.map(u64::to_be_bytes).unwrap_or_default());
            marker
        };
        let mut ops = Vec::with_capacity(self.lists.len());
        for (tree_key, edit) in self.lists {
            let list = match edit {
                Edit::Overflowed { changed: false, .. } => continue,
                Edit::Overflowed { count, .. } => overflowed(count),
                Edit::List { stored, changes } => {
                    let capacity = stored.as_ref().map_or(0, |s| s.len()) + 256;
                    let mut out = Vec::with_capacity(capacity);
                    out.push(STATE_LIST);
                    out.extend_from_slice(&stamp);
                    let count = merge(stored.as_deref(), &changes, &mut out)?;
                    if count > MAX_ENTRIES || out.len() > MAX_BYTES {
                        overflowed(Some(count as u64))
                    } else {
                        out
                    }
                }
            };
            ops.push((tree_key, Some(list)));
        }
        Ok(ops)
    }

    /// The list of `value`, loaded from the tree or rebuilt from the index entries (`None`:
    /// the index keeps no lists yet).
    fn edit(&mut self, index: &Index, value: &[u8]) -> Result<Option<&mut Edit>> {
        let Some(ready_at) = index.def.ready_at else {
            return Ok(None);
        };
        let tree_key = posting_key(index, value);
        if !self.lists.contains_key(&tree_key) {
            // A leftover of an earlier index, or a damaged list, is rebuilt.
            let edit = match self.meta.get(&tree_key)? {
                Some(bytes) if well_formed(&bytes).is_some_and(|stamp| stamp > ready_at) => {
                    match bytes.first() {
                        Some(&STATE_LIST) => Edit::List {
                            stored: Some(bytes),
                            changes: BTreeMap::new(),
                        },
                        _ => Edit::Overflowed {
                            count: marker_count(&bytes),
                            changed: false,
                        },
                    }
                }
                _ => self.rebuild(index, value)?,
            };
            self.lists.insert(tree_key.clone(), edit);
        }
        Ok(self.lists.get_mut(&tree_key))
    }

    /// A value's list from its index entries: those nothing superseded.
    fn rebuild(&self, index: &Index, value: &[u8]) -> Result<Edit> {
        let start = [&index.prefix[..], value].concat();
        let end = successor(&start);
        let mut newest = self
            .meta
            .range(Bound::Included(start.clone()), Bound::Excluded(end))
            .filter(|entry| {
                entry
                    .as_ref()
                    .map_or(true, |(_, value)| parse_entry_value(value).0 == u64::MAX)
            });
        let mut changes = BTreeMap::new();
        while let Some(entry) = newest.next() {
            let (tree_key, entry_value) = entry?;
            if changes.len() == MAX_ENTRIES {
                // Too many for a list: only their number is kept.
                let rest = newest.try_fold(0u64, |count, entry| entry.map(|_| count + 1))?;
                return Ok(Edit::Overflowed {
                    count: Some(MAX_ENTRIES as u64 + 1 + rest),
                    changed: true,
                });
            }
            let (key, _) = tree_key
                .get(start.len()..)
                .and_then(split_version_key)
                .ok_or_else(|| Error::internal("malformed index entry"))?;
            changes.insert(key.to_vec(), Some(entry_value.to_vec()));
        }
        Ok(Edit::List {
            stored: None,
            changes,
        })
    }
}

/// Writes the entries of `stored` (a list) with `changes` applied, in key order; returns how
/// many it wrote.
fn merge(
    stored: Option<&[u8]>,
    changes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    out: &mut Vec<u8>,
) -> Result<usize> {
    let mut count = 0;
    let mut put = |key: &[u8], value: &[u8]| {
        put_len(out, key.len());
        out.extend_from_slice(key);
        put_len(out, value.len());
        out.extend_from_slice(value);
        count += 1;
    };
    let mut changes = changes.iter().peekable();
    if let Some(stored) = stored {
        let mut at = HEADER_LEN;
        while at < stored.len() {
            let (key, value) = parse_entry(stored, at)?;
            at = value.end;
            let key = &stored[key];
            // Changed keys before this one are new.
            while let Some((changed, new)) = changes.next_if(|(k, _)| k.as_slice() < key) {
                if let Some(new) = new {
                    put(changed, new);
                }
            }
            match changes.next_if(|(k, _)| k.as_slice() == key) {
                Some((_, Some(new))) => put(key, new),
                Some((_, None)) => {}
                None => put(key, &stored[value]),
            }
        }
    }
    for (changed, new) in changes {
        if let Some(new) = new {
            put(changed, new);
        }
    }
    Ok(count)
}

/// How many keys hold the value of an overflow marker (`None`: the marker records none).
fn marker_count(marker: &[u8]) -> Option<u64> {
    marker
        .get(HEADER_LEN..)
        .and_then(|rest| rest.try_into().ok())
        .map(u64::from_be_bytes)
}

/// The stamp of a well-formed list or marker.
fn well_formed(bytes: &[u8]) -> Option<u64> {
    let (state, stamp) = parse_header(bytes).ok()?;
    if state == STATE_LIST {
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            at = parse_entry(bytes, at).ok()?.1.end;
        }
    }
    Some(stamp)
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

fn malformed() -> Error {
    Error::internal("malformed posting list")
}

/// State and stamp.
fn parse_header(bytes: &[u8]) -> Result<(u8, u64)> {
    let (&state, rest) = bytes.split_first().ok_or_else(malformed)?;
    let stamp = rest.first_chunk::<8>().ok_or_else(malformed)?;
    if state != STATE_LIST && state != STATE_OVERFLOWED {
        return Err(malformed());
    }
    Ok((state, u64::from_be_bytes(*stamp)))
}

/// The entry at `at`: where its key and its value are.
fn parse_entry(bytes: &[u8], at: usize) -> Result<(Range<usize>, Range<usize>)> {
    let field = |at: usize| -> Result<Range<usize>> {
        let len = bytes
            .get(at..)
            .and_then(<[u8]>::first_chunk::<4>)
            .ok_or_else(malformed)?;
        let start = at + 4;
        let end = start
            .checked_add(u32::from_be_bytes(*len) as usize)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(malformed)?;
        Ok(start..end)
    };
    let key = field(at)?;
    let value = field(key.end)?;
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use asterope_core::{field, Key, Metadata, ObjectOps, Query, Store, StoreExt};

    use super::*;
    use crate::Database;

    async fn wait_ready(db: &Database) {
        while db
            .list_indexes()
            .await
            .unwrap()
            .iter()
            .any(|i| i.state != "ready")
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    async fn put_patient(db: &Database, key: &str, patient: &str) {
        let metadata = Metadata::from([("patient_id".into(), patient.into())]);
        db.put_bytes(&Key::new(key).unwrap(), "x".into(), metadata)
            .await
            .unwrap();
    }

    /// A database with a ready index on `patient_id`.
    async fn indexed_db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        db.create_index("patient_id").await.unwrap();
        wait_ready(&db).await;
        (dir, db)
    }

    /// The tree key of the list of a `patient_id` value.
    fn list_key_of(db: &Database, patient: &str) -> Vec<u8> {
        let indexes = db.inner.indexes();
        let mut key = indexes
            .get("patient_id")
            .expect("the patient_id index")
            .posting_prefix
            .clone();
        asterope_serialization::encode_ordered(&patient.into(), &mut key);
        key
    }

    async fn keys_of_patient(db: &Database, patient: &str) -> Vec<String> {
        let query = Query::new(field("patient_id").eq(patient));
        let page = db.query(&query).await.unwrap();
        page.objects.iter().map(|o| o.key.to_string()).collect()
    }

    #[tokio::test]
    async fn commits_keep_a_list_per_value_and_overflow_big_ones() {
        let (_dir, db) = indexed_db().await;
        put_patient(&db, "a/1", "A").await;
        put_patient(&db, "a/2", "A").await;
        let list_key = list_key_of(&db, "A");
        let stored = db
            .meta_store()
            .get(&list_key)
            .unwrap()
            .expect("a list for A");
        assert_eq!(parse_header(&stored).unwrap().0, STATE_LIST);
        let mut keys = Vec::new();
        let list = PostingList { bytes: stored };
        list.for_each(|key, _| {
            keys.push(key.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(keys, [b"a/1", b"a/2"]);

        for i in 0..MAX_ENTRIES {
            put_patient(&db, &format!("b/{i:03}"), "B").await;
        }
        assert_eq!(keys_of_patient(&db, "B").await.len(), MAX_ENTRIES);
        put_patient(&db, "b/999", "B").await;
        let list_key = list_key_of(&db, "B");
        let stored = db.meta_store().get(&list_key).unwrap().unwrap();
        assert_eq!(parse_header(&stored).unwrap().0, STATE_OVERFLOWED);
        assert_eq!(marker_count(&stored), Some(MAX_ENTRIES as u64 + 1));
        assert_eq!(keys_of_patient(&db, "B").await.len(), MAX_ENTRIES + 1);
        db.delete(&Key::new("b/000").unwrap(), Default::default())
            .await
            .unwrap();
        assert_eq!(keys_of_patient(&db, "B").await.len(), MAX_ENTRIES);
        let stored = db.meta_store().get(&list_key).unwrap().unwrap();
        assert_eq!(marker_count(&stored), Some(MAX_ENTRIES as u64));
    }

    /// A count at a snapshot older than a value's overflow marker walks the entries instead.
    #[tokio::test]
    async fn counts_at_an_older_snapshot_ignore_newer_markers() {
        let (_dir, db) = indexed_db().await;
        for i in 0..40 {
            put_patient(&db, &format!("c/{i:02}"), "C").await;
        }
        let query = Query::new(field("patient_id").eq("C"));
        let old = db.snapshot();
        for i in 0..5 {
            db.delete(&Key::new(format!("c/{i:02}")).unwrap(), Default::default())
                .await
                .unwrap();
        }
        let count_at = |ts| db.with_query(ts, None, |q| q.count(&query)).unwrap();
        assert_eq!(count_at(old.ts), 40);
        assert_eq!(count_at(db.snapshot().ts), 35);
        let stored = db
            .meta_store()
            .get(&list_key_of(&db, "C"))
            .unwrap()
            .unwrap();
        assert_eq!(marker_count(&stored), Some(35));
    }

    /// A drop interrupted after its definition went but before its lists did leaves lists
    /// behind; a later index on the field must not take them for its own.
    #[tokio::test]
    async fn lists_left_by_a_dropped_index_are_ignored() {
        let (_dir, db) = indexed_db().await;
        put_patient(&db, "k/1", "A").await;
        let list_key = list_key_of(&db, "A");
        let leftover = db
            .meta_store()
            .get(&list_key)
            .unwrap()
            .expect("a list for A");

        db.drop_index("patient_id").await.unwrap();
        let meta = db.meta_store();
        meta.apply(vec![(list_key, Some(leftover.to_vec()))])
            .unwrap();
        put_patient(&db, "k/2", "A").await;
        db.create_index("patient_id").await.unwrap();
        wait_ready(&db).await;
        assert_eq!(keys_of_patient(&db, "A").await, ["k/1", "k/2"]);
    }

    /// A damaged list is passed over by readers and rebuilt by the next commit touching it.
    #[tokio::test]
    async fn a_damaged_list_is_passed_over_and_rebuilt() {
        let (_dir, db) = indexed_db().await;
        put_patient(&db, "k/1", "A").await;
        put_patient(&db, "k/2", "A").await;
        let list_key = list_key_of(&db, "A");
        let mut damaged = db.meta_store().get(&list_key).unwrap().unwrap().to_vec();
        damaged.truncate(damaged.len() - 3);
        let meta = db.meta_store();
        meta.apply(vec![(list_key.clone(), Some(damaged))]).unwrap();
        assert_eq!(keys_of_patient(&db, "A").await, ["k/1", "k/2"]);

        put_patient(&db, "k/3", "A").await;
        let rebuilt = db.meta_store().get(&list_key).unwrap().unwrap();
        assert!(well_formed(&rebuilt).is_some());
        assert_eq!(keys_of_patient(&db, "A").await, ["k/1", "k/2", "k/3"]);
    }

    #[test]
    fn merging_applies_removals_replacements_and_additions_in_key_order() {
        let mut stored = vec![STATE_LIST];
        stored.extend_from_slice(&1u64.to_be_bytes());
        let mut changes = BTreeMap::new();
        for key in ["b", "d", "f"] {
            changes.insert(key.as_bytes().to_vec(), Some(b"old".to_vec()));
        }
        merge(None, &changes, &mut stored).unwrap();
        let changes = BTreeMap::from([
            (b"a".to_vec(), Some(b"new".to_vec())),
            (b"d".to_vec(), None),
            (b"f".to_vec(), Some(b"new".to_vec())),
            (b"g".to_vec(), Some(b"new".to_vec())),
        ]);
        let mut out = stored[..HEADER_LEN].to_vec();
        assert_eq!(merge(Some(&stored), &changes, &mut out).unwrap(), 4);
        let mut entries = Vec::new();
        let mut at = HEADER_LEN;
        while at < out.len() {
            let (key, value) = parse_entry(&out, at).unwrap();
            at = value.end;
            entries.push((out[key].to_vec(), out[value].to_vec()));
        }
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            [("a", "new"), ("b", "old"), ("f", "new"), ("g", "new")]
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
        assert_eq!(entries, expected);
    }

    #[test]
    fn malformed_lists_are_errors() {
        let header = [&[STATE_LIST][..], &7u64.to_be_bytes()].concat();
        for bad in [
            vec![],
            vec![9; 9],
            [&header[..], &[0, 0, 0, 5, b'k']].concat(),
            [&header[..], &[0, 0, 0, 1, b'k', 0, 0]].concat(),
            [&header[..], &[0, 0, 0, 1, b'k', 0, 0, 0, 9, 1]].concat(),
        ] {
            assert_eq!(well_formed(&bad), None, "{bad:?} was accepted");
        }
    }
}

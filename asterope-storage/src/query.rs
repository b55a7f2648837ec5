//! The query executor: candidates from an index or a scan, each re-read at the snapshot and
//! re-checked against the whole filter; then key order or a sort, and a page.
//!
//! Stored candidates stay encoded until needed: the re-check decodes only the fields the filter
//! looks at, and only rows that are returned are decoded in full (a count decodes none).
//!
//! A transaction passes its staged writes as an overlay, so its queries see its own writes.
//!
//! A page is bounded twice: by its row limit and by [`PAGE_BYTES`] of stored metadata, so that
//! a page of objects with large metadata does not become hundreds of megabytes of decoded value
//! trees and reply text; a page cut short by bytes carries a cursor like any other. A sorted
//! page keeps only the best rows seen so far (a bounded top-k, still encoded), never every match.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

use asterope_core::{
    Error, Filter, Key, ObjectInfo, Query, QueryPlan, Result, SortSpec, Value, DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
};
use asterope_serialization::{decode, encode, query_to_json};
use sha2::{Digest, Sha256};

use crate::index::{
    entry_visible, parse_entry_value, plan, successor, Index, IndexPlan, ENTRY_STAMP_LEN,
};
use crate::keys::split_index_entry;
use crate::meta::{MetaBytes, MetaStore};
use crate::mvcc::{decode_version, decode_version_fields, read_at, scan_at};
use crate::posting::PostingList;
use crate::record::ObjectRecord;
use crate::top_k::{Ranked, TopK};

/// Candidate or matching rows, in key order.
type Rows<'q> = Box<dyn Iterator<Item = Result<(Key, Row)>> + 'q>;

/// One candidate row: a record at hand, or a stored encoding decoded only as far as needed.
enum Row {
    Decoded(ObjectRecord),
    /// An encoded version record: `bytes[offset..]` (an index entry's starts after its stamp).
    Encoded {
        bytes: MetaBytes,
        offset: usize,
    },
}

impl Row {
    /// The record (`None`: the encoding is a tombstone's).
    fn into_record(self, key: &Key) -> Result<Option<ObjectRecord>> {
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
    fn stored_len(&self) -> usize {
        match self {
            Row::Encoded { bytes, offset } => bytes.len().saturating_sub(*offset),
            // Staged rows only (a transaction's own writes): measured by encoding them.
            Row::Decoded(record) => encode(&record.metadata).map_or(0, |bytes| bytes.len()),
        }
    }

    /// The row's sort value (a missing field sorts as null), decoding only the field sorted on;
    /// `None` if the row holds no object.
    fn sort_value(&self, key: &Key, sort: &SortSpec) -> Result<Option<Value>> {
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
    fn satisfies(&self, key: &Key, filter: &Filter, fields: &BTreeSet<&str>) -> Result<bool> {
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

/// Staged writes of a transaction: the new state of each key (`None`: deleted).
pub(crate) type Overlay = BTreeMap<Key, Option<ObjectRecord>>;

/// Where a query runs.
pub(crate) struct QueryContext<'a> {
    pub(crate) meta: &'a MetaStore,
    pub(crate) indexes: &'a BTreeMap<String, Index>,
    pub(crate) ts: u64,
    pub(crate) overlay: Option<&'a Overlay>,
}

/// A page of results.
pub(crate) struct Page {
    pub(crate) objects: Vec<(Key, ObjectRecord)>,
    pub(crate) next: Option<String>,
}

impl Page {
    /// The page as callers see it: each object's description, and the next page's cursor.
    pub(crate) fn into_infos(self) -> (Vec<ObjectInfo>, Option<String>) {
        let objects = self
            .objects
            .into_iter()
            .map(|(key, record)| record.into_info(key))
            .collect();
        (objects, self.next)
    }
}

impl QueryContext<'_> {
    /// How `query` would run.
    pub(crate) fn explain(&self, query: &Query) -> QueryPlan {
        match plan(&query.filter, self.indexes, self.ts) {
            Some(p) => QueryPlan {
                access: "index".into(),
                detail: format!("index {} ({})", p.field, p.kind),
                index: Some(p.field),
            },
            None => QueryPlan {
                access: "scan".into(),
                index: None,
                detail: match query.key_prefix.as_deref().filter(|p| !p.is_empty()) {
                    Some(prefix) => format!("scan of the keys under prefix {prefix:?}"),
                    None => "full scan".into(),
                },
            },
        }
    }

    /// One page of results.
    pub(crate) fn page(&self, query: &Query) -> Result<Page> {
        query.filter.check_limits()?;
        let limit = match query.limit {
            None => DEFAULT_LIST_LIMIT,
            Some(0) => {
                return Err(Error::InvalidQuery {
                    reason: "limit 0 asks for an empty page; leave it out for the default".into(),
                })
            }
            Some(n) if n > MAX_LIST_LIMIT => {
                return Err(Error::InvalidQuery {
                    reason: format!("limit {n} is above the maximum {MAX_LIST_LIMIT}"),
                })
            }
            Some(n) => n,
        };
        // The query's fingerprint, which binds the cursors it reads and issues.
        let shape = query_shape(query);
        let position = decode_cursor(query, shape)?;
        match &query.sort {
            None => {
                let after = position.as_ref().map(|p| p.key.as_str());
                let mut matches = self.matches(query, after)?.peekable();
                // Index candidates say how many they are at most: no regrowth of a large page.
                let expected = matches.size_hint().1.unwrap_or(32).min(limit);
                let mut rows = Vec::with_capacity(expected);
                let mut bytes = 0;
                // Rows stay encoded until the page is complete: up to the limit, or until
                // their stored size reaches the byte budget (at least one row).
                while rows.len() < limit && bytes < PAGE_BYTES {
                    let Some(item) = matches.next() else {
                        break;
                    };
                    let (key, row) = item?;
                    bytes += row.stored_len();
                    rows.push((key, row));
                }
                let next = match matches.peek() {
                    Some(_) => rows
                        .last()
                        .map(|(key, _)| encode_cursor(shape, key, None))
                        .transpose()?,
                    None => None,
                };
                let mut objects = Vec::with_capacity(rows.len());
                decode_rows(&mut rows, &mut objects)?;
                Ok(Page { objects, next })
            }
            Some(sort) => self.sorted_page(query, sort, limit, shape, position),
        }
    }

    /// How many objects match (sort, limit and cursor ignored).
    pub(crate) fn count(&self, query: &Query) -> Result<u64> {
        query.filter.check_limits()?;
        let staged = self.overlay.is_some_and(|o| !o.is_empty());
        if let Some(exact) = plan(&query.filter, self.indexes, self.ts).filter(|p| p.exact) {
            if !staged {
                let prefix = query.key_prefix.as_deref().unwrap_or("").as_bytes();
                if prefix.is_empty() {
                    return self.count_visible(&exact);
                }
                let mut count = 0;
                self.visible_entries(&exact, |key, _| {
                    count += u64::from(key.starts_with(prefix));
                    Ok(())
                })?;
                return Ok(count);
            }
        }
        let mut count = 0;
        for item in self.matches(query, None)? {
            item?;
            count += 1;
        }
        Ok(count)
    }

    /// How many entries of an exact plan the snapshot sees. A point takes its count from its
    /// posting list or overflow marker where the snapshot may use them; a range walks its
    /// entries, but a value met with more than [`COUNT_LOOKUP_AFTER`] entries takes its count
    /// from its list or marker, if usable, and the walk seeks past it.
    fn count_visible(&self, plan: &IndexPlan) -> Result<u64> {
        let index = self.planned_index(plan)?;
        let mut total = 0;
        for (i, (start, end)) in plan.ranges.iter().enumerate() {
            if let Some(value) = plan.points.get(i) {
                if let Some(count) = PostingList::count(self.meta, index, value, self.ts)? {
                    total += count;
                    continue;
                }
            }
            total += self.count_range(index, start, end)?;
        }
        Ok(total)
    }

    /// The index a plan reads.
    fn planned_index(&self, plan: &IndexPlan) -> Result<&Index> {
        self.indexes
            .get(&plan.field)
            .ok_or_else(|| Error::internal("the planned index is gone"))
    }

    /// [`Self::count_visible`] of one range.
    fn count_range(
        &self,
        index: &Index,
        start: &Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
    ) -> Result<u64> {
        let malformed = || Error::internal("malformed index entry");
        let big = COUNT_LOOKUP_AFTER + 1;
        let mut total = 0;
        let mut lower = start.clone();
        'seek: loop {
            // The entries' common start (prefix and encoded value) of the current value, and
            // how many of its entries the snapshot sees.
            let mut value: Vec<u8> = Vec::new();
            let mut of_value = 0u64;
            for entry in self.meta.range(lower.clone(), end.clone()) {
                let (tree_key, entry_value) = entry?;
                let (encoded, _, ts) = tree_key
                    .get(index.prefix.len()..)
                    .and_then(split_index_entry)
                    .ok_or_else(malformed)?;
                let value_start = &tree_key[..index.prefix.len() + encoded.len()];
                if value_start != value.as_slice() {
                    value.clear();
                    value.extend_from_slice(value_start);
                    of_value = 0;
                }
                if entry_visible(ts, parse_entry_value(&entry_value).0, self.ts) {
                    total += 1;
                    of_value += 1;
                }
                if of_value == big {
                    let value_end = successor(&value);
                    let whole = admits_from(start, &value) && admits_until(end, &value_end);
                    let encoded = &value[index.prefix.len()..];
                    if whole {
                        if let Some(count) = PostingList::count(self.meta, index, encoded, self.ts)?
                        {
                            total = total - of_value + count;
                            lower = Bound::Included(value_end);
                            continue 'seek;
                        }
                    }
                }
            }
            return Ok(total);
        }
    }

    /// Sorted results, ordered by (field, key); the cursor is the position of the last item
    /// returned. Only the rows that can still make the page are kept while the matches are
    /// walked (at most `limit`, and no more than the byte budget needs), still encoded; only
    /// the page's rows are decoded in full.
    fn sorted_page(
        &self,
        query: &Query,
        sort: &SortSpec,
        limit: usize,
        shape: i64,
        position: Option<CursorPosition>,
    ) -> Result<Page> {
        let position = position
            .map(|p| Ranked::new(p.sort_value.unwrap_or(Value::Nil), p.key, sort.descending));
        let mut best = TopK::new(limit, PAGE_BYTES);
        for item in self.matches(query, None)? {
            let (key, row) = item?;
            let Some(value) = row.sort_value(&key, sort)? else {
                continue;
            };
            let ranked = Ranked::new(value, key, sort.descending);
            if position.as_ref().is_some_and(|p| ranked <= *p) {
                continue;
            }
            let len = row.stored_len();
            best.push(ranked, row, len);
        }
        let (taken, more) = best.into_page();
        let next = match taken.last() {
            Some((last, _)) if more => Some(encode_cursor(shape, &last.key, Some(&last.value))?),
            _ => None,
        };
        let mut rows: Vec<(Key, Row)> = taken.into_iter().map(|(r, row)| (r.key, row)).collect();
        let mut objects = Vec::with_capacity(rows.len());
        decode_rows(&mut rows, &mut objects)?;
        Ok(Page { objects, next })
    }

    /// Matching objects in key order, after the key `after` if given.
    fn matches<'q>(&'q self, query: &'q Query, after: Option<&'q str>) -> Result<Rows<'q>> {
        let prefix = query.key_prefix.as_deref().unwrap_or("");
        let in_range = move |key: &Key| {
            (prefix.is_empty() || key.as_str().starts_with(prefix))
                && after.is_none_or(|a| key.as_str() > a)
        };
        let index_plan = plan(&query.filter, self.indexes, self.ts);
        // An exact plan's candidates match by construction: no re-check.
        let exact = index_plan.as_ref().is_some_and(|p| p.exact);
        let candidates: Rows<'q> = match index_plan {
            Some(index_plan) => Box::new(self.index_candidates(&index_plan)?),
            None => Box::new(self.scan_candidates(prefix, after)),
        };
        let fields = query.filter.top_level_fields();
        Ok(Box::new(
            candidates
                .take_while(move |item| match item {
                    // A scan walks keys in order: past the prefix there is nothing more.
                    Ok((key, _)) => {
                        prefix.is_empty()
                            || key.as_str() < prefix
                            || key.as_str().starts_with(prefix)
                    }
                    Err(_) => true,
                })
                .filter_map(move |item| {
                    let (key, row) = match item {
                        Ok(found) => found,
                        Err(e) => return Some(Err(e)),
                    };
                    if !in_range(&key) {
                        return None;
                    }
                    if exact && !self.overlay.is_some_and(|o| o.contains_key(&key)) {
                        return Some(Ok((key, row)));
                    }
                    match row.satisfies(&key, &query.filter, &fields) {
                        Ok(true) => Some(Ok((key, row))),
                        Ok(false) => None,
                        Err(e) => Some(Err(e)),
                    }
                }),
        ))
    }

    /// Keys named by index entries the snapshot sees, plus staged keys; each taken from the
    /// overlay, the record its entry covers, or else read at the snapshot.
    fn index_candidates(
        &self,
        plan: &IndexPlan,
    ) -> Result<impl Iterator<Item = Result<(Key, Row)>> + '_> {
        // Each visible key, with its entry's value (which may cover the record). An equality
        // range lists its keys in order already; anything else is sorted here.
        let mut keys: Vec<(Key, Option<MetaBytes>)> = Vec::with_capacity(32);
        self.visible_entries(plan, |key, value| {
            keys.push((Key::from_bytes(key)?, Some(value.clone())));
            Ok(())
        })?;
        if let Some(overlay) = self.overlay {
            keys.extend(overlay.keys().map(|key| (key.clone(), None)));
        }
        if !keys.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            keys.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        Ok(keys.into_iter().filter_map(move |(key, value)| {
            let covered = value.filter(|v| parse_entry_value(v).1.is_some());
            let found = match (self.overlay.and_then(|o| o.get(&key)), covered) {
                (Some(staged), _) => Ok(staged.clone().map(Row::Decoded)),
                (None, Some(bytes)) => Ok(Some(Row::Encoded {
                    bytes,
                    offset: ENTRY_STAMP_LEN,
                })),
                (None, None) => read_at(self.meta, &key, self.ts).map(|r| r.map(Row::Decoded)),
            };
            found.map(|row| row.map(|row| (key, row))).transpose()
        }))
    }

    /// Calls `found` with the user key and the value of every entry in the plan's ranges whose
    /// version the snapshot sees; a point range from its posting list where the snapshot may
    /// use that.
    fn visible_entries(
        &self,
        plan: &IndexPlan,
        mut found: impl FnMut(&[u8], &MetaBytes) -> Result<()>,
    ) -> Result<()> {
        let index = self.planned_index(plan)?;
        for (i, (start, end)) in plan.ranges.iter().enumerate() {
            if let Some(value) = plan.points.get(i) {
                if let Some(list) = PostingList::read(self.meta, index, value, self.ts)? {
                    list.for_each(&mut found)?;
                    continue;
                }
            }
            for entry in self.meta.range(start.clone(), end.clone()) {
                let (tree_key, value) = entry?;
                let (_, key, ts) = tree_key
                    .get(index.prefix.len()..)
                    .and_then(split_index_entry)
                    .ok_or_else(|| Error::internal("malformed index entry"))?;
                if entry_visible(ts, parse_entry_value(&value).0, self.ts) {
                    found(key, &value)?;
                }
            }
        }
        Ok(())
    }

    /// Every object from the start of the range, merged with the overlay, in key order.
    fn scan_candidates<'q>(
        &'q self,
        prefix: &'q str,
        after: Option<&'q str>,
    ) -> impl Iterator<Item = Result<(Key, Row)>> + 'q {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.as_bytes()),
            _ if prefix.is_empty() => Bound::Unbounded,
            _ => Bound::Included(prefix.as_bytes()),
        };
        let mut base = scan_at(self.meta, start, self.ts)
            .map(|item| item.map(|(key, _, bytes)| (key, Row::Encoded { bytes, offset: 0 })))
            .peekable();
        let empty = Overlay::new();
        let overlay_items: Vec<(Key, Option<ObjectRecord>)> = self
            .overlay
            .unwrap_or(&empty)
            .iter()
            .filter(|(k, _)| k.as_str() >= prefix)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut staged = overlay_items.into_iter().peekable();
        std::iter::from_fn(move || loop {
            let next_base = match base.peek() {
                Some(Ok((key, _))) => Some(key.clone()),
                Some(Err(_)) => return base.next(),
                None => None,
            };
            let take_staged = match (&next_base, staged.peek()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(b), Some((s, _))) => s <= b,
            };
            if take_staged {
                let (key, state) = staged.next()?;
                if next_base.as_ref() == Some(&key) {
                    base.next();
                }
                match state {
                    Some(record) => return Some(Ok((key, Row::Decoded(record)))),
                    None => continue,
                }
            }
            return base.next();
        })
    }
}

/// Stored bytes (metadata and record) after which a page ends, whatever its row limit: 1 MiB
/// of metadata can decode to tens of MiB of value tree (a dense array of small numbers costs
/// ~32 bytes a number decoded, and more as JSON), so this is what bounds a page's memory.
pub(crate) const PAGE_BYTES: usize = 1 << 20;

/// Entries of one value a range count walks before it asks the value's posting list or
/// overflow marker for the rest (one point read and a seek; walking costs ~0.6 µs an entry).
const COUNT_LOOKUP_AFTER: u64 = 8;

/// Whether every tree key from `from` on satisfies a range's lower bound.
fn admits_from(lower: &Bound<Vec<u8>>, from: &[u8]) -> bool {
    match lower {
        Bound::Included(l) => l.as_slice() <= from,
        Bound::Excluded(l) => l.as_slice() < from,
        Bound::Unbounded => true,
    }
}

/// Whether every tree key below `until` satisfies a range's upper bound.
fn admits_until(upper: &Bound<Vec<u8>>, until: &[u8]) -> bool {
    match upper {
        Bound::Included(u) | Bound::Excluded(u) => until <= u.as_slice(),
        Bound::Unbounded => true,
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
fn decode_rows(rows: &mut Vec<(Key, Row)>, objects: &mut Vec<(Key, ObjectRecord)>) -> Result<()> {
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

/// Where a page resumes: after the last row of the previous page.
struct CursorPosition {
    key: Key,
    /// That row's sort value, for a sorted query.
    sort_value: Option<Value>,
}

/// A cursor: hex of the MessagePack array `[shape, key]` (`[shape, key, sort value]` for a
/// sorted query), where `shape` binds it to the query that issued it ([`query_shape`]).
fn encode_cursor(shape: i64, key: &Key, sort_value: Option<&Value>) -> Result<String> {
    let mut fields = vec![Value::Int(shape), Value::from(key.as_str())];
    fields.extend(sort_value.cloned());
    let bytes = encode(&Value::Array(fields))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The position named by `query.cursor`, which must be one this store issued for a query of
/// the same shape (filter, key prefix and sort): anything else is refused, never read as some
/// other position. `query_shape` is [`query_shape`] of `query`.
fn decode_cursor(query: &Query, query_shape: i64) -> Result<Option<CursorPosition>> {
    let Some(text) = query.cursor.as_deref() else {
        return Ok(None);
    };
    let invalid = |why: &str| Error::InvalidQuery {
        reason: format!("the cursor {why}; pass back the `next` of the previous page unchanged"),
    };
    let not_issued = || invalid("is not one this store issued");
    if text.len() % 2 != 0 || !text.is_ascii() {
        return Err(not_issued());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(not_issued)?;
    let Ok(Value::Array(fields)) = decode::<Value>(&bytes, "cursor") else {
        return Err(not_issued());
    };
    let mut fields = fields.into_iter();
    let (Some(Value::Int(shape)), Some(Value::String(key))) = (fields.next(), fields.next()) else {
        return Err(not_issued());
    };
    let sort_value = fields.next();
    if fields.next().is_some() || sort_value.is_some() != query.sort.is_some() {
        return Err(not_issued());
    }
    if shape != query_shape {
        return Err(invalid(
            "belongs to a query with another filter, key prefix or sort",
        ));
    }
    let key = Key::new(key).map_err(|_| not_issued())?;
    // Only the exact text issued: no trailing bytes, no other spelling of the same position.
    if encode_cursor(shape, &key, sort_value.as_ref())? != text {
        return Err(not_issued());
    }
    Ok(Some(CursorPosition { key, sort_value }))
}

/// A fingerprint of what a cursor's position means: the query's filter, key prefix and sort
/// (not its page size), as the first 8 bytes of the SHA-256 of their JSON form.
fn query_shape(query: &Query) -> i64 {
    let shape = Query {
        filter: query.filter.clone(),
        key_prefix: query.key_prefix.clone().filter(|p| !p.is_empty()),
        sort: query.sort.clone(),
        limit: None,
        cursor: None,
    };
    let digest = Sha256::digest(query_to_json(&shape).to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use asterope_core::{Metadata, Sha256Digest, Timestamp};

    use super::*;
    use crate::record::VersionRecord;

    fn record(i: usize) -> VersionRecord {
        let mut metadata = Metadata::new();
        metadata.insert("i".into(), Value::Int(i as i64));
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
                assert_eq!(record.metadata.get("i"), Some(&Value::Int(i as i64)));
                i
            })
            .collect();
        assert_eq!(got, expected);
    }
}

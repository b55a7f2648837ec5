//! Secondary indexes: which fields are indexed, the entries a version contributes, and the
//! index scans a filter can use.
//!
//! An entry maps (field, order-preserving encoded value, key, version) to the version's
//! *supersession* ([`entry_value`]): none while the version is its key's newest, else the commit
//! version that replaced it (or deleted the key), and, while it is the newest,
//! a copy of the version's record. A version whose field holds an array
//! contributes one entry per distinct scalar element. Entries are written in the same atomic
//! batch as the version, marked superseded in the batch that replaces it, and removed with it by
//! garbage collection; so an entry alone tells whether a snapshot sees its version:
//! `version <= snapshot < superseded`.
//!
//! A query reads candidates from an index and re-reads each at its snapshot, re-checking the
//! whole filter, so results are exactly those of a scan. When the index answers the filter
//! exactly (an [`IndexPlan::exact`] plan), a count needs no record at all: it counts the
//! entries its snapshot sees.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use asterope_core::{FieldPath, Filter, Metadata, Predicate, Value};
use asterope_serialization::{encode_ordered, encode_string_prefix};
use serde::{Deserialize, Serialize};

use crate::keys::{index_entry_key, index_prefix, posting_prefix};

/// Persisted state of an index definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct IndexDef {
    /// Snapshots at or after this version may use the index; `None` while it is being built.
    pub(crate) ready_at: Option<u64>,
    /// Some version has reached more than one value through this path (an array). Once set,
    /// range conditions can no longer be intersected into one key range: different values may
    /// satisfy different bounds.
    #[serde(default)]
    pub(crate) multikey: bool,
    /// Why the index could not be built, once that happened: it is then never used nor
    /// resumed, only listed and dropped ([`crate::index_build`]).
    #[serde(default)]
    pub(crate) failed: Option<String>,
    /// This incarnation's number, which its key prefixes are made of ([`crate::keys`]);
    /// `None` for an index declared before generations, whose prefixes name its field.
    #[serde(default)]
    pub(crate) generation: Option<u64>,
}

impl IndexDef {
    /// A freshly declared index, to be filled.
    pub(crate) fn building(generation: Option<u64>) -> IndexDef {
        IndexDef {
            ready_at: None,
            multikey: false,
            failed: None,
            generation,
        }
    }

    /// This definition, failed for `reason`.
    pub(crate) fn into_failed(self, reason: String) -> IndexDef {
        IndexDef {
            failed: Some(reason),
            ..self
        }
    }
}

/// An index as the engine uses it.
#[derive(Clone, Debug)]
pub(crate) struct Index {
    pub(crate) path: FieldPath,
    pub(crate) prefix: Vec<u8>,
    /// Prefix of this index's posting lists ([`crate::posting`]).
    pub(crate) posting_prefix: Vec<u8>,
    pub(crate) def: IndexDef,
    /// Live form of [`IndexDef::multikey`], shared with the index builder.
    multikey: Arc<AtomicBool>,
}

impl Index {
    pub(crate) fn new(field: &str, def: IndexDef) -> Index {
        Index {
            path: FieldPath::new(field),
            prefix: index_prefix(field, def.generation),
            posting_prefix: posting_prefix(field, def.generation),
            multikey: Arc::new(AtomicBool::new(def.multikey)),
            def,
        }
    }

    /// Whether some version reached several values through this index's path.
    pub(crate) fn is_multikey(&self) -> bool {
        self.multikey.load(Ordering::SeqCst)
    }

    /// Records that a version reached several values; true if this is news (the definition
    /// must then be persisted with the flag).
    pub(crate) fn mark_multikey(&self) -> bool {
        !self.multikey.swap(true, Ordering::SeqCst)
    }

    /// The definition as it must be persisted now.
    pub(crate) fn current_def(&self) -> IndexDef {
        IndexDef {
            ready_at: self.def.ready_at,
            multikey: self.is_multikey(),
            failed: self.def.failed.clone(),
            generation: self.def.generation,
        }
    }

    /// The tree keys of the entries contributed by one version of `key`: one per distinct
    /// scalar value the path reaches, the elements of an array included.
    pub(crate) fn entries(&self, key: &[u8], version: u64, metadata: &Metadata) -> Vec<Vec<u8>> {
        self.values(metadata)
            .into_iter()
            .map(|value| index_entry_key(&self.prefix, &value, key, version))
            .collect()
    }

    /// The distinct order-preserving encodings of the scalar values the path reaches in a
    /// document, the elements of an array included.
    pub(crate) fn values(&self, metadata: &Metadata) -> BTreeSet<Vec<u8>> {
        let mut encoded = BTreeSet::new();
        for value in self.path.resolve(metadata) {
            let elements = match value {
                Value::Array(items) => items.iter().collect(),
                scalar => vec![scalar],
            };
            for element in elements {
                let mut out = Vec::new();
                if encode_ordered(element, &mut out) {
                    encoded.insert(out);
                }
            }
        }
        encoded
    }

    /// Whether a snapshot at version `snapshot` may use this index.
    pub(crate) fn usable_at(&self, snapshot: u64) -> bool {
        self.def.failed.is_none() && self.def.ready_at.is_some_and(|ready| ready <= snapshot)
    }
}

/// A range of tree keys.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);
/// Ranges of tree keys (within one index) holding every candidate of a predicate.
pub(crate) type KeyRanges = Vec<KeyRange>;

/// An index access chosen for a filter.
#[derive(Debug)]
pub(crate) struct IndexPlan {
    pub(crate) field: String,
    pub(crate) ranges: KeyRanges,
    pub(crate) kind: &'static str,
    /// The visible entries in `ranges` are exactly the objects the whole filter selects, once
    /// each: the filter is this one condition (or conjunction of comparisons on this field),
    /// every operand is encoded injectively, and the index is not multikey.
    pub(crate) exact: bool,
    /// For an equality or `$in` plan, the encoded value of each range (one point each), whose
    /// posting list may stand in for the range; empty otherwise.
    pub(crate) points: Vec<Vec<u8>>,
}

/// The value of an index entry: when its version was superseded (8 bytes BE, `u64::MAX` while
/// it is its key's newest), then, for a newest version that contributes a single entry, the
/// version's encoded record, so that a query reads the object from the index entry itself
/// instead of looking the key up (a covering index). Superseded and multikey entries carry no
/// record.
pub(crate) fn entry_value(superseded: Option<u64>, record: Option<&[u8]>) -> Vec<u8> {
    let superseded = superseded.unwrap_or(u64::MAX).to_be_bytes();
    match record {
        Some(record) => [&superseded[..], record].concat(),
        None => superseded.to_vec(),
    }
}

/// Length of the superseding version that starts an entry's value (a covered record follows).
pub(crate) const SUPERSEDED_LEN: usize = 8;

/// Splits an entry value into supersession and covered record.
pub(crate) fn parse_entry_value(value: &[u8]) -> (u64, Option<&[u8]>) {
    match value.split_first_chunk::<SUPERSEDED_LEN>() {
        Some((superseded, record)) => (
            u64::from_be_bytes(*superseded),
            (!record.is_empty()).then_some(record),
        ),
        None => (u64::MAX, None),
    }
}

/// Whether a snapshot at `snapshot` sees the version an index entry belongs to.
pub(crate) fn entry_visible(version: u64, superseded: u64, snapshot: u64) -> bool {
    version <= snapshot && snapshot < superseded
}

/// Picks an index for the filter: the best field condition of its top-level conjunction that an
/// index usable at version `snapshot` can answer (equality, then `$in`, then ranges, then
/// prefixes). Range conditions on one field in separate conjuncts (`{"$and": [{"d": {"$gte": a}},
/// {"d": {"$lt": b}}]}`) are combined into one range.
pub(crate) fn plan(
    filter: &Filter,
    indexes: &BTreeMap<String, Index>,
    snapshot: u64,
) -> Option<IndexPlan> {
    let conjuncts: Vec<&Filter> = match filter {
        Filter::And(parts) => parts.iter().collect(),
        other => vec![other],
    };
    // The one field every conjunct conditions, if there is one.
    let single_field = conjuncts
        .iter()
        .map(|c| match c {
            Filter::Field { path, .. } => Some(path.to_string()),
            _ => None,
        })
        .reduce(|a, b| if a == b { a } else { None })
        .flatten();
    let only_comparisons = conjuncts.iter().all(|c| match c {
        Filter::Field { predicate, .. } => match predicate {
            Predicate::All(parts) => parts.iter().all(is_comparison),
            p => is_comparison(p),
        },
        _ => false,
    });
    let mut comparisons: BTreeMap<String, Vec<Predicate>> = BTreeMap::new();
    let mut best: Option<(u8, IndexPlan)> = None;
    let mut consider = |rank: u8, plan: IndexPlan| {
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, plan));
        }
    };
    let single_conjunct = conjuncts.len() == 1;
    for conjunct in conjuncts {
        let Filter::Field { path, predicate } = conjunct else {
            continue;
        };
        let field = path.to_string();
        let Some(index) = indexes.get(&field).filter(|i| i.usable_at(snapshot)) else {
            continue;
        };
        match predicate {
            Predicate::All(parts) if parts.iter().all(is_comparison) => {
                comparisons
                    .entry(field)
                    .or_default()
                    .extend(parts.iter().cloned());
            }
            p if is_comparison(p) => comparisons.entry(field).or_default().push(p.clone()),
            p => {
                if let Some((rank, kind, ranges, points)) = ranges_for(p, &index.prefix) {
                    let exact = single_field.as_deref() == Some(field.as_str())
                        && single_conjunct
                        && !index.is_multikey()
                        && operands(p).iter().all(|v| exact_operand(v));
                    consider(
                        rank,
                        IndexPlan {
                            field,
                            ranges,
                            kind,
                            exact,
                            points,
                        },
                    );
                }
            }
        }
    }
    for (field, mut parts) in comparisons {
        let Some(index) = indexes.get(&field) else {
            continue;
        };
        let exact = single_field.as_deref() == Some(field.as_str())
            && only_comparisons
            && !index.is_multikey()
            && parts.iter().flat_map(operands).all(exact_operand);
        if index.is_multikey() {
            // One bound only: each bound may be met by a different value of the document.
            parts.truncate(1);
        }
        if let Some(range) = range(&parts, &index.prefix) {
            consider(
                2,
                IndexPlan {
                    field,
                    ranges: vec![range],
                    kind: "range",
                    exact,
                    points: Vec::new(),
                },
            );
        }
    }
    best.map(|(_, plan)| plan)
}

/// Key ranges answering a predicate, with a preference rank (lower is better), and the
/// encoded values of point ranges ([`IndexPlan::points`]).
fn ranges_for(
    predicate: &Predicate,
    prefix: &[u8],
) -> Option<(u8, &'static str, KeyRanges, Vec<Vec<u8>>)> {
    let points = |values: &[Vec<u8>]| -> KeyRanges {
        values
            .iter()
            .map(|value| {
                let start = [prefix, value].concat();
                let end = successor(&start);
                (Bound::Included(start), Bound::Excluded(end))
            })
            .collect()
    };
    match predicate {
        Predicate::Eq(value) => {
            let values = vec![encode_scalar(value)?];
            Some((0, "equality", points(&values), values))
        }
        Predicate::In(values) if !values.is_empty() => {
            let mut values = values
                .iter()
                .map(encode_scalar)
                .collect::<Option<Vec<_>>>()?;
            // Equal operands (5 and 5.0 too) must not yield an entry twice.
            values.sort();
            values.dedup();
            Some((1, "$in", points(&values), values))
        }
        Predicate::Gt(_) | Predicate::Gte(_) | Predicate::Lt(_) | Predicate::Lte(_) => Some((
            2,
            "range",
            vec![range(std::slice::from_ref(predicate), prefix)?],
            Vec::new(),
        )),
        Predicate::Prefix(text) => {
            let mut start = prefix.to_vec();
            encode_string_prefix(text, &mut start);
            let end = successor(&start);
            Some((
                3,
                "prefix",
                vec![(Bound::Included(start), Bound::Excluded(end))],
                Vec::new(),
            ))
        }
        _ => None,
    }
}

/// The operands of an index-answerable predicate.
fn operands(predicate: &Predicate) -> Vec<&Value> {
    match predicate {
        Predicate::Eq(v)
        | Predicate::Gt(v)
        | Predicate::Gte(v)
        | Predicate::Lt(v)
        | Predicate::Lte(v) => vec![v],
        Predicate::In(values) => values.iter().collect(),
        Predicate::All(parts) => parts.iter().flat_map(operands).collect(),
        _ => Vec::new(),
    }
}

/// Whether entries equal in encoding to this operand are exactly the values equal to it:
/// true but for numbers at or beyond 2^53 (and NaN), whose `f64` encoding may be shared by
/// distinct values. A `$prefix` operand is a string and always exact.
fn exact_operand(value: &Value) -> bool {
    const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    #[allow(clippy::cast_precision_loss)] // Compared against a limit far inside f64's range.
    match value {
        Value::Int(n) => (*n as f64).abs() < EXACT_LIMIT,
        Value::Float(f) => f.is_finite() && f.abs() < EXACT_LIMIT,
        _ => true,
    }
}

fn is_comparison(predicate: &Predicate) -> bool {
    matches!(
        predicate,
        Predicate::Gt(_) | Predicate::Gte(_) | Predicate::Lt(_) | Predicate::Lte(_)
    )
}

/// The key range of a conjunction of comparisons. Comparisons only match values of the
/// operand's type class, so an open side ends at the class boundary. A strict bound excludes
/// the operand's own entries only where the encoding is injective ([`exact_operand`]): numbers
/// beyond 2^53 may share an encoding with their neighbours, so there the bound stays inclusive
/// and the executor's re-check removes what does not match.
fn range(parts: &[Predicate], prefix: &[u8]) -> Option<KeyRange> {
    let mut lower: Option<Vec<u8>> = None;
    let mut upper: Option<Vec<u8>> = None;
    let mut class: Option<u8> = None;
    for part in parts {
        let (Predicate::Gt(v) | Predicate::Gte(v) | Predicate::Lt(v) | Predicate::Lte(v)) = part
        else {
            return None;
        };
        let encoded = encode_scalar(v)?;
        let tag = *encoded.first()?;
        if class.is_some_and(|c| c != tag) {
            return None;
        }
        class = Some(tag);
        let key = [prefix, &encoded].concat();
        let strict = exact_operand(v);
        // The tightest bound on each side wins.
        match part {
            Predicate::Gt(_) | Predicate::Gte(_) => {
                let bound = match part {
                    Predicate::Gt(_) if strict => successor(&key),
                    _ => key,
                };
                lower = Some(lower.map_or(bound.clone(), |l| l.max(bound)));
            }
            _ => {
                let bound = match part {
                    Predicate::Lt(_) if strict => key,
                    _ => successor(&key),
                };
                upper = Some(upper.map_or(bound.clone(), |u| u.min(bound)));
            }
        }
    }
    let class = class?;
    // An open lower side starts at the class, past NaN for numbers (NaN encodes lowest and
    // matches no comparison).
    let lower = lower.unwrap_or_else(|| {
        let nan = encode_scalar(&Value::Float(f64::NAN)).filter(|nan| nan.first() == Some(&class));
        match nan {
            Some(nan) => successor(&[prefix, &nan].concat()),
            None => [prefix, &[class]].concat(),
        }
    });
    let upper = upper.unwrap_or_else(|| [prefix, &[class.saturating_add(1)]].concat());
    Some((Bound::Included(lower), Bound::Excluded(upper)))
}

/// Encodes a scalar operand usable for an index lookup (`null` is not: it also matches
/// missing fields, which have no entries).
fn encode_scalar(value: &Value) -> Option<Vec<u8>> {
    if matches!(value, Value::Nil) {
        return None;
    }
    let mut out = Vec::new();
    encode_ordered(value, &mut out).then_some(out)
}

/// The smallest byte string greater than every string starting with `prefix`.
pub(crate) fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return out;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

//! The metadata predicate query language: the [`Filter`] AST and its evaluation against a
//! metadata document, the total order of [`Value`]s used for sorting ([`compare_values`]), the
//! typed builder ([`field`], [`and`], [`or`], [`not`]), the [`Query`] request (filter, key prefix,
//! sort, limit, cursor) and the limits every filter must respect.
//!
//! Semantics follow MongoDB:
//!
//! * A [`FieldPath`] such as `study.series.count` descends into nested maps. When a value along
//!   the path is an array, the lookup continues into every element of it that is a map; the
//!   value at the end of the path, when it is an array, stands for each of its elements too.
//!   A predicate matches when **any** of the values so reached matches (for equality the whole
//!   array also compares against an array operand).
//! * Numbers compare across [`Value::Int`] and [`Value::Float`] exactly (`1 == 1.0`,
//!   `2 < 2.5`, no rounding of large integers); timestamps compare in time order; strings and
//!   binaries bytewise; `false < true`.
//! * Range operators (`$gt`, `$gte`, `$lt`, `$lte`) only match values of the operand's class
//!   (numbers, strings, binaries, booleans or timestamps); any other value is simply no match,
//!   never an error. `NaN` matches no range operator.
//! * `$eq: null` matches a null value and a missing field; `$ne` and `$nin` are the negations of
//!   `$eq` and `$in`, so they match a missing field.
//!
//! The JSON syntax of filters lives in asterope-serialization; the index planner in
//! asterope-storage.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Metadata, Result, Value};

/// Deepest nesting of a filter, counting every [`Filter`] and [`Predicate`] node on the longest
/// path from the root (so `{"a": 1}` is 2 deep: the field node and its `$eq`).
pub const MAX_FILTER_DEPTH: usize = 32;
/// Longest operand list of one `$in` or `$nin`.
pub const MAX_IN_LIST_LEN: usize = 10_000;
/// Most [`Filter`] plus [`Predicate`] nodes in one filter (list operands do not count).
pub const MAX_FILTER_NODES: usize = 10_000;

/// A dotted path into a metadata document: `study.series.count` is the segments `study`,
/// `series`, `count`.
///
/// Segments are map keys; there is no array-index syntax (arrays are searched element by element,
/// see [`Filter`] and docs/QUERY.md). A key that itself contains a dot cannot be addressed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Splits a dotted path without checking it; empty segments are kept and look up the key `""`.
    /// Used by the builder, where a typo cannot be reported; [`FieldPath::parse`] refuses them.
    pub fn new(dotted: &str) -> FieldPath {
        FieldPath {
            segments: dotted.split('.').map(str::to_string).collect(),
        }
    }

    /// Parses a dotted path, refusing with [`Error::InvalidQuery`] an empty path, an empty
    /// segment (`a..b`, `.a`, `a.`), and control characters (NUL included): a path names index
    /// keys, threads and log lines, where such characters are ambiguous or refused.
    pub fn parse(dotted: &str) -> Result<FieldPath> {
        if dotted.is_empty() {
            return Err(Error::InvalidQuery {
                reason: "empty field path".to_string(),
            });
        }
        if dotted.chars().any(char::is_control) {
            return Err(Error::InvalidQuery {
                reason: format!("field path {dotted:?} contains a control character"),
            });
        }
        let path = FieldPath::new(dotted);
        if path.segments.iter().any(String::is_empty) {
            return Err(Error::InvalidQuery {
                reason: format!("field path {dotted:?} has an empty segment"),
            });
        }
        Ok(path)
    }

    /// The path's segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Every value the path reaches in `metadata`, fanning out through arrays along the way (an
    /// array met before the last segment is searched in each of its map elements). The result is
    /// empty when the field is missing. An array at the end of the path is returned as one value;
    /// predicates look at it and at each of its elements.
    pub fn resolve<'a>(&self, metadata: &'a Metadata) -> Vec<&'a Value> {
        let Some((first, rest)) = self.segments.split_first() else {
            return Vec::new();
        };
        let mut reached: Vec<&'a Value> = metadata.get(first.as_str()).into_iter().collect();
        for segment in rest {
            let mut next = Vec::new();
            for value in reached {
                match value {
                    Value::Map(map) => next.extend(map.get(segment.as_str())),
                    Value::Array(items) => {
                        for item in items {
                            if let Value::Map(map) = item {
                                next.extend(map.get(segment.as_str()));
                            }
                        }
                    }
                    _ => {}
                }
            }
            reached = next;
        }
        reached
    }

    /// The single value at the path, descending through maps only (no array fan-out); `None`
    /// when any step is missing or not a map. This is the sort key of [`SortSpec`].
    pub fn lookup<'a>(&self, metadata: &'a Metadata) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = metadata.get(first.as_str())?;
        for segment in rest {
            match value {
                Value::Map(map) => value = map.get(segment.as_str())?,
                _ => return None,
            }
        }
        Some(value)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("."))
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({:?})", self.to_string())
    }
}

impl FromStr for FieldPath {
    type Err = Error;

    fn from_str(dotted: &str) -> Result<FieldPath> {
        FieldPath::parse(dotted)
    }
}

impl From<&str> for FieldPath {
    fn from(dotted: &str) -> FieldPath {
        FieldPath::new(dotted)
    }
}

impl From<String> for FieldPath {
    fn from(dotted: String) -> FieldPath {
        FieldPath::new(&dotted)
    }
}

/// A condition on one field's values (the right-hand side of `{"field": ...}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// Equal to the operand (numbers across int/float; an array field also matches when any
    /// element is equal). `Eq(Nil)` also matches a missing field.
    Eq(Value),
    /// Not [`Predicate::Eq`]: matches a missing field.
    Ne(Value),
    /// Greater than the operand, within the operand's comparable class.
    Gt(Value),
    /// Greater than or equal to the operand, within the operand's comparable class.
    Gte(Value),
    /// Less than the operand, within the operand's comparable class.
    Lt(Value),
    /// Less than or equal to the operand, within the operand's comparable class.
    Lte(Value),
    /// Equal to any of the operands.
    In(Vec<Value>),
    /// Not [`Predicate::In`]: matches a missing field.
    Nin(Vec<Value>),
    /// `true`: the path reaches at least one value (null included); `false`: it reaches none.
    Exists(bool),
    /// A string value starting with the given prefix (bytewise); non-strings never match.
    Prefix(String),
    /// The inner predicate does not match (a missing field therefore matches `Not(Gt(..))`).
    Not(Box<Predicate>),
    /// Every predicate matches, each on its own (`{"$gt": 1, "$lt": 5}`); on an array field each
    /// may be satisfied by a different element, as in MongoDB.
    All(Vec<Predicate>),
}

impl Predicate {
    /// Whether the predicate holds for the values a path reached (see [`FieldPath::resolve`]).
    pub fn matches_values(&self, values: &[&Value]) -> bool {
        match self {
            Predicate::Eq(operand) => equality_matches(operand, values),
            Predicate::Ne(operand) => !equality_matches(operand, values),
            Predicate::Gt(operand) => range_matches(operand, values, Ordering::is_gt),
            Predicate::Gte(operand) => range_matches(operand, values, Ordering::is_ge),
            Predicate::Lt(operand) => range_matches(operand, values, Ordering::is_lt),
            Predicate::Lte(operand) => range_matches(operand, values, Ordering::is_le),
            Predicate::In(operands) => operands.iter().any(|o| equality_matches(o, values)),
            Predicate::Nin(operands) => !operands.iter().any(|o| equality_matches(o, values)),
            Predicate::Exists(wanted) => values.is_empty() != *wanted,
            Predicate::Prefix(prefix) => any_candidate(
                values,
                |v| matches!(v, Value::String(s) if s.starts_with(prefix.as_str())),
            ),
            Predicate::Not(inner) => !inner.matches_values(values),
            Predicate::All(predicates) => predicates.iter().all(|p| p.matches_values(values)),
        }
    }

    /// The operator name of this predicate in the JSON syntax (`"$eq"`, `"$gt"`, ...); `All` has
    /// none of its own and answers `"$all"`.
    pub fn operator_name(&self) -> &'static str {
        match self {
            Predicate::Eq(_) => "$eq",
            Predicate::Ne(_) => "$ne",
            Predicate::Gt(_) => "$gt",
            Predicate::Gte(_) => "$gte",
            Predicate::Lt(_) => "$lt",
            Predicate::Lte(_) => "$lte",
            Predicate::In(_) => "$in",
            Predicate::Nin(_) => "$nin",
            Predicate::Exists(_) => "$exists",
            Predicate::Prefix(_) => "$prefix",
            Predicate::Not(_) => "$not",
            Predicate::All(_) => "$all",
        }
    }
}

/// Calls `test` on every candidate: each reached value, and each element of a reached array.
fn any_candidate(values: &[&Value], mut test: impl FnMut(&Value) -> bool) -> bool {
    values.iter().any(|value| {
        test(value) || matches!(value, Value::Array(items) if items.iter().any(&mut test))
    })
}

fn equality_matches(operand: &Value, values: &[&Value]) -> bool {
    if values.is_empty() {
        return matches!(operand, Value::Nil);
    }
    any_candidate(values, |v| compare_values(v, operand) == Ordering::Equal)
}

fn range_matches(operand: &Value, values: &[&Value], accept: fn(Ordering) -> bool) -> bool {
    any_candidate(values, |v| range_compare(v, operand).is_some_and(accept))
}

/// Orders two values of the same comparable class (numbers, strings, binaries, booleans,
/// timestamps); `None` across classes, for containers and nulls, and when a NaN is involved.
fn range_compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Binary(x), Value::Binary(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        _ => compare_numbers(a, b),
    }
}

/// Exact numeric order across ints and floats; `None` if either is not a number or is NaN.
fn compare_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => compare_int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => compare_int_float(*y, *x).map(Ordering::reverse),
        _ => None,
    }
}

/// Compares an integer with a float without rounding the integer; `None` for NaN.
fn compare_int_float(int: i64, float: f64) -> Option<Ordering> {
    /// 2^63, exactly representable as a float; `i64::MAX < TWO_POW_63`.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if float < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // In [-2^63, 2^63) and integral, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole_int = whole as i64;
    Some(int.cmp(&whole_int).then_with(|| {
        // Equal whole parts: the fraction decides.
        if float > whole {
            Ordering::Less
        } else if float < whole {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

/// Rank of a value's type class in the total order of [`compare_values`].
fn class_rank(value: &Value) -> u8 {
    match value {
        Value::Nil => 0,
        Value::Int(_) | Value::Float(_) => 1,
        Value::String(_) => 2,
        Value::Binary(_) => 3,
        Value::Bool(_) => 4,
        Value::Timestamp(_) => 5,
        Value::Array(_) => 6,
        Value::Map(_) => 7,
    }
}

/// The total order of values used for sorting and for equality in filters.
///
/// Values of different type classes order by class:
/// null < numbers < strings < binaries < booleans < timestamps < arrays < maps.
/// Within a class:
///
/// * numbers compare by mathematical value across ints and floats (`1 == 1.0`, exactly, also for
///   integers beyond 2^53); NaN equals NaN and sorts before every other number; `-0.0 == 0.0`;
/// * strings and binaries compare bytewise; `false < true`; timestamps in time order;
/// * arrays compare element by element, then by length (a prefix sorts first);
/// * maps compare entry by entry in key order (key bytewise, then value), then by size.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    let by_class = class_rank(a).cmp(&class_rank(b));
    if by_class != Ordering::Equal {
        return by_class;
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare_values(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Map(x), Value::Map(y)) => x
            .iter()
            .zip(y)
            .map(|((ka, va), (kb, vb))| {
                ka.as_bytes()
                    .cmp(kb.as_bytes())
                    .then_with(|| compare_values(va, vb))
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => range_compare(a, b).unwrap_or_else(|| {
            // Same class and not comparable: both null, or a NaN is involved.
            let is_nan = |v: &Value| matches!(v, Value::Float(f) if f.is_nan());
            is_nan(b).cmp(&is_nan(a))
        }),
    }
}

/// A filter over metadata documents (JSON syntax and full reference: docs/QUERY.md).
///
/// Semantics follow MongoDB: a [`FieldPath`] descends nested maps and fans out through arrays;
/// a predicate matches when **any** value reached matches (or, for equality, a whole array);
/// numbers compare across int and float exactly; range operators only match values of the
/// operand's class (a type mismatch is no match, never an error); `$eq: null` also matches a
/// missing field, and `$ne`, `$nin` and field-level `Not` match missing fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Filter {
    /// Matches every document (the empty filter `{}`).
    #[default]
    True,
    /// Every filter matches (an empty list matches everything).
    And(Vec<Filter>),
    /// At least one filter matches (an empty list matches nothing).
    Or(Vec<Filter>),
    /// The filter does not match.
    Not(Box<Filter>),
    /// The values at a path satisfy a predicate.
    Field {
        /// Where in the document to look.
        path: FieldPath,
        /// What the values there must satisfy.
        predicate: Predicate,
    },
}

/// Size measures of a filter, gathered without recursion.
struct FilterShape {
    depth: usize,
    nodes: usize,
    longest_list: usize,
}

impl Filter {
    /// Whether the document satisfies the filter.
    ///
    /// Evaluation recurses once per nesting level; filters from the JSON parser are at most
    /// [`MAX_FILTER_DEPTH`] deep, and [`Filter::check_limits`] checks hand-built ones.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        match self {
            Filter::True => true,
            Filter::And(filters) => filters.iter().all(|f| f.matches(metadata)),
            Filter::Or(filters) => filters.iter().any(|f| f.matches(metadata)),
            Filter::Not(inner) => !inner.matches(metadata),
            Filter::Field { path, predicate } => predicate.matches_values(&path.resolve(metadata)),
        }
    }

    /// The top-level fields the filter looks at (the first segment of each path): a document
    /// cut down to these fields matches exactly when the whole document does.
    pub fn top_level_fields(&self) -> std::collections::BTreeSet<&str> {
        let mut fields = std::collections::BTreeSet::new();
        let mut pending = vec![self];
        while let Some(filter) = pending.pop() {
            match filter {
                Filter::True => {}
                Filter::And(parts) | Filter::Or(parts) => pending.extend(parts),
                Filter::Not(inner) => pending.push(inner),
                Filter::Field { path, .. } => {
                    fields.extend(path.segments().first().map(String::as_str));
                }
            }
        }
        fields
    }

    /// Both this filter and `other`; chains flatten (`a.and(b).and(c)` is `And([a, b, c])`, the
    /// same AST as the JSON `{"a": .., "b": .., "c": ..}`).
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut filters) => {
                filters.push(other);
                Filter::And(filters)
            }
            first => Filter::And(vec![first, other]),
        }
    }

    /// This filter or `other`; chains flatten like [`Filter::and`].
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut filters) => {
                filters.push(other);
                Filter::Or(filters)
            }
            first => Filter::Or(vec![first, other]),
        }
    }

    /// Nesting depth: the number of [`Filter`] and [`Predicate`] nodes on the longest path from
    /// the root (`True` is 1, a field with a plain predicate 2).
    pub fn depth(&self) -> usize {
        self.shape().depth
    }

    /// Number of [`Filter`] and [`Predicate`] nodes.
    pub fn node_count(&self) -> usize {
        self.shape().nodes
    }

    /// Checks [`MAX_FILTER_DEPTH`], [`MAX_FILTER_NODES`] and [`MAX_IN_LIST_LEN`], with
    /// [`Error::InvalidQuery`]. The JSON parser enforces them as it goes; call this for filters
    /// built in code before handing them to a store. Runs without recursion, so even an absurdly
    /// deep filter is measured safely.
    pub fn check_limits(&self) -> Result<()> {
        let shape = self.shape();
        let refuse = |reason: String| Err(Error::InvalidQuery { reason });
        if shape.depth > MAX_FILTER_DEPTH {
            return refuse(format!(
                "filter is nested {} levels deep, more than the limit of {MAX_FILTER_DEPTH}",
                shape.depth
            ));
        }
        if shape.nodes > MAX_FILTER_NODES {
            return refuse(format!(
                "filter has {} nodes, more than the limit of {MAX_FILTER_NODES}",
                shape.nodes
            ));
        }
        if shape.longest_list > MAX_IN_LIST_LEN {
            return refuse(format!(
                "an $in/$nin list has {} values, more than the limit of {MAX_IN_LIST_LEN}",
                shape.longest_list
            ));
        }
        Ok(())
    }

    fn shape(&self) -> FilterShape {
        enum Node<'a> {
            Filter(&'a Filter),
            Predicate(&'a Predicate),
        }
        let mut shape = FilterShape {
            depth: 0,
            nodes: 0,
            longest_list: 0,
        };
        let mut pending = vec![(Node::Filter(self), 1usize)];
        while let Some((node, depth)) = pending.pop() {
            shape.nodes += 1;
            shape.depth = shape.depth.max(depth);
            match node {
                Node::Filter(Filter::True) => {}
                Node::Filter(Filter::And(filters) | Filter::Or(filters)) => {
                    pending.extend(filters.iter().map(|f| (Node::Filter(f), depth + 1)));
                }
                Node::Filter(Filter::Not(inner)) => pending.push((Node::Filter(inner), depth + 1)),
                Node::Filter(Filter::Field { predicate, .. }) => {
                    pending.push((Node::Predicate(predicate), depth + 1));
                }
                Node::Predicate(Predicate::Not(inner)) => {
                    pending.push((Node::Predicate(inner), depth + 1));
                }
                Node::Predicate(Predicate::All(predicates)) => {
                    pending.extend(predicates.iter().map(|p| (Node::Predicate(p), depth + 1)));
                }
                Node::Predicate(Predicate::In(list) | Predicate::Nin(list)) => {
                    shape.longest_list = shape.longest_list.max(list.len());
                }
                Node::Predicate(_) => {}
            }
        }
        shape
    }
}

/// Starts a condition on a field: `field("study.date").gt(timestamp)`.
pub fn field(path: impl Into<FieldPath>) -> FieldCondition {
    FieldCondition { path: path.into() }
}

/// All of the filters (`{"$and": [...]}`).
pub fn and(filters: impl IntoIterator<Item = Filter>) -> Filter {
    Filter::And(filters.into_iter().collect())
}

/// Any of the filters (`{"$or": [...]}`).
pub fn or(filters: impl IntoIterator<Item = Filter>) -> Filter {
    Filter::Or(filters.into_iter().collect())
}

/// The negation of a filter (`{"$not": ...}`).
pub fn not(filter: Filter) -> Filter {
    Filter::Not(Box::new(filter))
}

/// A field named by [`field`], waiting for its operator; each method yields a [`Filter`].
#[derive(Clone, Debug, PartialEq)]
pub struct FieldCondition {
    path: FieldPath,
}

impl FieldCondition {
    /// The field satisfies any predicate (for example [`Predicate::All`]).
    pub fn matching(self, predicate: Predicate) -> Filter {
        Filter::Field {
            path: self.path,
            predicate,
        }
    }

    /// Equal to `value` (`$eq`).
    pub fn eq(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Eq(value.into()))
    }

    /// Not equal to `value`, or missing (`$ne`).
    pub fn ne(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Ne(value.into()))
    }

    /// Greater than `value` (`$gt`).
    pub fn gt(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Gt(value.into()))
    }

    /// Greater than or equal to `value` (`$gte`).
    pub fn gte(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Gte(value.into()))
    }

    /// Less than `value` (`$lt`).
    pub fn lt(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Lt(value.into()))
    }

    /// Less than or equal to `value` (`$lte`).
    pub fn lte(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Lte(value.into()))
    }

    /// Equal to any of `values` (`$in`).
    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.matching(Predicate::In(values.into_iter().map(Into::into).collect()))
    }

    /// Equal to none of `values`, or missing (`$nin`).
    pub fn not_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.matching(Predicate::Nin(values.into_iter().map(Into::into).collect()))
    }

    /// Present (`true`) or absent (`false`) (`$exists`).
    pub fn exists(self, present: bool) -> Filter {
        self.matching(Predicate::Exists(present))
    }

    /// A string starting with `prefix` (`$prefix`).
    pub fn prefix(self, prefix: impl Into<String>) -> Filter {
        self.matching(Predicate::Prefix(prefix.into()))
    }
}

/// Order of query results by one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortSpec {
    /// The field sorted on; its value is taken with [`FieldPath::lookup`] (maps only, a missing
    /// field sorts as null).
    pub path: FieldPath,
    /// Largest first when `true`.
    pub descending: bool,
}

impl SortSpec {
    /// Smallest first by `path`.
    pub fn ascending_by(path: impl Into<FieldPath>) -> SortSpec {
        SortSpec {
            path: path.into(),
            descending: false,
        }
    }

    /// Largest first by `path`.
    pub fn descending_by(path: impl Into<FieldPath>) -> SortSpec {
        SortSpec {
            path: path.into(),
            descending: true,
        }
    }

    /// Parses the request form: `"field.path"` (ascending) or `"-field.path"` (descending).
    pub fn parse(text: &str) -> Result<SortSpec> {
        let (descending, dotted) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let path = FieldPath::parse(dotted).map_err(|e| Error::InvalidQuery {
            reason: format!("invalid sort {text:?}: {}", query_reason(e)),
        })?;
        Ok(SortSpec { path, descending })
    }

    /// Orders two documents by this spec, with [`compare_values`] (a missing field is null).
    /// Ties are left to the caller, which breaks them by key.
    pub fn compare(&self, a: &Metadata, b: &Metadata) -> Ordering {
        let key = |m| self.path.lookup(m).unwrap_or(&Value::Nil);
        let order = compare_values(key(a), key(b));
        if self.descending {
            order.reverse()
        } else {
            order
        }
    }
}

impl fmt::Display for SortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.descending { "-" } else { "" };
        write!(f, "{sign}{}", self.path)
    }
}

fn query_reason(error: Error) -> String {
    match error {
        Error::InvalidQuery { reason } => reason,
        other => other.to_string(),
    }
}

/// A metadata query: which objects (filter and key prefix), in what order, and which page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Condition on the metadata; [`Filter::True`] selects everything.
    pub filter: Filter,
    /// Only keys starting with this prefix.
    pub key_prefix: Option<String>,
    /// Result order; by key when `None`.
    pub sort: Option<SortSpec>,
    /// Most results in one page; the store's default when `None`.
    pub limit: Option<usize>,
    /// Opaque continuation token from the previous page.
    pub cursor: Option<String>,
}

impl Query {
    /// A query with this filter and every other setting at its default.
    pub fn new(filter: Filter) -> Query {
        Query {
            filter,
            ..Query::default()
        }
    }

    /// Replaces the filter.
    pub fn with_filter(mut self, filter: Filter) -> Query {
        self.filter = filter;
        self
    }

    /// Restricts to keys starting with `prefix`.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Query {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Sets the result order.
    pub fn with_sort(mut self, sort: SortSpec) -> Query {
        self.sort = Some(sort);
        self
    }

    /// Sets the page size.
    pub fn with_limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// Continues after a previous page.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Query {
        self.cursor = Some(cursor.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{Text, Timestamp};

    fn doc(entries: &[(&str, Value)]) -> Metadata {
        entries
            .iter()
            .map(|(k, v)| (Text::from(*k), v.clone()))
            .collect()
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(doc(entries))
    }

    fn array(items: &[Value]) -> Value {
        Value::Array(items.to_vec())
    }

    fn ts(secs: i64) -> Value {
        Value::Timestamp(Timestamp { secs, nanos: 0 })
    }

    fn sample() -> Metadata {
        doc(&[
            ("patient_id", "12345".into()),
            ("slices", 120.into()),
            ("dose", 0.5.into()),
            ("contrast", true.into()),
            ("study_date", ts(1_704_067_200)), // 2024-01-01
            ("raw", Value::Binary(vec![1, 2, 3])),
            ("nothing", Value::Nil),
            ("tags", array(&["ct".into(), "head".into()])),
            (
                "study",
                map(&[(
                    "series",
                    array(&[
                        map(&[("count", 10.into()), ("kind", "axial".into())]),
                        map(&[("count", 3.into())]),
                    ]),
                )]),
            ),
        ])
    }

    #[test]
    fn equality_and_inequality() {
        let m = sample();
        assert!(field("patient_id").eq("12345").matches(&m));
        assert!(!field("patient_id").eq("1234").matches(&m));
        assert!(!field("patient_id").eq(12345).matches(&m));
        assert!(field("patient_id").ne("1").matches(&m));
        assert!(!field("patient_id").ne("12345").matches(&m));
        assert!(field("raw").eq(Value::Binary(vec![1, 2, 3])).matches(&m));
        assert!(field("contrast").eq(true).matches(&m));
        assert!(field("nothing").eq(Value::Nil).matches(&m));
    }

    #[test]
    fn numbers_compare_across_int_and_float() {
        let m = sample();
        assert!(field("slices").eq(120.0).matches(&m));
        assert!(field("slices").lt(120.5).matches(&m));
        assert!(field("slices").gt(119.9).matches(&m));
        assert!(field("slices").gte(120.0).matches(&m));
        assert!(field("slices").lte(120).matches(&m));
        assert!(!field("slices").lt(120).matches(&m));
        assert!(field("dose").gt(0).matches(&m));
        assert!(field("dose").lt(1).matches(&m));
        assert!(field("dose")
            .is_in([Value::Int(1), Value::Float(0.5)])
            .matches(&m));
        // Exact comparison beyond 2^53: i64::MAX is below 2^63 as a float.
        assert_eq!(
            compare_values(&Value::Int(i64::MAX), &Value::Float(2f64.powi(63))),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Int(i64::MIN), &Value::Float(-(2f64.powi(63)))),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(
                &Value::Int((1 << 53) + 1),
                &Value::Float(9_007_199_254_740_992.0)
            ),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Value::Float(-1.5), &Value::Int(-1)),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Float(f64::INFINITY), &Value::Int(i64::MAX)),
            Ordering::Greater
        );
    }

    #[test]
    fn range_type_mismatch_is_no_match() {
        let m = sample();
        assert!(!field("patient_id").gt(1).matches(&m));
        assert!(!field("patient_id").lt(1).matches(&m));
        assert!(!field("slices").gt("a").matches(&m));
        assert!(!field("slices").lt("a").matches(&m));
        assert!(!field("nothing").gte(Value::Nil).matches(&m));
        assert!(!field("study_date").gt(0).matches(&m));
        assert!(field("patient_id").gt("1").matches(&m));
        assert!(field("contrast").gt(false).matches(&m));
        assert!(field("raw").lt(Value::Binary(vec![1, 3])).matches(&m));
        assert!(!field("dose").gt(f64::NAN).matches(&m));
        assert!(!field("dose").lt(f64::NAN).matches(&m));
    }

    #[test]
    fn timestamps_compare_in_time_order() {
        let m = sample();
        assert!(field("study_date").gt(ts(1_700_000_000)).matches(&m));
        assert!(field("study_date").lt(ts(1_704_067_201)).matches(&m));
        let later = Value::Timestamp(Timestamp {
            secs: 1_704_067_200,
            nanos: 1,
        });
        assert!(field("study_date").lt(later).matches(&m));
        assert!(!field("study_date").gt(ts(1_704_067_200)).matches(&m));
        let before_epoch = Value::Timestamp(Timestamp {
            secs: -1,
            nanos: 999_999_999,
        });
        assert_eq!(compare_values(&before_epoch, &ts(0)), Ordering::Less);
    }

    #[test]
    fn dotted_paths_and_arrays_match_any() {
        let m = sample();
        assert!(field("study.series.count").eq(3).matches(&m));
        assert!(field("study.series.count").gt(5).matches(&m));
        assert!(!field("study.series.count").gt(10).matches(&m));
        assert!(field("study.series.kind").eq("axial").matches(&m));
        assert!(field("study.series.kind").exists(true).matches(&m));
        assert!(field("study.missing").exists(false).matches(&m));
        assert!(field("tags").eq("head").matches(&m));
        assert!(field("tags")
            .eq(array(&["ct".into(), "head".into()]))
            .matches(&m));
        assert!(!field("tags")
            .eq(array(&["head".into(), "ct".into()]))
            .matches(&m));
        assert!(field("tags").prefix("he").matches(&m));
        assert!(field("tags").is_in(["x", "ct"]).matches(&m));
        assert!(!field("tags").not_in(["x", "ct"]).matches(&m));
        assert!(!field("tags").ne("ct").matches(&m));
        // A scalar on the way ends the path.
        assert!(field("slices.x").exists(false).matches(&m));
        // Operators on one field may be satisfied by different elements.
        let both = Predicate::All(vec![
            Predicate::Gt(Value::Int(5)),
            Predicate::Lt(Value::Int(5)),
        ]);
        assert!(field("study.series.count").matching(both).matches(&m));
        // Nested arrays are searched one level deep only.
        let nested = doc(&[("a", array(&[array(&[1.into()])]))]);
        assert!(field("a").eq(array(&[1.into()])).matches(&nested));
        assert!(!field("a").eq(1).matches(&nested));
    }

    #[test]
    fn missing_fields() {
        let m = sample();
        assert!(field("absent").ne("x").matches(&m));
        assert!(field("absent").not_in(["x"]).matches(&m));
        assert!(field("absent").eq(Value::Nil).matches(&m));
        assert!(!field("absent").ne(Value::Nil).matches(&m));
        assert!(field("absent").is_in([Value::Nil]).matches(&m));
        assert!(!field("absent").eq("x").matches(&m));
        assert!(!field("absent").gt(0).matches(&m));
        assert!(!field("absent").prefix("").matches(&m));
        assert!(!field("absent").exists(true).matches(&m));
        assert!(field("absent").exists(false).matches(&m));
        assert!(field("nothing").exists(true).matches(&m));
    }

    #[test]
    fn prefix_is_for_strings_only() {
        let m = sample();
        assert!(field("patient_id").prefix("123").matches(&m));
        assert!(field("patient_id").prefix("").matches(&m));
        assert!(!field("patient_id").prefix("124").matches(&m));
        assert!(!field("slices").prefix("1").matches(&m));
    }

    #[test]
    fn both_forms_of_not() {
        let m = sample();
        let not_gt = |n: i32| Predicate::Not(Box::new(Predicate::Gt(n.into())));
        assert!(field("slices").matching(not_gt(200)).matches(&m));
        assert!(!field("slices").matching(not_gt(5)).matches(&m));
        assert!(field("absent").matching(not_gt(5)).matches(&m));
        assert!(field("patient_id").matching(not_gt(5)).matches(&m));
        assert!(not(field("slices").gt(200)).matches(&m));
        assert!(!not(field("slices").gt(5)).matches(&m));
        assert!(!not(Filter::True).matches(&m));
    }

    #[test]
    fn logical_combinations() {
        let m = sample();
        let yes = field("slices").eq(120);
        let no = field("slices").eq(1);
        assert!(and([yes.clone(), yes.clone()]).matches(&m));
        assert!(!and([yes.clone(), no.clone()]).matches(&m));
        assert!(or([no.clone(), yes.clone()]).matches(&m));
        assert!(!or([no.clone(), no.clone()]).matches(&m));
        assert!(and([]).matches(&m));
        assert!(!or([]).matches(&m));
        assert!(Filter::True.matches(&m));
        assert!(Filter::default().matches(&Metadata::new()));
        let chained = yes.clone().and(no.clone()).and(yes.clone());
        assert_eq!(chained, and([yes.clone(), no.clone(), yes.clone()]));
        assert_eq!(no.clone().or(yes.clone()), or([no, yes]));
    }

    #[test]
    fn limits_are_checked_without_recursion() {
        let mut deep = Filter::True;
        for _ in 0..100_000 {
            deep = not(deep);
        }
        assert_eq!(deep.depth(), 100_001);
        let err = deep.check_limits().unwrap_err();
        assert_eq!(err.code(), "invalid_query");
        assert!(err.to_string().contains("100001 levels"), "{err}");
        // Dropping the deep chain recurses; unwind it by hand.
        while let Filter::Not(inner) = deep {
            deep = *inner;
        }

        let mut ok = field("a").eq(1);
        for _ in 0..MAX_FILTER_DEPTH - 2 {
            ok = not(ok);
        }
        assert_eq!(ok.depth(), MAX_FILTER_DEPTH);
        ok.check_limits().unwrap();

        let wide = and((0..MAX_FILTER_NODES).map(|i| field("a").eq(i64::try_from(i).unwrap())));
        assert_eq!(wide.node_count(), 2 * MAX_FILTER_NODES + 1);
        assert!(wide
            .check_limits()
            .unwrap_err()
            .to_string()
            .contains("nodes"));

        let long = field("a").is_in(0..=i64::try_from(MAX_IN_LIST_LEN).unwrap());
        assert!(long.check_limits().unwrap_err().to_string().contains("$in"));
        field("a")
            .is_in(1..=i64::try_from(MAX_IN_LIST_LEN).unwrap())
            .check_limits()
            .unwrap();
    }

    #[test]
    fn field_paths() {
        assert_eq!(
            FieldPath::parse("study.series.count").unwrap().segments(),
            ["study", "series", "count"]
        );
        assert_eq!(FieldPath::parse("a.b").unwrap().to_string(), "a.b");
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a\0b",
            "a\nb",
            "\u{7f}",
            "x.\u{1b}[2J",
        ] {
            assert_eq!(FieldPath::parse(bad).unwrap_err().code(), "invalid_query");
        }
        assert_eq!("x.y".parse::<FieldPath>().unwrap(), FieldPath::new("x.y"));
        let m = sample();
        assert_eq!(
            FieldPath::new("study.series.count").resolve(&m),
            [&Value::Int(10), &Value::Int(3)]
        );
        assert_eq!(FieldPath::new("study.series.count").lookup(&m), None);
        assert_eq!(FieldPath::new("slices").lookup(&m), Some(&Value::Int(120)));
    }

    #[test]
    fn total_order_of_values() {
        let ascending = [
            Value::Nil,
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(-3),
            Value::Float(-0.5),
            Value::Int(0),
            Value::Float(2.5),
            Value::Int(3),
            Value::String(Text::default()),
            Value::String("B".into()),
            Value::String("a".into()),
            Value::String("é".into()),
            Value::Binary(vec![]),
            Value::Binary(vec![0]),
            Value::Bool(false),
            Value::Bool(true),
            ts(-5),
            ts(7),
            array(&[]),
            array(&[1.into()]),
            array(&[1.into(), 0.into()]),
            array(&[2.into()]),
            map(&[]),
            map(&[("a", 2.into())]),
            map(&[("a", 2.into()), ("b", 0.into())]),
            map(&[("b", 0.into())]),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(compare_values(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(
            compare_values(&Value::Float(f64::NAN), &Value::Float(f64::NAN)),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(&Value::Float(-0.0), &Value::Int(0)),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(
                &array(&[1.into(), 2.5.into()]),
                &array(&[1.0.into(), 2.5.into()])
            ),
            Ordering::Equal
        );
    }

    #[test]
    fn sort_specs() {
        assert_eq!(
            SortSpec::parse("-study.date").unwrap(),
            SortSpec::descending_by("study.date")
        );
        assert_eq!(SortSpec::parse("a").unwrap(), SortSpec::ascending_by("a"));
        assert_eq!(SortSpec::descending_by("a.b").to_string(), "-a.b");
        for bad in ["", "-", "a..b"] {
            assert_eq!(SortSpec::parse(bad).unwrap_err().code(), "invalid_query");
        }
        let small = doc(&[("n", 1.into())]);
        let big = doc(&[("n", 2.5.into())]);
        let missing = Metadata::new();
        let up = SortSpec::ascending_by("n");
        assert_eq!(up.compare(&small, &big), Ordering::Less);
        assert_eq!(up.compare(&missing, &small), Ordering::Less);
        let down = SortSpec::descending_by("n");
        assert_eq!(down.compare(&small, &big), Ordering::Greater);
    }

    #[test]
    fn query_builder() {
        let q = Query::new(field("a").eq(1))
            .with_key_prefix("scans/")
            .with_sort(SortSpec::descending_by("date"))
            .with_limit(10)
            .with_cursor("abc");
        assert_eq!(q.filter, field("a").eq(1));
        assert_eq!(q.key_prefix.as_deref(), Some("scans/"));
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        assert_eq!(q.sort, Some(SortSpec::descending_by("date")));
        let q = Query::default().with_filter(Filter::True);
        assert_eq!(q, Query::default());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            any::<i64>().prop_map(Value::Int),
            prop_oneof![
                Just(f64::NAN),
                Just(-0.0),
                Just(f64::INFINITY),
                (-3i32..3).prop_map(|n| f64::from(n) / 2.0),
                any::<f64>(),
            ]
            .prop_map(Value::Float),
            "[ab]{0,2}".prop_map(Value::from),
            proptest::collection::vec(0u8..3, 0..3).prop_map(Value::Binary),
            (-2i64..2, 0u32..2)
                .prop_map(|(secs, nanos)| Value::Timestamp(Timestamp { secs, nanos })),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[ab]", inner, 0..3)
                    .prop_map(|m| Value::Map(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn compare_values_is_a_total_order(a in arb_value(), b in arb_value(), c in arb_value()) {
            prop_assert_eq!(compare_values(&a, &b), compare_values(&b, &a).reverse());
            prop_assert_eq!(compare_values(&a, &a), Ordering::Equal);
            let mut sorted = [a, b, c];
            sorted.sort_by(compare_values);
            prop_assert!(compare_values(&sorted[0], &sorted[2]).is_le());
            prop_assert!(compare_values(&sorted[0], &sorted[1]).is_le());
            prop_assert!(compare_values(&sorted[1], &sorted[2]).is_le());
        }

        #[test]
        fn int_float_comparison_is_exact(i in any::<i64>(), f in any::<f64>()) {
            let expected = if f.is_nan() {
                Ordering::Greater
            } else {
                // i128 holds every i64 and every integral f64 below 2^127 exactly.
                let whole = f.trunc();
                if whole >= 1.7e38 {
                    Ordering::Less
                } else if whole <= -1.7e38 {
                    Ordering::Greater
                } else {
                    #[allow(clippy::cast_possible_truncation)]
                    let whole_int = whole as i128;
                    i128::from(i).cmp(&whole_int).then(
                        0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
                    )
                }
            };
            prop_assert_eq!(compare_values(&Value::Int(i), &Value::Float(f)), expected);
        }
    }

    #[test]
    fn map_keys_compare_bytewise() {
        let a = Value::Map(BTreeMap::from([("B".into(), Value::Nil)]));
        let b = Value::Map(BTreeMap::from([("a".into(), Value::Nil)]));
        assert_eq!(compare_values(&a, &b), Ordering::Less);
    }
}

//! The model: what every key holds, which indexes are declared, the last commit version, and
//! each checked query with the model's own evaluation of it.

use std::collections::{BTreeMap, BTreeSet};

use asterope::{
    and, field, not, or, Filter, Key, Metadata, ObjectInfo, Query, Sha256Digest, SortSpec,
    Timestamp, Value,
};
use bytes::Bytes;

use crate::common::sha256;
use crate::ops::KEYS;
use crate::ops::{Content, Meta};

/// What the model knows of one stored object.
#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub(crate) bytes: Bytes,
    pub(crate) sha256: Sha256Digest,
    pub(crate) metadata: Metadata,
    /// The commit version; unknown (`None`) only for writes staged in an open transaction.
    pub(crate) version: Option<u64>,
    /// Learnt from the store at the first write (or first check after a transaction created
    /// the key), then kept across overwrites and metadata updates.
    pub(crate) created: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    pub(crate) objects: BTreeMap<String, Object>,
    pub(crate) indexes: BTreeSet<String>,
    /// The highest commit version seen: every later write must have a higher one.
    pub(crate) last_version: u64,
    /// Whether the open database deduplicates content.
    pub(crate) dedup: bool,
    /// Whether every opening so far did: then each distinct content is stored exactly once.
    pub(crate) dedup_always: bool,
}

impl Model {
    pub(crate) fn put(&mut self, key: &str, content: Content, meta: &Meta, version: Option<u64>) {
        let bytes = content.bytes();
        let created = self.objects.get(key).and_then(|o| o.created);
        self.objects.insert(
            key.to_string(),
            Object {
                sha256: sha256(&bytes),
                bytes,
                metadata: meta.document(),
                version,
                created,
            },
        );
    }

    pub(crate) fn current_version(&self, key: &str) -> u64 {
        self.objects
            .get(key)
            .map_or(0, |o| o.version.expect("committed objects have versions"))
    }

    /// Records the version of a successful write and checks that versions increase.
    pub(crate) fn committed(&mut self, version: u64) {
        assert!(
            version > self.last_version,
            "version {version} after {}",
            self.last_version
        );
        self.last_version = version;
    }

    /// Checks what a successful write returned against the model state after it.
    pub(crate) fn check_written(&mut self, info: &ObjectInfo) {
        self.committed(info.version);
        let object = self
            .objects
            .get_mut(info.key.as_str())
            .expect("written key is in the model");
        assert_eq!(info.size, object.bytes.len() as u64, "{}", info.key);
        assert_eq!(info.sha256, object.sha256, "{}", info.key);
        assert_eq!(info.metadata, object.metadata, "{}", info.key);
        object.version = Some(info.version);
        match object.created {
            Some(created) => assert_eq!(info.created, created, "{} created", info.key),
            None => object.created = Some(info.created),
        }
    }
}

pub(crate) fn key(index: usize) -> Key {
    Key::new(KEYS[index]).expect("valid key")
}

/// A version no key has: the model's last one plus a margin.
pub(crate) fn other_version(model: &Model, key: &str) -> u64 {
    match model.objects.get(key) {
        Some(_) if model.last_version % 2 == 0 => 0,
        _ => model.last_version + 1_000,
    }
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// Equality on `field` with a value it may hold.
pub(crate) fn field_eq(name: &str) -> Filter {
    match name {
        "n" => field(name).eq(1),
        _ => field(name).eq("x"),
    }
}

/// The value of a number field (integers and floats compare by value).
pub(crate) fn number(m: &Metadata, name: &str) -> Option<f64> {
    match m.get(name) {
        Some(Value::Int(n)) => Some(*n as f64),
        Some(Value::Float(f)) => Some(*f),
        _ => None,
    }
}

/// `tag` is `tag` or an array holding it (arrays match any element).
pub(crate) fn tag_is(m: &Metadata, tag: &str) -> bool {
    let is = |v: &Value| matches!(v, Value::String(s) if s == tag);
    match m.get("tag") {
        Some(Value::Array(values)) => values.iter().any(is),
        Some(value) => is(value),
        None => false,
    }
}

pub(crate) fn w_is(m: &Metadata, w: bool) -> bool {
    m.get("w") == Some(&Value::Bool(w))
}

/// The queries checked after every step, each with the model's own evaluation.
pub(crate) type ModelPredicate = fn(&str, &Metadata) -> bool;

pub(crate) fn queries() -> Vec<(Query, ModelPredicate)> {
    vec![
        (Query::new(field("n").eq(2)), |_, m| {
            number(m, "n") == Some(2.0)
        }),
        (Query::new(field("n").gte(2)), |_, m| {
            number(m, "n").is_some_and(|n| n >= 2.0)
        }),
        (Query::new(field("n").lt(2)), |_, m| {
            number(m, "n").is_some_and(|n| n < 2.0)
        }),
        (Query::new(field("tag").eq("x")), |_, m| tag_is(m, "x")),
        (Query::new(field("tag").is_in(["y", "z"])), |_, m| {
            tag_is(m, "y") || tag_is(m, "z")
        }),
        (Query::new(field("tag").exists(false)), |_, m| {
            !m.contains_key("tag")
        }),
        (Query::new(not(field("tag").eq("x"))), |_, m| {
            !tag_is(m, "x")
        }),
        (
            Query::new(and([field("n").gte(1), field("tag").eq("y")])),
            |_, m| number(m, "n").is_some_and(|n| n >= 1.0) && tag_is(m, "y"),
        ),
        (Query::new(field("w").eq(true)), |_, m| w_is(m, true)),
        (
            Query::new(or([field("n").eq(0), field("w").eq(false)])),
            |_, m| number(m, "n") == Some(0.0) || w_is(m, false),
        ),
        (
            Query::new(field("n").exists(true)).with_key_prefix("a/"),
            |k, m| k.starts_with("a/") && m.contains_key("n"),
        ),
        (Query::new(field("n").eq(Value::Nil)), |_, m| {
            matches!(m.get("n"), None | Some(Value::Nil))
        }),
        (Query::new(field("n").ne(1)), |_, m| {
            number(m, "n") != Some(1.0)
        }),
        (Query::new(field("n").gt(1.5)), |_, m| {
            number(m, "n").is_some_and(|n| n > 1.5)
        }),
        (Query::new(field("tag").ne("y")), |_, m| !tag_is(m, "y")),
        (
            Query::new(field("tag").eq(Value::Array(vec!["x".into(), "y".into()]))),
            |_, m| m.get("tag") == Some(&Value::Array(vec!["x".into(), "y".into()])),
        ),
        (Query::new(Filter::True), |_, _| true),
    ]
}

/// Queries in the order of `n` (a missing or nil `n` sorts as null: before every number), each
/// with the model's evaluation of its filter.
pub(crate) fn sorted_queries() -> Vec<(Query, ModelPredicate)> {
    let ascending = || SortSpec::ascending_by("n");
    let descending = || SortSpec::descending_by("n");
    vec![
        (Query::new(Filter::True).with_sort(ascending()), |_, _| true),
        (Query::new(Filter::True).with_sort(descending()), |_, _| {
            true
        }),
        (
            Query::new(field("tag").eq("x")).with_sort(descending()),
            |_, m| tag_is(m, "x"),
        ),
        (
            Query::new(field("n").gte(1)).with_sort(ascending()),
            |_, m| number(m, "n").is_some_and(|n| n >= 1.0),
        ),
    ]
}

/// The keys `query` answers in the model: those `predicate` selects, in key order or in the
/// order of `n` (ties in key order).
pub(crate) fn expected_answer(
    objects: &BTreeMap<String, Object>,
    query: &Query,
    predicate: ModelPredicate,
) -> Vec<String> {
    let mut keys = expected_keys(objects, predicate);
    if let Some(sort) = &query.sort {
        assert_eq!(sort.path.to_string(), "n", "the model sorts by n only");
        let n = |k: &String| number(&objects[k].metadata, "n");
        // Stable: equal values keep key order. `None` (null) is below every number.
        keys.sort_by(|a, b| {
            let order = n(a).partial_cmp(&n(b)).expect("no NaN");
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    keys
}

pub(crate) fn expected_keys(
    objects: &BTreeMap<String, Object>,
    predicate: ModelPredicate,
) -> Vec<String> {
    objects
        .iter()
        .filter(|(k, o)| predicate(k, &o.metadata))
        .map(|(k, _)| k.clone())
        .collect()
}

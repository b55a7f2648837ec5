//! The naive model the store is checked against: a map from key to metadata, evaluated by
//! `Filter::matches`, and helpers that write to both, wait for index builds and compare answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use asterope::{
    compare_values, Database, Filter, IndexState, Metadata, ObjectInfo, ObjectOps, PlanAccess,
    Query, Store, StoreExt, Value,
};

use crate::common::pattern;
use crate::data::key;

/// Stores a small object and records its metadata in the model.
pub(crate) async fn put(
    db: &Database,
    model: &mut BTreeMap<String, Metadata>,
    name: &str,
    metadata: Metadata,
    seed: u64,
) -> asterope::Result<ObjectInfo> {
    let info = db
        .put_bytes(&key(name), pattern(seed, 48), metadata.clone())
        .await?;
    model.insert(name.to_string(), metadata);
    Ok(info)
}

/// Polls `list_indexes` until every field in `fields` is listed as ready (at most 10 s).
pub(crate) async fn wait_ready(db: &Database, fields: &[&str]) -> asterope::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let indexes = db.list_indexes().await?;
        let ready = fields.iter().all(|f| {
            indexes
                .iter()
                .any(|index| index.field == *f && index.state == IndexState::Ready)
        });
        if ready {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "indexes {fields:?} not ready after 10 s: {indexes:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The keys the model selects with `filter` (and `key_prefix`), in key order.
pub(crate) fn naive(
    model: &BTreeMap<String, Metadata>,
    filter: &Filter,
    key_prefix: Option<&str>,
) -> Vec<String> {
    model
        .iter()
        .filter(|(k, m)| key_prefix.is_none_or(|p| k.starts_with(p)) && filter.matches(m))
        .map(|(k, _)| k.clone())
        .collect()
}

pub(crate) fn keys_of(objects: &[ObjectInfo]) -> Vec<String> {
    objects.iter().map(|o| o.key.to_string()).collect()
}

/// Metadata equality up to `compare_values` (NaN equals NaN, `-0.0` equals `0`).
pub(crate) fn same_metadata(a: &Metadata, b: &Metadata) -> bool {
    compare_values(&Value::Map(a.clone()), &Value::Map(b.clone())).is_eq()
}

/// Runs `query` (its filter and key prefix) and compares it, and `count`, with the model.
/// Returns a description of the difference, if any, and the plan's access path.
pub(crate) async fn compare_with_model(
    db: &Database,
    model: &BTreeMap<String, Metadata>,
    query: &Query,
) -> asterope::Result<(Option<String>, PlanAccess)> {
    let plan = db.explain(query).await?;
    let page = db.query(query).await?;
    let count = db.count(query).await?;
    let expected = naive(model, &query.filter, query.key_prefix.as_deref());
    let got = keys_of(&page.objects);
    let mut problems = Vec::new();
    if got != expected {
        let missing: Vec<&String> = expected.iter().filter(|k| !got.contains(k)).collect();
        // The documents of the first few, to make the failure readable.
        let examples: Vec<String> = missing
            .iter()
            .take(2)
            .map(|k| format!("{k}: {:?}", model[k.as_str()]))
            .collect();
        let extra: Vec<&String> = got.iter().filter(|k| !expected.contains(k)).collect();
        problems.push(format!(
            "query returned {} keys, expected {}; missing {missing:?} (e.g. {examples:?}); \
             extra {extra:?}",
            got.len(),
            expected.len()
        ));
    }
    if page.next.is_some() {
        problems.push(format!("unexpected next cursor {:?}", page.next));
    }
    if count != expected.len() as u64 {
        problems.push(format!("count {count}, expected {}", expected.len()));
    }
    for object in &page.objects {
        if let Some(m) = model.get(object.key.as_str()) {
            if !same_metadata(m, &object.metadata) {
                problems.push(format!("{} came back with other metadata", object.key));
            }
        }
    }
    let report = (!problems.is_empty()).then(|| {
        format!(
            "filter {:?} prefix {:?} via {} ({}): {}",
            query.filter,
            query.key_prefix,
            plan.access,
            plan.detail,
            problems.join("; ")
        )
    });
    Ok((report, plan.access))
}

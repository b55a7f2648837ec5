//! Metadata queries through secondary indexes on the embedded database: randomized filters
//! checked against a naive evaluation, explain, sorted and key-ordered pagination, snapshot
//! consistency while writers run, and index maintenance across overwrites, deletes, drop and
//! reopen.
//!
//! The randomized test uses a small deterministic xorshift generator over a fixed list of seeds
//! (the root package has no `proptest` dev-dependency), so every failure is reproducible.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asterope::{
    and, compare_values, field, not, or, Condition, Database, Error, Filter, Key, ListOptions,
    Metadata, ObjectInfo, ObjectOps, Predicate, Query, SortSpec, Store, StoreExt, Timestamp, Value,
};
use common::pattern;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/// xorshift64* over a fixed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..hi` (lo < hi).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + i64::try_from(self.below(u64::try_from(hi - lo).unwrap())).unwrap()
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

const PATIENTS: &[&str] = &["P001", "P002", "P010", "P100", "Q7", "p001"];
const MODALITIES: &[&str] = &["CT", "MR", "US", "CT-A"];
const TAGS: &[&str] = &["head", "neck", "chest", "contrast", "ct", "he"];
const BASE_SECS: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
/// 2^53: integers from here on share `f64` encodings in the index.
const BIG: i64 = 1 << 53;

/// Fields the randomized test indexes.
const INDEXED: &[&str] = &["patient_id", "study_date", "slices", "tags", "study.series"];
/// Fields filters are generated on (indexed or not, and one never present).
const FIELDS: &[&str] = &[
    "patient_id",
    "study_date",
    "slices",
    "tags",
    "study.series",
    "modality",
    "note",
    "absent",
];

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

fn date(day: i64, half: bool) -> Value {
    Value::Timestamp(Timestamp {
        secs: BASE_SECS + day * DAY,
        nanos: if half { 500_000_000 } else { 0 },
    })
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect(),
    )
}

/// A number as stored in `slices`: ints, halves, the 2^53 neighbourhood and special floats.
fn number(rng: &mut Rng) -> Value {
    match rng.below(20) {
        0..=9 => Value::Int(rng.range(-2, 200)),
        10..=15 => Value::Float(rng.range(-4, 400) as f64 / 2.0),
        16 | 17 => Value::Int(BIG + rng.range(-1, 3)),
        _ => rng
            .pick(&[
                Value::Float(-0.0),
                Value::Float(f64::NAN),
                Value::Float(f64::INFINITY),
                Value::Float(BIG as f64),
                Value::Int(0),
            ])
            .clone(),
    }
}

/// A small number as stored in `study.series`.
fn small_number(rng: &mut Rng) -> Value {
    if rng.chance(1, 4) {
        Value::Float(rng.range(-2, 22) as f64 / 2.0)
    } else {
        Value::Int(rng.range(0, 10))
    }
}

/// A random metadata document of the randomized and sorting tests.
fn gen_metadata(rng: &mut Rng) -> Metadata {
    let mut m = Metadata::new();
    match rng.below(12) {
        0 => {}
        1 => {
            m.insert("patient_id".into(), Value::Nil);
        }
        2 => {
            m.insert("patient_id".into(), Value::Int(7));
        }
        _ => {
            m.insert("patient_id".into(), (*rng.pick(PATIENTS)).into());
        }
    }
    match rng.below(12) {
        0 => {}
        1 => {
            m.insert("study_date".into(), "2024-01-01".into());
        }
        _ => {
            let day = rng.range(0, 12);
            let half = rng.chance(1, 4);
            m.insert("study_date".into(), date(day, half));
        }
    }
    match rng.below(6) {
        0 => {}
        1 | 2 => {
            let len = 1 + rng.below(3);
            let mut items: Vec<Value> = (0..len).map(|_| number(rng)).collect();
            if rng.chance(1, 6) {
                items.push("n/a".into());
            }
            m.insert("slices".into(), Value::Array(items));
        }
        _ => {
            m.insert("slices".into(), number(rng));
        }
    }
    m.insert("modality".into(), (*rng.pick(MODALITIES)).into());
    match rng.below(5) {
        0 => {}
        1 => {
            m.insert("tags".into(), (*rng.pick(TAGS)).into());
        }
        _ => {
            let len = rng.below(4);
            let tags = (0..len).map(|_| Value::from(*rng.pick(TAGS))).collect();
            m.insert("tags".into(), Value::Array(tags));
        }
    }
    match rng.below(7) {
        0 => {}
        1 | 2 => {
            let series = small_number(rng);
            m.insert(
                "study".into(),
                map(&[("series", series), ("uid", "1.2.3".into())]),
            );
        }
        3 | 4 => {
            // An array of maps: the path `study.series` fans out to every element's value.
            let a = small_number(rng);
            let b = small_number(rng);
            m.insert(
                "study".into(),
                Value::Array(vec![map(&[("series", a)]), map(&[("series", b)])]),
            );
        }
        5 => {
            let items = vec![small_number(rng), small_number(rng)];
            m.insert("study".into(), map(&[("series", Value::Array(items))]));
        }
        _ => {
            m.insert("study".into(), map(&[("uid", "9.9".into())]));
        }
    }
    m.insert("note".into(), format!("n{}", rng.below(5)).into());
    m
}

/// Whether a value holds an array anywhere (so a path may reach several values through it).
fn has_array(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Map(map) => map.values().any(has_array),
        _ => false,
    }
}

/// The document without its fields that hold arrays: every indexed path then reaches at most
/// one scalar.
fn without_arrays(mut metadata: Metadata) -> Metadata {
    metadata.retain(|_, value| !has_array(value));
    metadata
}

/// An operand for a predicate on `name`: mostly of the field's own class, sometimes another.
fn operand(rng: &mut Rng, name: &str) -> Value {
    if rng.chance(1, 12) {
        return rng
            .pick(&[
                Value::Nil,
                Value::Bool(true),
                Value::Int(5),
                Value::from("P001"),
                date(3, false),
                Value::Float(2.5),
                Value::Float(f64::NAN),
            ])
            .clone();
    }
    match name {
        "patient_id" => {
            let all = [PATIENTS, &["P", "P00", "Z", ""]].concat();
            (*rng.pick(&all)).into()
        }
        "study_date" => {
            let day = rng.range(-1, 13);
            let half = rng.chance(1, 4);
            date(day, half)
        }
        "slices" => match rng.below(10) {
            0..=4 => Value::Int(rng.range(-5, 205)),
            5..=7 => Value::Float(rng.range(-10, 410) as f64 / 2.0),
            8 => Value::Int(BIG + rng.range(-2, 3)),
            _ => Value::Float(BIG as f64),
        },
        "study.series" => match rng.below(3) {
            0 => Value::Float(rng.range(-2, 22) as f64 / 2.0),
            _ => Value::Int(rng.range(-1, 11)),
        },
        "modality" => (*rng.pick(MODALITIES)).into(),
        "tags" => (*rng.pick(TAGS)).into(),
        "note" => format!("n{}", rng.below(6)).into(),
        _ => "x".into(),
    }
}

fn prefix_operand(rng: &mut Rng, name: &str) -> String {
    let choices: &[&str] = match name {
        "patient_id" => &["", "P", "P0", "P00", "P001", "Q", "p", "P1"],
        "modality" => &["", "C", "CT", "CT-", "M"],
        "tags" => &["", "he", "c", "co", "n", "x"],
        "note" => &["n", "n1"],
        _ => &["", "1"],
    };
    (*rng.pick(choices)).to_string()
}

fn comparison(rng: &mut Rng, name: &str) -> Predicate {
    let value = operand(rng, name);
    match rng.below(4) {
        0 => Predicate::Gt(value),
        1 => Predicate::Gte(value),
        2 => Predicate::Lt(value),
        _ => Predicate::Lte(value),
    }
}

/// A filter on one field.
fn gen_leaf(rng: &mut Rng) -> Filter {
    let name = *rng.pick(FIELDS);
    match rng.below(16) {
        0..=2 => field(name).eq(operand(rng, name)),
        3 | 4 => {
            let len = 1 + rng.below(3);
            let values: Vec<Value> = (0..len).map(|_| operand(rng, name)).collect();
            field(name).is_in(values)
        }
        5..=8 => {
            let predicate = comparison(rng, name);
            field(name).matching(predicate)
        }
        9 => {
            // A range as two conjuncts on the same field.
            let low = operand(rng, name);
            let high = operand(rng, name);
            and([field(name).gte(low), field(name).lt(high)])
        }
        10 | 11 => {
            // A range as one field with several operators (`{"$gt": .., "$lt": ..}`).
            let parts = vec![comparison(rng, name), comparison(rng, name)];
            field(name).matching(Predicate::All(parts))
        }
        12 => {
            let prefix = prefix_operand(rng, name);
            field(name).prefix(prefix)
        }
        13 => {
            if rng.chance(1, 2) {
                field(name).ne(operand(rng, name))
            } else {
                let values = vec![operand(rng, name), operand(rng, name)];
                field(name).not_in(values)
            }
        }
        14 => field(name).exists(rng.chance(1, 2)),
        _ => {
            let inner = comparison(rng, name);
            field(name).matching(Predicate::Not(Box::new(inner)))
        }
    }
}

/// A filter of leaves combined with and/or/not, at most `depth` combinators deep.
fn gen_filter(rng: &mut Rng, depth: u32) -> Filter {
    if depth == 0 || rng.chance(5, 10) {
        return gen_leaf(rng);
    }
    match rng.below(4) {
        0 | 1 => {
            let len = 2 + rng.below(2);
            let parts: Vec<Filter> = (0..len).map(|_| gen_filter(rng, depth - 1)).collect();
            and(parts)
        }
        2 => {
            let parts = vec![gen_filter(rng, depth - 1), gen_filter(rng, depth - 1)];
            or(parts)
        }
        _ => not(gen_filter(rng, depth - 1)),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Stores a small object and records its metadata in the model.
async fn put(
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
async fn wait_ready(db: &Database, fields: &[&str]) -> asterope::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let indexes = db.list_indexes().await?;
        let ready = fields.iter().all(|f| {
            indexes
                .iter()
                .any(|index| index.field == *f && index.state == "ready")
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
fn naive(
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

fn keys_of(objects: &[ObjectInfo]) -> Vec<String> {
    objects.iter().map(|o| o.key.to_string()).collect()
}

/// Metadata equality up to `compare_values` (NaN equals NaN, `-0.0` equals `0`).
fn same_metadata(a: &Metadata, b: &Metadata) -> bool {
    compare_values(&Value::Map(a.clone()), &Value::Map(b.clone())).is_eq()
}

/// Runs `query` (its filter and key prefix) and compares it, and `count`, with the model.
/// Returns a description of the difference, if any, and the plan's access path.
async fn compare_with_model(
    db: &Database,
    model: &BTreeMap<String, Metadata>,
    query: &Query,
) -> asterope::Result<(Option<String>, String)> {
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

// ---------------------------------------------------------------------------------------------
// 1. Randomized filters against a naive evaluation
// ---------------------------------------------------------------------------------------------

const DATASET_SEEDS: &[u64] = &[1, 2, 3, 42, 0xDEAD_BEEF, 20_240_601];
const FILTERS_PER_DATASET: usize = 80;
const OBJECTS: usize = 60;

/// Builds a database per seed, indexes [`INDEXED`] while objects are being written, and checks
/// random queries (results, order, count) against the model. With `scalars_only`, fields
/// holding arrays are left out of the documents.
async fn check_random_filters(scalars_only: bool) -> asterope::Result<()> {
    let mut failures = Vec::new();
    let mut total = 0usize;
    let mut through_index = 0usize;
    for &seed in DATASET_SEEDS {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path())?;
        let mut rng = Rng::new(seed);
        let mut model = BTreeMap::new();
        let name = |i: usize| format!("s{}/{i:03}", i % 3);
        // Two thirds exist before the indexes (the background build indexes them), the rest
        // are committed while or after they are built (each commit writes its own entries).
        let document = |rng: &mut Rng| {
            let metadata = gen_metadata(rng);
            if scalars_only {
                without_arrays(metadata)
            } else {
                metadata
            }
        };
        for i in 0..OBJECTS * 2 / 3 {
            let metadata = document(&mut rng);
            put(&db, &mut model, &name(i), metadata, i as u64).await?;
        }
        for f in INDEXED {
            let info = db.create_index(f).await?;
            assert_eq!(info.field, *f);
        }
        for i in OBJECTS * 2 / 3..OBJECTS {
            let metadata = document(&mut rng);
            put(&db, &mut model, &name(i), metadata, i as u64).await?;
        }
        wait_ready(&db, INDEXED).await?;

        for case in 0..FILTERS_PER_DATASET {
            // Writes between queries, once the indexes are ready: each rewrites the posting
            // lists of the values it adds or removes.
            if rng.chance(1, 2) {
                let i = rng.below(OBJECTS as u64 + 10) as usize;
                if rng.chance(1, 4) && model.contains_key(&name(i)) {
                    db.delete(&key(&name(i)), Condition::default()).await?;
                    model.remove(&name(i));
                } else {
                    let metadata = document(&mut rng);
                    put(&db, &mut model, &name(i), metadata, (case + i) as u64).await?;
                }
            }
            let filter = gen_filter(&mut rng, 3);
            let prefix = match rng.below(6) {
                0 => Some("s1/"),
                1 => Some("s2/01"),
                _ => None,
            };
            let mut query = Query::new(filter).with_limit(10_000);
            if let Some(p) = prefix {
                query = query.with_key_prefix(p);
            }
            let (problem, access) = compare_with_model(&db, &model, &query).await?;
            total += 1;
            if access == "index" {
                through_index += 1;
            }
            if let Some(problem) = problem {
                failures.push(format!("seed {seed} case {case}: {problem}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} random queries differ from the naive evaluation; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator must actually exercise the index paths, not only scans.
    assert!(
        through_index * 4 >= total,
        "only {through_index} of {total} queries used an index"
    );
    Ok(())
}

/// Every indexed path reaches at most one scalar: the index must answer exactly as a scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_on_scalar_fields_match_a_naive_evaluation() -> asterope::Result<()> {
    check_random_filters(true).await
}

/// Arrays at the end of indexed paths and arrays of maps along them: any element may match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_over_arrays_match_a_naive_evaluation() -> asterope::Result<()> {
    check_random_filters(false).await
}

#[tokio::test]
async fn explain_uses_an_index_only_for_indexable_predicates() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(99);
    for i in 0..20 {
        // Scalars only: this test is about plans (arrays have their own tests below).
        let metadata = without_arrays(gen_metadata(&mut rng));
        put(&db, &mut model, &format!("e/{i:02}"), metadata, i).await?;
    }
    // Before any index exists, everything is a scan.
    let before = db
        .explain(&Query::new(field("patient_id").eq("P001")))
        .await?;
    assert_eq!(before.access, "scan");
    assert_eq!(before.index, None);

    db.create_index("patient_id").await?;
    db.create_index("study_date").await?;
    db.create_index("study.series").await?;
    // Declaring an index again is idempotent.
    let again = db.create_index("patient_id").await?;
    assert_eq!(again.field, "patient_id");
    wait_ready(&db, &["patient_id", "study_date", "study.series"]).await?;
    let listed: Vec<String> = db
        .list_indexes()
        .await?
        .into_iter()
        .map(|i| i.field)
        .collect();
    assert_eq!(listed, ["patient_id", "study.series", "study_date"]);

    let uses = |filter: Filter, index: &'static str, kind: &'static str| (filter, index, kind);
    let indexed = [
        uses(field("patient_id").eq("P001"), "patient_id", "equality"),
        uses(
            field("patient_id").is_in(["P001", "Q7"]),
            "patient_id",
            "$in",
        ),
        uses(field("patient_id").prefix("P0"), "patient_id", "prefix"),
        uses(
            field("study_date").gte(date(3, false)),
            "study_date",
            "range",
        ),
        uses(
            field("study_date").matching(Predicate::All(vec![
                Predicate::Gt(date(2, false)),
                Predicate::Lte(date(6, true)),
            ])),
            "study_date",
            "range",
        ),
        uses(field("study.series").lt(4), "study.series", "range"),
        // Range conjuncts on one field are combined into one range.
        uses(
            and([
                field("study_date").gte(date(1, false)),
                field("study_date").lt(date(4, false)),
            ]),
            "study_date",
            "range",
        ),
        // A top-level conjunct is enough; equality is preferred over a range.
        uses(
            and([
                field("modality").eq("CT"),
                field("study_date").lt(date(5, false)),
                field("patient_id").eq("P002"),
            ]),
            "patient_id",
            "equality",
        ),
    ];
    for (filter, index, kind) in indexed {
        let plan = db.explain(&Query::new(filter.clone())).await?;
        assert_eq!(plan.access, "index", "{filter:?}: {plan:?}");
        assert_eq!(plan.index.as_deref(), Some(index), "{filter:?}: {plan:?}");
        assert!(plan.detail.contains(kind), "{filter:?}: {plan:?}");
        let (problem, _) =
            compare_with_model(&db, &model, &Query::new(filter).with_limit(10_000)).await?;
        assert_eq!(problem, None);
    }

    let scanned = [
        field("modality").eq("CT"),
        field("note").eq("n1"),
        field("patient_id").ne("P001"),
        field("patient_id").not_in(["P001"]),
        field("patient_id").exists(true),
        field("patient_id").eq(Value::Nil),
        field("patient_id").is_in([Value::from("P001"), Value::Nil]),
        field("patient_id").matching(Predicate::Not(Box::new(Predicate::Eq("P001".into())))),
        not(field("patient_id").eq("P001")),
        or([field("patient_id").eq("P001"), field("patient_id").eq("Q7")]),
        field("study_date").matching(Predicate::All(vec![
            Predicate::Gt(date(2, false)),
            Predicate::Lt(Value::Int(5)),
        ])),
        field("patient_id").eq(Value::Array(vec!["P001".into()])),
        and([field("modality").eq("CT"), field("note").eq("n1")]),
        Filter::True,
    ];
    for filter in scanned {
        let plan = db.explain(&Query::new(filter.clone())).await?;
        assert_eq!(plan.access, "scan", "{filter:?}: {plan:?}");
        assert_eq!(plan.index, None, "{filter:?}: {plan:?}");
        let (problem, _) =
            compare_with_model(&db, &model, &Query::new(filter).with_limit(10_000)).await?;
        assert_eq!(problem, None);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Focused cases: values reached through arrays
// ---------------------------------------------------------------------------------------------

/// Documents whose indexed field is an array are found through the index by any element, as
/// by a scan (index.rs: "a version whose field holds an array contributes one entry per
/// distinct scalar element").
#[tokio::test]
async fn array_elements_are_found_through_an_index() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    let docs = [
        ("a/1", Value::Array(vec!["ct".into(), "head".into()])),
        ("a/2", Value::from("head")),
        ("a/3", Value::Array(vec![])),
        ("a/4", Value::Array(vec!["neck".into()])),
    ];
    for (i, (name, tags)) in docs.iter().enumerate() {
        let metadata = Metadata::from([("tags".into(), tags.clone())]);
        put(&db, &mut model, name, metadata, i as u64).await?;
    }
    db.create_index("tags").await?;
    // One more after the index is declared: written by the commit, not the build.
    let late = Metadata::from([(
        "tags".into(),
        Value::Array(vec!["head".into(), "neck".into()]),
    )]);
    put(&db, &mut model, "a/5", late, 5).await?;
    wait_ready(&db, &["tags"]).await?;
    let filters = [
        field("tags").eq("head"),
        field("tags").is_in(["neck"]),
        field("tags").prefix("he"),
        field("tags").gte("h"),
    ];
    let mut problems = Vec::new();
    for filter in filters {
        let query = Query::new(filter).with_limit(100);
        let (problem, access) = compare_with_model(&db, &model, &query).await?;
        assert_eq!(access, "index");
        problems.extend(problem);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Several comparisons on one field may be satisfied by different values the path reaches
/// (docs: "on an array field each may be satisfied by a different element"); the index range
/// must not require one value to satisfy them all.
#[tokio::test]
async fn comparisons_on_several_values_through_an_index() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    // `study.series` reaches 1 and 10 through an array of maps.
    let fanned = Metadata::from([(
        "study".into(),
        Value::Array(vec![
            map(&[("series", Value::Int(1))]),
            map(&[("series", Value::Int(10))]),
        ]),
    )]);
    put(&db, &mut model, "f/1", fanned, 1).await?;
    let single = Metadata::from([("study".into(), map(&[("series", Value::Int(5))]))]);
    put(&db, &mut model, "f/2", single, 2).await?;
    // The same range in its two forms: one field with two operators, and two conjuncts.
    let forms = [
        field("study.series").matching(Predicate::All(vec![
            Predicate::Gt(Value::Int(2)),
            Predicate::Lt(Value::Int(8)),
        ])),
        and([field("study.series").gt(2), field("study.series").lt(8)]),
    ];
    for filter in &forms {
        // Evaluation: f/1 matches (10 > 2, 1 < 8), f/2 matches (5).
        assert_eq!(naive(&model, filter, None), ["f/1", "f/2"]);
        let query = Query::new(filter.clone()).with_limit(100);
        let (problem, access) = compare_with_model(&db, &model, &query).await?;
        assert_eq!(access, "scan");
        assert_eq!(problem, None);
    }

    db.create_index("study.series").await?;
    wait_ready(&db, &["study.series"]).await?;
    let mut problems = Vec::new();
    for filter in &forms {
        let query = Query::new(filter.clone()).with_limit(100);
        let (problem, access) = compare_with_model(&db, &model, &query).await?;
        assert_eq!(access, "index", "{filter:?}");
        problems.extend(problem);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Sorting and pagination
// ---------------------------------------------------------------------------------------------

/// The model's matches ordered as the store documents it: by the sort field's value
/// (`compare_values`, missing as null; reversed when descending), ties by ascending key.
fn naive_sorted(
    model: &BTreeMap<String, Metadata>,
    filter: &Filter,
    sort: &SortSpec,
) -> Vec<String> {
    let mut matches: Vec<(&String, &Metadata)> =
        model.iter().filter(|(_, m)| filter.matches(m)).collect();
    matches.sort_by(|(ka, a), (kb, b)| sort.compare(a, b).then_with(|| ka.cmp(kb)));
    matches.into_iter().map(|(k, _)| k.clone()).collect()
}

/// Follows cursors from the first page to the end, checking page sizes.
async fn all_pages(db: &Database, query: Query, limit: usize) -> asterope::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut q = query.clone().with_limit(limit);
        if let Some(c) = cursor.take() {
            q = q.with_cursor(c);
        }
        let page = db.query(&q).await?;
        assert!(page.objects.len() <= limit, "page over the limit");
        out.extend(keys_of(&page.objects));
        match page.next {
            Some(next) => {
                assert_eq!(page.objects.len(), limit, "a short page with a next cursor");
                cursor = Some(next);
            }
            None => return Ok(out),
        }
    }
    panic!("cursors never ended for {query:?}");
}

#[tokio::test]
async fn sorted_and_key_ordered_pages_follow_cursors_to_the_naive_order() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(7);
    for i in 0..OBJECTS {
        let mut metadata = gen_metadata(&mut rng);
        // Few distinct dates, so that ties are common.
        if let Some(Value::Timestamp(t)) = metadata.get_mut("study_date") {
            t.secs = BASE_SECS + (t.secs - BASE_SECS) % (4 * DAY);
        }
        put(
            &db,
            &mut model,
            &format!("k{:02}", (i * 37) % 97),
            metadata,
            i as u64,
        )
        .await?;
    }
    db.create_index("study_date").await?;
    db.create_index("patient_id").await?;
    wait_ready(&db, &["study_date", "patient_id"]).await?;

    let filters = [
        Filter::True,
        field("patient_id").is_in(["P001", "P002", "P010"]),
        field("study_date").gte(date(1, false)),
        field("modality").eq("CT"),
        or([
            field("study_date").exists(false),
            field("patient_id").eq("Q7"),
        ]),
    ];
    let sorts = [
        SortSpec::ascending_by("study_date"),
        SortSpec::descending_by("study_date"),
        SortSpec::ascending_by("study.series"),
        SortSpec::descending_by("slices"),
    ];
    for filter in &filters {
        for sort in &sorts {
            let expected = naive_sorted(&model, filter, sort);
            for limit in [1, 7, 25, 10_000] {
                let query = Query::new(filter.clone()).with_sort(sort.clone());
                let got = all_pages(&db, query, limit).await?;
                assert_eq!(got, expected, "filter {filter:?} sort {sort} limit {limit}");
            }
        }
        // Without a sort: key order, through the index or a scan alike.
        let expected = naive(&model, filter, None);
        for limit in [1, 7, 10_000] {
            let got = all_pages(&db, Query::new(filter.clone()), limit).await?;
            assert_eq!(got, expected, "filter {filter:?} key order, limit {limit}");
        }
    }

    // Descending order reverses the values only: equal dates still come in ascending key order.
    let down = naive_sorted(
        &model,
        &Filter::True,
        &SortSpec::descending_by("study_date"),
    );
    let date_of = |k: &String| model[k].get("study_date").cloned().unwrap_or(Value::Nil);
    let mut ties = 0;
    for pair in down.windows(2) {
        let order = compare_values(&date_of(&pair[0]), &date_of(&pair[1]));
        assert!(order.is_ge(), "{pair:?}");
        if order.is_eq() {
            ties += 1;
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }
    assert!(ties > 5, "the data should have ties, got {ties}");

    // A cursor from a sorted query is refused by name when it is garbage.
    let bad = Query::new(Filter::True)
        .with_sort(SortSpec::ascending_by("study_date"))
        .with_cursor("zz");
    let err = db.query(&bad).await.unwrap_err();
    assert_eq!(err.code(), "invalid_query");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Snapshot consistency while writers run
// ---------------------------------------------------------------------------------------------

fn live_metadata(patient: &str, generation: u64) -> Metadata {
    Metadata::from([
        ("patient_id".into(), Value::from(patient)),
        (
            "generation".into(),
            Value::Int(i64::try_from(generation).unwrap()),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_queries_see_one_snapshot_while_writers_run() -> asterope::Result<()> {
    const N: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let name = |i: u64| format!("live/{i:02}");
    for i in 0..N {
        let patient = if i % 2 == 0 { "A" } else { "B" };
        db.put_bytes(&key(&name(i)), pattern(i, 32), live_metadata(patient, 0))
            .await?;
    }
    db.create_index("patient_id").await?;
    wait_ready(&db, &["patient_id"]).await?;

    let writes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let db = db.clone();
        let writes = Arc::clone(&writes);
        let stop = Arc::clone(&stop);
        async move {
            let mut rng = Rng::new(11);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut n = 0u64;
            while !stop.load(AtomicOrdering::SeqCst) && Instant::now() < deadline {
                n += 1;
                let k = key(&name(rng.below(N)));
                let patient = if rng.chance(1, 2) { "A" } else { "B" };
                let metadata = live_metadata(patient, n);
                if n % 3 == 0 {
                    db.put_bytes(&k, pattern(n, 32), metadata).await?;
                } else {
                    db.update_metadata(&k, metadata, Condition::default())
                        .await?;
                }
                writes.store(n, AtomicOrdering::SeqCst);
            }
            Ok::<u64, Error>(n)
        }
    });

    let filter = field("patient_id").eq("A");
    let query = Query::new(filter.clone()).with_limit(10_000);
    assert_eq!(db.explain(&query).await?.access, "index");
    let mut rounds_with_writes_between = 0;
    for _ in 0..6 {
        let txn = db.begin().await?;
        let first = txn.query(&query).await?;
        // Let a few commits land between the two reads (bounded wait).
        let seen = writes.load(AtomicOrdering::SeqCst);
        let wait_until = Instant::now() + Duration::from_secs(2);
        while writes.load(AtomicOrdering::SeqCst) < seen + 3 && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if writes.load(AtomicOrdering::SeqCst) > seen {
            rounds_with_writes_between += 1;
        }
        let second = txn.query(&query).await?;
        assert_eq!(
            first.objects, second.objects,
            "a transaction's indexed query changed while writers ran"
        );
        // Through the index, exactly what a scan of the same snapshot selects.
        let listed = txn
            .list(ListOptions::default().with_prefix("live/"))
            .await?;
        assert_eq!(listed.objects.len() as u64, N);
        let expected: Vec<String> = listed
            .objects
            .iter()
            .filter(|o| filter.matches(&o.metadata))
            .map(|o| o.key.to_string())
            .collect();
        assert_eq!(keys_of(&first.objects), expected);
        txn.rollback().await?;

        // Outside a transaction every query has its own snapshot; each result must still be
        // a current match, once, in key order.
        for _ in 0..5 {
            let page = db.query(&query).await?;
            for object in &page.objects {
                assert!(
                    filter.matches(&object.metadata),
                    "{} returned with {:?}",
                    object.key,
                    object.metadata
                );
            }
            let got = keys_of(&page.objects);
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        }
    }
    stop.store(true, AtomicOrdering::SeqCst);
    let written = writer.await.expect("writer task panicked")?;
    assert!(written >= 6, "the writer made only {written} writes");
    assert!(
        rounds_with_writes_between >= 3,
        "only {rounds_with_writes_between} rounds had writes between their reads"
    );

    // Quiet again: the index agrees with a scan of the newest state.
    let listed = db.list_all("live/").await?;
    let model: BTreeMap<String, Metadata> = listed
        .into_iter()
        .map(|o| (o.key.to_string(), o.metadata))
        .collect();
    for patient in ["A", "B"] {
        let q = Query::new(field("patient_id").eq(patient)).with_limit(10_000);
        let (problem, access) = compare_with_model(&db, &model, &q).await?;
        assert_eq!(access, "index");
        assert_eq!(problem, None);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Index maintenance: overwrites, deletes, drop, reopen
// ---------------------------------------------------------------------------------------------

/// Scalar-only documents, so that this test is about maintenance rather than arrays.
fn scalar_metadata(rng: &mut Rng) -> Metadata {
    let mut m = Metadata::new();
    if !rng.chance(1, 8) {
        m.insert("patient_id".into(), (*rng.pick(PATIENTS)).into());
    }
    let score = if rng.chance(1, 3) {
        Value::Float(rng.range(-10, 200) as f64 / 2.0)
    } else {
        Value::Int(rng.range(-5, 100))
    };
    m.insert("score".into(), score);
    m.insert("site".into(), (*rng.pick(&["north", "south"])).into());
    m
}

fn maintenance_filters() -> Vec<(Filter, Option<&'static str>)> {
    vec![
        (field("patient_id").eq("P001"), Some("patient_id")),
        (
            field("patient_id").is_in(["P002", "Q7"]),
            Some("patient_id"),
        ),
        (field("patient_id").prefix("P0"), Some("patient_id")),
        (field("score").gt(50), Some("score")),
        (field("score").eq(0), Some("score")),
        (
            field("score").matching(Predicate::All(vec![
                Predicate::Gte(Value::Int(10)),
                Predicate::Lt(Value::Float(60.5)),
            ])),
            Some("score"),
        ),
        (
            and([field("site").eq("north"), field("patient_id").eq("P010")]),
            Some("patient_id"),
        ),
        (field("site").eq("south"), None),
    ]
}

/// Every maintenance filter returns what the model selects; the plan uses the expected index
/// when `indexes` holds it, and scans otherwise.
async fn check_maintenance(
    db: &Database,
    model: &BTreeMap<String, Metadata>,
    indexes: &[&str],
    stage: &str,
) -> asterope::Result<()> {
    for (filter, index) in maintenance_filters() {
        let query = Query::new(filter.clone()).with_limit(10_000);
        let (problem, access) = compare_with_model(db, model, &query).await?;
        assert_eq!(problem, None, "{stage}");
        let plan = db.explain(&query).await?;
        match index.filter(|i| indexes.contains(i)) {
            Some(i) => {
                assert_eq!(access, "index", "{stage}: {filter:?}");
                assert_eq!(plan.index.as_deref(), Some(i), "{stage}: {filter:?}");
            }
            None => assert_eq!(access, "scan", "{stage}: {filter:?}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_follow_overwrites_deletes_drop_and_reopen() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(5);
    let name = |i: u64| format!("m/{i:02}");
    {
        let db = Database::open(dir.path())?;
        for i in 0..50 {
            let metadata = scalar_metadata(&mut rng);
            put(&db, &mut model, &name(i), metadata, i).await?;
        }
        db.create_index("patient_id").await?;
        db.create_index("score").await?;
        wait_ready(&db, &["patient_id", "score"]).await?;
        check_maintenance(&db, &model, &["patient_id", "score"], "built").await?;

        // Overwrites (new blob or metadata only), deletes, and re-creations of deleted keys.
        for i in 0..50 {
            let k = name(i);
            match i % 5 {
                0 => {
                    let metadata = scalar_metadata(&mut rng);
                    put(&db, &mut model, &k, metadata, 100 + i).await?;
                }
                1 => {
                    let metadata = scalar_metadata(&mut rng);
                    db.update_metadata(&key(&k), metadata.clone(), Condition::default())
                        .await?;
                    model.insert(k, metadata);
                }
                2 if i % 10 == 2 => {
                    db.delete(&key(&k), Condition::default()).await?;
                    model.remove(&k);
                }
                _ => {}
            }
        }
        // Drop every field: the old entries of these keys must not bring them back.
        let bare = Metadata::from([("site".into(), Value::from("north"))]);
        for i in [3, 8] {
            let k = name(i);
            db.update_metadata(&key(&k), bare.clone(), Condition::default())
                .await?;
            model.insert(k, bare.clone());
        }
        for i in [2, 22] {
            let metadata = scalar_metadata(&mut rng);
            put(&db, &mut model, &name(i), metadata, 200 + i).await?;
        }
        check_maintenance(&db, &model, &["patient_id", "score"], "after writes").await?;

        db.drop_index("score").await?;
        let listed = db.list_indexes().await?;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].field, "patient_id");
        check_maintenance(&db, &model, &["patient_id"], "after drop").await?;
        let err = db.drop_index("score").await.unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    // Reopen: the remaining index is still declared, ready and used; results are unchanged.
    {
        let db = Database::open(dir.path())?;
        let listed = db.list_indexes().await?;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].field, "patient_id");
        assert_eq!(listed[0].state, "ready");
        check_maintenance(&db, &model, &["patient_id"], "after reopen").await?;

        // More writes after the reopen, then an index declared again over the survivors.
        for i in [0, 1, 4] {
            let metadata = scalar_metadata(&mut rng);
            put(&db, &mut model, &name(i), metadata, 300 + i).await?;
        }
        db.delete(&key(&name(5)), Condition::default()).await?;
        model.remove(&name(5));
        db.create_index("score").await?;
        wait_ready(&db, &["patient_id", "score"]).await?;
        check_maintenance(&db, &model, &["patient_id", "score"], "rebuilt").await?;
    }

    let db = Database::open(dir.path())?;
    wait_ready(&db, &["patient_id", "score"]).await?;
    check_maintenance(&db, &model, &["patient_id", "score"], "second reopen").await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Counts answered by the index alone
// ---------------------------------------------------------------------------------------------

fn patient(id: &str, day: i64) -> Metadata {
    let mut meta = Metadata::new();
    meta.insert("patient_id".into(), Value::from(id));
    meta.insert("study_date".into(), date(day, false));
    meta
}

/// An exactly answering index counts entries without reading records: versions kept for an
/// older snapshot (replaced or deleted since) must not be counted by newer snapshots, and the
/// older snapshot must still find them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_index_counts_see_only_their_snapshot() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    for i in 0..10 {
        db.put_bytes(
            &key(&format!("p/{i}")),
            pattern(i, 8),
            patient("A", i as i64),
        )
        .await?;
    }
    db.create_index("patient_id").await?;
    db.create_index("study_date").await?;
    wait_ready(&db, &["patient_id", "study_date"]).await?;
    let is_a = Query::new(field("patient_id").eq("A"));
    let is_b = Query::new(field("patient_id").eq("B"));
    // Days 3..=6 with strict and inclusive bounds mixed, split over two conjuncts.
    let days = Query::new(and(vec![
        field("study_date").gt(date(2, false)),
        field("study_date").lte(date(6, false)),
    ]));
    assert_eq!(db.explain(&days).await?.access, "index");

    let old = db.begin().await?;
    for i in 0..4 {
        let meta = patient("B", 100 + i);
        db.update_metadata(&key(&format!("p/{i}")), meta, Condition::default())
            .await?;
    }
    for i in 8..10 {
        db.delete(&key(&format!("p/{i}")), Condition::default())
            .await?;
    }
    for (query, expected) in [(&is_a, 4), (&is_b, 4), (&days, 3)] {
        assert_eq!(db.count(query).await?, expected, "{:?}", query.filter);
        assert_eq!(db.query(query).await?.objects.len() as u64, expected);
    }
    assert_eq!(old.query(&is_a).await?.objects.len(), 10);
    assert_eq!(old.query(&days).await?.objects.len(), 4);
    old.rollback().await?;

    // With the old snapshot gone the next commits collect the old versions; counts hold, also
    // after a reopen.
    db.put_bytes(&key("p/4"), pattern(4, 8), patient("A", 4))
        .await?;
    assert_eq!(db.count(&is_a).await?, 4);
    drop(db);
    let db = Database::open(dir.path())?;
    wait_ready(&db, &["patient_id", "study_date"]).await?;
    for (query, expected) in [(&is_a, 4), (&is_b, 4), (&days, 3)] {
        assert_eq!(
            db.count(query).await?,
            expected,
            "{:?} after reopen",
            query.filter
        );
    }
    Ok(())
}

/// Values held by more keys than a posting list keeps are counted from their overflow
/// markers: counts must equal what queries return, at every snapshot, and after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_of_popular_values_match_their_rows_at_every_snapshot() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let day = |d: i64| Metadata::from([("day".into(), Value::Int(d))]);
    let per_day = [(1, 50), (2, 40), (3, 5), (4, 1)];
    let queries = || {
        vec![
            Query::new(field("day").eq(1)),
            Query::new(field("day").is_in([1, 3])),
            Query::new(and([field("day").gte(1), field("day").lt(4)])),
            Query::new(field("day").gt(1)),
        ]
    };
    let check = |label: &'static str| {
        move |query: Query, count: u64, rows: usize| {
            assert_eq!(count, rows as u64, "{label}: {:?}", query.filter);
        }
    };
    {
        let db = Database::open(dir.path())?;
        db.create_index("day").await?;
        wait_ready(&db, &["day"]).await?;
        for (d, n) in per_day {
            for i in 0..n {
                db.put_bytes(&key(&format!("d{d}/{i:03}")), pattern(i, 4), day(d))
                    .await?;
            }
        }
        let expected = [50u64, 55, 95, 46];
        for (query, want) in queries().into_iter().zip(expected) {
            assert_eq!(db.explain(&query).await?.access, "index");
            let count = db.count(&query).await?;
            assert_eq!(count, want, "{:?}", query.filter);
            let rows = db
                .query(&query.clone().with_limit(10_000))
                .await?
                .objects
                .len();
            check("fresh")(query, count, rows);
        }

        // An older snapshot keeps its counts while popular values change under it.
        let old = db.begin().await?;
        for i in 0..10 {
            db.delete(&key(&format!("d1/{i:03}")), Condition::default())
                .await?;
        }
        for i in 0..5 {
            db.update_metadata(&key(&format!("d2/{i:03}")), day(3), Condition::default())
                .await?;
        }
        let expected_now = [40u64, 50, 85, 46];
        let expected_old = [50u64, 55, 95, 46];
        for ((query, now), then) in queries().into_iter().zip(expected_now).zip(expected_old) {
            assert_eq!(db.count(&query).await?, now, "{:?}", query.filter);
            let rows = db
                .query(&query.clone().with_limit(10_000))
                .await?
                .objects
                .len();
            assert_eq!(rows as u64, now, "{:?}", query.filter);
            let old_rows = old
                .query(&query.clone().with_limit(10_000))
                .await?
                .objects
                .len();
            assert_eq!(old_rows as u64, then, "old snapshot {:?}", query.filter);
        }
        old.rollback().await?;
    }
    let db = Database::open(dir.path())?;
    wait_ready(&db, &["day"]).await?;
    for (query, want) in queries().into_iter().zip([40u64, 50, 85, 46]) {
        let count = db.count(&query).await?;
        assert_eq!(count, want, "after reopen {:?}", query.filter);
        let rows = db
            .query(&query.clone().with_limit(10_000))
            .await?
            .objects
            .len();
        check("reopened")(query, count, rows);
    }
    Ok(())
}

//! Test data: the random metadata documents (scalars, arrays, arrays of maps, the 2^53
//! neighbourhood and special floats) and the random filters over them, indexed fields or not.

use asterope::{and, field, not, or, Filter, Key, Metadata, Predicate, Timestamp, Value};

use crate::rng::Rng;

pub(crate) const PATIENTS: &[&str] = &["P001", "P002", "P010", "P100", "Q7", "p001"];
pub(crate) const MODALITIES: &[&str] = &["CT", "MR", "US", "CT-A"];
pub(crate) const TAGS: &[&str] = &["head", "neck", "chest", "contrast", "ct", "he"];
pub(crate) const BASE_SECS: i64 = 1_700_000_000;
pub(crate) const DAY: i64 = 86_400;
/// Objects in the randomized and sorting data sets.
pub(crate) const OBJECTS: usize = 60;
/// 2^53: integers from here on share `f64` encodings in the index.
pub(crate) const BIG: i64 = 1 << 53;

/// Fields the randomized test indexes.
pub(crate) const INDEXED: &[&str] = &["patient_id", "study_date", "slices", "tags", "study.series"];
/// Fields filters are generated on (indexed or not, and one never present).
pub(crate) const FIELDS: &[&str] = &[
    "patient_id",
    "study_date",
    "slices",
    "tags",
    "study.series",
    "modality",
    "note",
    "absent",
];

pub(crate) fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

pub(crate) fn date(day: i64, half: bool) -> Value {
    Value::Timestamp(Timestamp {
        secs: BASE_SECS + day * DAY,
        nanos: if half { 500_000_000 } else { 0 },
    })
}

pub(crate) fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect(),
    )
}

/// A number as stored in `slices`: ints, halves, the 2^53 neighbourhood and special floats.
pub(crate) fn number(rng: &mut Rng) -> Value {
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
pub(crate) fn small_number(rng: &mut Rng) -> Value {
    if rng.chance(1, 4) {
        Value::Float(rng.range(-2, 22) as f64 / 2.0)
    } else {
        Value::Int(rng.range(0, 10))
    }
}

/// A random metadata document of the randomized and sorting tests.
pub(crate) fn gen_metadata(rng: &mut Rng) -> Metadata {
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
pub(crate) fn has_array(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Map(map) => map.values().any(has_array),
        _ => false,
    }
}

/// The document without its fields that hold arrays: every indexed path then reaches at most
/// one scalar.
pub(crate) fn without_arrays(mut metadata: Metadata) -> Metadata {
    metadata.retain(|_, value| !has_array(value));
    metadata
}

/// An operand for a predicate on `name`: mostly of the field's own class, sometimes another.
pub(crate) fn operand(rng: &mut Rng, name: &str) -> Value {
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

pub(crate) fn prefix_operand(rng: &mut Rng, name: &str) -> String {
    let choices: &[&str] = match name {
        "patient_id" => &["", "P", "P0", "P00", "P001", "Q", "p", "P1"],
        "modality" => &["", "C", "CT", "CT-", "M"],
        "tags" => &["", "he", "c", "co", "n", "x"],
        "note" => &["n", "n1"],
        _ => &["", "1"],
    };
    (*rng.pick(choices)).to_string()
}

pub(crate) fn comparison(rng: &mut Rng, name: &str) -> Predicate {
    let value = operand(rng, name);
    match rng.below(4) {
        0 => Predicate::Gt(value),
        1 => Predicate::Gte(value),
        2 => Predicate::Lt(value),
        _ => Predicate::Lte(value),
    }
}

/// A filter on one field.
pub(crate) fn gen_leaf(rng: &mut Rng) -> Filter {
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
pub(crate) fn gen_filter(rng: &mut Rng, depth: u32) -> Filter {
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

//! Documents and values shared by the query module's unit tests.

use crate::{Metadata, Text, Timestamp, Value};

pub(super) fn doc(entries: &[(&str, Value)]) -> Metadata {
    entries
        .iter()
        .map(|(k, v)| (Text::from(*k), v.clone()))
        .collect()
}

pub(super) fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(doc(entries))
}

pub(super) fn array(items: &[Value]) -> Value {
    Value::Array(items.to_vec())
}

pub(super) fn ts(secs: i64) -> Value {
    Value::Timestamp(Timestamp { secs, nanos: 0 })
}

pub(super) fn sample() -> Metadata {
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

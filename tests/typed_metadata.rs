//! Typed metadata through every `Store`: a struct written with `put_with` comes back field for
//! field from `head_as` and `query_as`, embedded and over the network, with timestamps as
//! timestamps (queryable in time order), bytes as binary and integers beyond i64 refused; and
//! the filters `#[derive(Metadata)]` builds are the ones the JSON syntax gives.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

#[path = "common/server.rs"]
mod server;

use asterope::{
    as_timestamp, field, parse_filter, Client, Condition, Database, Key, Query, ServerConfig,
    SortSpec, Store, Timestamp, TypedStoreExt, Value,
};
use serde::{Deserialize, Serialize};
use server::TestServer;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, asterope::Metadata)]
struct Series {
    description: String,
    count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, asterope::Metadata)]
#[serde(rename_all = "UPPERCASE")]
enum Modality {
    Ct,
    Mr,
    #[serde(rename = "PET-CT")]
    PetCt,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, asterope::Metadata)]
struct Study {
    modality: Modality,
    patient_id: String,
    slices: i64,
    dose: f64,
    contrast: bool,
    taken: Timestamp,
    #[serde(with = "as_timestamp")]
    reported: OffsetDateTime,
    thumbnail: serde_bytes::ByteBuf,
    series: Series,
    note: Option<String>,
    tags: Vec<String>,
}

fn study(patient_id: &str, day: u32) -> Study {
    let taken = Timestamp::parse(&format!("2024-01-{day:02}T08:30:00.000000001Z")).unwrap();
    Study {
        modality: [Modality::Ct, Modality::Mr, Modality::PetCt][day as usize % 3],
        patient_id: patient_id.into(),
        slices: 100 + i64::from(day),
        dose: 0.25 * f64::from(day),
        contrast: day % 2 == 0,
        taken,
        reported: OffsetDateTime::try_from(taken).unwrap() + time::Duration::hours(3),
        thumbnail: serde_bytes::ByteBuf::from(vec![0, day as u8, 255]),
        series: Series {
            description: format!("series of day {day}"),
            count: day,
        },
        note: (day == 2).then(|| "re-scan".to_string()),
        tags: vec!["chest".into(), format!("day-{day}")],
    }
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

async fn typed_round_trips(store: &dyn Store) {
    let studies = [study("12345", 1), study("12345", 2), study("67890", 3)];
    for (i, s) in studies.iter().enumerate() {
        let info = store
            .put_with(&key(&format!("studies/{i}")), format!("body {i}"), s)
            .await
            .unwrap();
        assert_eq!(info.size, 6);
    }

    let mut changed = studies[1].clone();
    changed.note = None;
    let before = store.head(&key("studies/1")).await.unwrap();
    let info = store
        .update_metadata_with(
            &key("studies/1"),
            &changed,
            Condition::if_version(before.version),
        )
        .await
        .unwrap();
    assert_eq!((info.size, info.metadata["note"].clone()), (6, Value::Nil));
    store
        .update_metadata_with(&key("studies/1"), &studies[1], Condition::default())
        .await
        .unwrap();
    let head = store.head_as::<Study>(&key("studies/1")).await.unwrap();
    assert_eq!(head.metadata, studies[1]);
    assert_eq!(
        head.info.metadata["taken"],
        Value::Timestamp(studies[1].taken)
    );
    assert_eq!(
        head.info.metadata["thumbnail"],
        Value::Binary(vec![0, 2, 255])
    );

    // Timestamps are stored as timestamps: range queries compare them in time order.
    let fields = Study::fields();
    let mut query = Query::new(
        fields
            .patient_id
            .eq("12345")
            .and(fields.taken.gt(studies[0].taken)),
    );
    query.sort = Some(SortSpec::descending_by("reported"));
    let page = store.query_as::<Study>(&query).await.unwrap();
    let found: Vec<_> = page.objects.iter().map(|o| o.metadata.clone()).collect();
    assert_eq!(found, vec![studies[1].clone()]);
    assert_eq!(page.objects[0].info.key, key("studies/1"));

    let all = store
        .query_as::<Study>(&Query::new(fields.tags.eq("chest")))
        .await
        .unwrap();
    let found: Vec<_> = all.objects.into_iter().map(|o| o.metadata).collect();
    assert_eq!(found, studies.to_vec());

    let nested = fields
        .series
        .count
        .gte(2)
        .and(fields.reported.lt(studies[2].reported))
        .and(fields.note.exists(true))
        .and(fields.thumbnail.ne(&[0u8, 1, 255][..]));
    let page = store.query_as::<Study>(&Query::new(nested)).await.unwrap();
    let found: Vec<_> = page.objects.into_iter().map(|o| o.metadata).collect();
    assert_eq!(found, vec![studies[1].clone()]);

    assert_eq!(head.info.metadata["modality"], Value::from("PET-CT"));
    let by_modality = Query::new(fields.modality.is_in([Modality::Mr, Modality::PetCt]));
    let page = store.query_as::<Study>(&by_modality).await.unwrap();
    let found: Vec<_> = page.objects.into_iter().map(|o| o.metadata).collect();
    assert_eq!(found, vec![studies[0].clone(), studies[1].clone()]);
}

async fn out_of_range_and_misfit_errors(store: &dyn Store) {
    #[derive(Serialize)]
    struct Counter {
        n: u64,
    }
    let error = store
        .put_with(&key("counter"), "", &Counter { n: u64::MAX })
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_metadata");
    assert!(
        error.to_string().contains("18446744073709551615"),
        "{error}"
    );
    assert_eq!(
        store.head(&key("counter")).await.unwrap_err().code(),
        "not_found"
    );

    store
        .put_with(&key("counter"), "", &Counter { n: i64::MAX as u64 })
        .await
        .unwrap();
    let error = store.head_as::<Study>(&key("counter")).await.unwrap_err();
    assert_eq!(error.code(), "invalid_metadata");
    assert!(error.to_string().contains("counter"), "{error}");
    assert!(error.to_string().contains("missing field"), "{error}");
}

#[tokio::test]
async fn typed_metadata_round_trips_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    typed_round_trips(&db).await;
    out_of_range_and_misfit_errors(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_metadata_round_trips_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let server = TestServer::start(db, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await.unwrap();
    typed_round_trips(&client).await;
    out_of_range_and_misfit_errors(&client).await;
    server.stop().await;
}

#[derive(Serialize, Deserialize, asterope::Metadata)]
#[serde(rename_all = "camelCase")]
struct Renamed {
    patient_id: String,
    #[serde(rename = "StudyInstanceUID")]
    study_uid: String,
    #[serde(flatten)]
    series: Series,
    #[serde(skip)]
    #[allow(dead_code)]
    cache: Vec<u8>,
    #[asterope(skip)]
    raw: std::collections::HashMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r#type: Option<String>,
}

#[test]
fn derived_filters_are_the_json_filters_with_serde_names() {
    let json = |text: &str| parse_filter(text).unwrap();
    let f = Renamed::fields();
    assert_eq!(f.patient_id.eq("1"), json(r#"{"patientId": "1"}"#));
    assert_eq!(
        f.study_uid.is_in(["a", "b"]),
        json(r#"{"StudyInstanceUID": {"$in": ["a", "b"]}}"#)
    );
    assert_eq!(
        f.series.count.gt(3),
        json(r#"{"count": {"$gt": 3}}"#),
        "a flattened struct's fields are at the parent's level"
    );
    assert_eq!(f.r#type.ne("x"), json(r#"{"type": {"$ne": "x"}}"#));
    assert_eq!(
        f.series.description.prefix("CT"),
        field("description").prefix("CT")
    );

    let s = Study::fields();
    let date = Timestamp::parse("2024-01-31").unwrap();
    assert_eq!(
        s.series.description.eq("x").and(s.reported.lte(date)),
        json(
            r#"{"$and": [{"series.description": "x"},
                         {"reported": {"$lte": {"$date": "2024-01-31"}}}]}"#
        )
    );
    assert_eq!(
        s.slices.not_in([1, 2]),
        json(r#"{"slices": {"$nin": [1, 2]}}"#)
    );
    assert_eq!(s.dose.gte(0.5), json(r#"{"dose": {"$gte": 0.5}}"#));
    assert_eq!(s.contrast.eq(true), json(r#"{"contrast": true}"#));
    assert_eq!(
        s.note.exists(false),
        json(r#"{"note": {"$exists": false}}"#)
    );
    assert_eq!(s.series.count.eq(3), json(r#"{"series.count": 3}"#));
    assert_eq!(s.modality.eq(Modality::Ct), json(r#"{"modality": "CT"}"#));
    assert_eq!(
        s.modality.ne(Modality::PetCt),
        json(r#"{"modality": {"$ne": "PET-CT"}}"#)
    );
    let wanted = [Modality::Mr, Modality::PetCt];
    assert_eq!(
        s.modality.not_in(wanted.iter()),
        json(r#"{"modality": {"$nin": ["MR", "PET-CT"]}}"#)
    );
    let _ = Renamed {
        patient_id: String::new(),
        study_uid: String::new(),
        series: Series {
            description: String::new(),
            count: 0,
        },
        cache: Vec::new(),
        raw: Default::default(),
        r#type: None,
    }
    .raw;
}

//! Typed metadata through every `Store`: a struct written with `put_with` comes back field for
//! field from `head_as` and `query_as`, embedded and over the network, with timestamps as
//! timestamps (queryable in time order), bytes as binary and integers beyond i64 refused.

#[path = "common/server.rs"]
mod server;

use asterope::{
    as_timestamp, field, Client, Database, Key, Query, ServerConfig, SortSpec, Store, Timestamp,
    TypedStoreExt, Value,
};
use serde::{Deserialize, Serialize};
use server::TestServer;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Series {
    description: String,
    count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Study {
    patient_id: String,
    slices: i64,
    dose: f64,
    contrast: bool,
    taken: Timestamp,
    #[serde(with = "as_timestamp")]
    reported: OffsetDateTime,
    #[serde(with = "serde_bytes")]
    thumbnail: Vec<u8>,
    series: Series,
    note: Option<String>,
    tags: Vec<String>,
}

fn study(patient_id: &str, day: u32) -> Study {
    let taken = Timestamp::parse(&format!("2024-01-{day:02}T08:30:00.000000001Z")).unwrap();
    Study {
        patient_id: patient_id.into(),
        slices: 100 + i64::from(day),
        dose: 0.25 * f64::from(day),
        contrast: day % 2 == 0,
        taken,
        reported: OffsetDateTime::try_from(taken).unwrap() + time::Duration::hours(3),
        thumbnail: vec![0, day as u8, 255],
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
    let mut query = Query::new(
        field("patient_id")
            .eq("12345")
            .and(field("taken").gt(studies[0].taken)),
    );
    query.sort = Some(SortSpec::descending_by("reported"));
    let page = store.query_as::<Study>(&query).await.unwrap();
    let found: Vec<_> = page.objects.iter().map(|o| o.metadata.clone()).collect();
    assert_eq!(found, vec![studies[1].clone()]);
    assert_eq!(page.objects[0].info.key, key("studies/1"));

    let all = store
        .query_as::<Study>(&Query::new(field("tags").eq("chest")))
        .await
        .unwrap();
    let found: Vec<_> = all.objects.into_iter().map(|o| o.metadata).collect();
    assert_eq!(found, studies.to_vec());
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

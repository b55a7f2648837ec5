//! The places where Asterope's query semantics differ from MongoDB's, as docs/QUERY.md lists
//! them ("Differences from MongoDB"), run through a real store so the documentation stays true.

use asterope::{Database, Key, ObjectOps, Query, SortSpec, StoreExt};
use asterope_serialization::{metadata_from_json_str, parse_filter, query_from_json};
use bytes::Bytes;

async fn store_with(docs: &[(&str, &str)]) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path()).open().unwrap();
    for (key, meta) in docs {
        db.put_bytes(
            &Key::new(*key).unwrap(),
            Bytes::from_static(b"x"),
            metadata_from_json_str(meta).unwrap(),
        )
        .await
        .unwrap();
    }
    (dir, db)
}

async fn keys(db: &Database, filter: &str, sort: Option<&str>) -> Vec<String> {
    let mut query = Query::new(parse_filter(filter).unwrap());
    query.sort = sort.map(|s| SortSpec::parse(s).unwrap());
    let page = db.query(&query).await.unwrap();
    page.objects.iter().map(|o| o.key.to_string()).collect()
}

#[tokio::test]
async fn null_through_an_array_of_maps_needs_every_element_without_a_value() {
    let (_dir, db) = store_with(&[
        ("one_has_b", r#"{"a": [{"b": 1}, {"c": 2}]}"#),
        ("none_has_b", r#"{"a": [{"c": 1}, {"c": 2}]}"#),
        ("null_b", r#"{"a": [{"b": 1}, {"b": null}]}"#),
        ("scalars", r#"{"a": [1, 2]}"#),
        ("no_a", r#"{"z": 1}"#),
    ])
    .await;
    // MongoDB also matches "one_has_b" (an element lacks b); here a path that reaches any
    // value is not missing.
    assert_eq!(
        keys(&db, r#"{"a.b": null}"#, None).await,
        ["no_a", "none_has_b", "null_b", "scalars"]
    );
}

#[tokio::test]
async fn binaries_compare_bytewise_not_by_length_first() {
    let (_dir, db) = store_with(&[
        ("long_small", r#"{"b": {"$base64": "AAAA"}}"#),
        ("short_big", r#"{"b": {"$base64": "/w=="}}"#),
    ])
    .await;
    // MongoDB orders BinData by length first: 0x00 0x00 0x00 < 0xff there, not here.
    assert_eq!(
        keys(&db, r#"{"b": {"$gt": {"$base64": "AAAA"}}}"#, None).await,
        ["short_big"]
    );
    assert_eq!(
        keys(&db, "{}", Some("b")).await,
        ["long_small", "short_big"]
    );
}

#[tokio::test]
async fn sort_on_an_array_uses_the_whole_array() {
    let (_dir, db) = store_with(&[
        ("array_low_first", r#"{"n": [1, 100]}"#),
        ("array_high_first", r#"{"n": [50, 0]}"#),
        ("scalar", r#"{"n": 70}"#),
        ("text", r#"{"n": "z"}"#),
        ("array_of_maps", r#"{"m": [{"k": 1}]}"#),
        ("map", r#"{"m": {"k": 0}}"#),
    ])
    .await;
    // MongoDB sorts ascending by each array's smallest element (0, 1, 70); here an array is
    // one value of the array class, after every scalar, compared element by element. A path
    // through an array of maps sorts as missing (null).
    assert_eq!(
        keys(&db, "{}", Some("n")).await,
        [
            "array_of_maps",
            "map",
            "scalar",
            "text",
            "array_low_first",
            "array_high_first"
        ]
    );
    // MongoDB puts "map" (k = 0) before "array_of_maps" (k = 1).
    let by_k = keys(&db, r#"{"m": {"$exists": true}}"#, Some("m.k")).await;
    assert_eq!(by_k, ["array_of_maps", "map"]);
}

#[tokio::test]
async fn maps_equal_whatever_the_order_of_their_fields() {
    let (_dir, db) = store_with(&[("doc", r#"{"d": {"x": 1, "y": 2}}"#)]).await;
    // MongoDB compares embedded documents field by field in stored order.
    assert_eq!(keys(&db, r#"{"d": {"y": 2, "x": 1}}"#, None).await, ["doc"]);
}

#[tokio::test]
async fn type_order_puts_containers_after_timestamps() {
    let (_dir, db) = store_with(&[
        ("map", r#"{"v": {"k": 1}}"#),
        ("array", r#"{"v": [1]}"#),
        ("date", r#"{"v": {"$date": "2024-01-01"}}"#),
        ("bool", r#"{"v": true}"#),
        ("binary", r#"{"v": {"$base64": "AA=="}}"#),
        ("string", r#"{"v": "s"}"#),
        ("number", r#"{"v": 1}"#),
        ("null", r#"{"v": null}"#),
    ])
    .await;
    assert_eq!(
        keys(&db, "{}", Some("v")).await,
        ["null", "number", "string", "binary", "bool", "date", "array", "map"]
    );
}

#[test]
fn count_is_a_route_not_a_request_field() {
    let err = query_from_json(serde_json::json!({"filter": {}, "count": true})).unwrap_err();
    assert_eq!(err.code(), "invalid_query");
}

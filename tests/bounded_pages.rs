//! Pages are bounded by bytes as well as rows, and sorted pages come from a bounded top-k:
//! followed through their cursors, pages give every object exactly once, in order, whatever
//! the limit, the direction, ties and missing sort fields.

mod common;

use asterope::{
    compare_values, Database, Filter, Key, ListOptions, Metadata, ObjectOps, Query, SortSpec,
    StoreExt, Value,
};
use bytes::Bytes;

/// Every page of `query`, followed through its cursors; the keys, and how many pages.
async fn all_sorted(db: &Database, query: Query) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut pages = 0;
    let mut query = query;
    loop {
        let page = db.query(&query).await.unwrap();
        pages += 1;
        keys.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => query = query.with_cursor(next),
            None => return (keys, pages),
        }
    }
}

async fn all_listed(db: &Database, limit: usize) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let options = ListOptions {
            limit,
            cursor: cursor.take(),
            ..ListOptions::default()
        };
        let page = db.list(options).await.unwrap();
        pages += 1;
        keys.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (keys, pages),
        }
    }
}

#[tokio::test]
async fn sorted_pages_through_cursors_equal_one_full_sort() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    // Many ties, some missing fields, mixed kinds.
    let mut values = Vec::new();
    for i in 0..150u64 {
        let key = format!("k{:03}", (i * 37) % 150);
        let mut meta = Metadata::new();
        let value = match i % 5 {
            0 => None,
            1 => Some(Value::from(format!("s{}", i % 4))),
            _ => Some(Value::Int((i % 9) as i64)),
        };
        if let Some(v) = &value {
            meta.insert("v".into(), v.clone());
        }
        db.put_bytes(&Key::new(&key).unwrap(), Bytes::from_static(b"."), meta)
            .await
            .unwrap();
        values.push((value.unwrap_or(Value::Nil), key));
    }
    for descending in [false, true] {
        let mut expected = values.clone();
        expected.sort_by(|a, b| {
            let by_value = compare_values(&a.0, &b.0);
            let by_value = if descending {
                by_value.reverse()
            } else {
                by_value
            };
            by_value.then_with(|| a.1.cmp(&b.1))
        });
        let expected: Vec<String> = expected.into_iter().map(|(_, k)| k).collect();
        for limit in [1, 7, 50, 149, 150, 1000] {
            let sort = if descending {
                SortSpec::descending_by("v")
            } else {
                SortSpec::ascending_by("v")
            };
            let query = Query::new(Filter::True).with_sort(sort).with_limit(limit);
            let (keys, _) = all_sorted(&db, query).await;
            assert_eq!(keys, expected, "descending {descending}, limit {limit}");
        }
    }
}

/// ~60 KB of metadata.
fn large_metadata(i: usize) -> Metadata {
    let mut meta = Metadata::new();
    meta.insert("rank".into(), Value::Int(i as i64));
    meta.insert("text".into(), Value::from("x".repeat(60_000)));
    meta
}

#[tokio::test]
async fn pages_of_large_metadata_end_early_by_bytes_and_cursors_continue() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    const OBJECTS: usize = 60;
    for i in 0..OBJECTS {
        let key = Key::new(format!("big/{i:03}")).unwrap();
        db.put_bytes(&key, Bytes::from_static(b"."), large_metadata(i))
            .await
            .unwrap();
    }
    let in_key_order: Vec<String> = (0..OBJECTS).map(|i| format!("big/{i:03}")).collect();
    let first = db
        .list(ListOptions {
            limit: 1000,
            ..ListOptions::default()
        })
        .await
        .unwrap();
    // 60 x 60 KB is over a page's byte budget: the page ends early, with a cursor.
    assert!(first.objects.len() < OBJECTS, "one page held all {OBJECTS}");
    assert!(!first.objects.is_empty());
    assert!(first.next.is_some());
    let (listed, pages) = all_listed(&db, 1000).await;
    assert_eq!(listed, in_key_order);
    assert!(pages > 1);

    let sorted = Query::new(Filter::True)
        .with_sort(SortSpec::descending_by("rank"))
        .with_limit(1000);
    let (keys, pages) = all_sorted(&db, sorted).await;
    let by_rank_descending: Vec<String> = in_key_order.iter().rev().cloned().collect();
    assert_eq!(keys, by_rank_descending);
    assert!(pages > 1);
}

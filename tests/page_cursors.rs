//! Page cursors are opaque tokens bound to the query that issued them: garbage, a key
//! spelled as a cursor, or a cursor reused with another sort, filter or prefix is refused with
//! a clear error, never read as some other position; a page size of 0 is refused too; a key
//! prefix that no key can have selects nothing.

mod common;

use asterope::{
    field, Database, Filter, Key, ListOptions, Metadata, ObjectOps, Query, SortSpec, StoreExt,
    Value,
};
use common::pattern;

async fn filled() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for i in 0..20i64 {
        let mut metadata = Metadata::new();
        metadata.insert("n".into(), Value::Int(i % 7));
        metadata.insert("even".into(), Value::Bool(i % 2 == 0));
        let key = Key::new(format!("k/{i:02}")).unwrap();
        db.put_bytes(&key, pattern(i as u64, 10), metadata)
            .await
            .unwrap();
    }
    (dir, db)
}

#[tokio::test]
async fn garbage_list_cursors_are_refused_as_invalid_arguments() {
    let (_dir, db) = filled().await;
    let first = db.list(ListOptions::default().with_limit(5)).await.unwrap();
    let next = first.next.clone().unwrap();
    // The issued cursor works, and paging ends with the last key.
    let second = db
        .list(
            ListOptions::default()
                .with_limit(5)
                .with_cursor(Some(next.clone())),
        )
        .await
        .unwrap();
    assert_eq!(second.objects[0].key.as_str(), "k/05");
    let garbage = [
        "\0".to_string(),
        "zz".into(),
        "k/04".into(),
        String::new(),
        format!("{next}00"),
        next.to_uppercase(),
        next[..next.len() - 2].to_string(),
    ];
    for cursor in garbage {
        let err = db
            .list(ListOptions::default().with_cursor(Some(cursor.clone())))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{cursor:?}: {err}");
    }
    // The cursor belongs to a listing of every key: another prefix is refused.
    let err = db
        .list(
            ListOptions::default()
                .with_prefix("k/1")
                .with_cursor(Some(next)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
}

#[tokio::test]
async fn a_cursor_reused_with_another_query_shape_is_refused() {
    let (_dir, db) = filled().await;
    let by_n = Query::new(Filter::True)
        .with_sort(SortSpec::ascending_by("n"))
        .with_limit(3);
    let next = db.query(&by_n).await.unwrap().next.unwrap();
    assert!(db
        .query(&by_n.clone().with_cursor(next.clone()))
        .await
        .is_ok());
    let other_shapes = [
        by_n.clone().with_sort(SortSpec::descending_by("n")),
        by_n.clone().with_sort(SortSpec::ascending_by("even")),
        by_n.clone().with_filter(field("even").eq(true)),
        by_n.clone().with_key_prefix("k/1"),
        Query::new(Filter::True).with_limit(3),
    ];
    for shape in other_shapes {
        let err = db
            .query(&shape.clone().with_cursor(next.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_query", "{shape:?}: {err}");
    }
    // A different page size is the same query shape.
    let page = db
        .query(&by_n.clone().with_limit(50).with_cursor(next))
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 17);
    // A key-ordered cursor is not a sorted one.
    let unsorted = Query::new(Filter::True).with_limit(3);
    let key_cursor = db.query(&unsorted).await.unwrap().next.unwrap();
    let err = db.query(&by_n.with_cursor(key_cursor)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_query", "{err}");
}

#[tokio::test]
async fn a_page_of_zero_rows_is_refused() {
    let (_dir, db) = filled().await;
    let err = db
        .query(&Query::new(Filter::True).with_limit(0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_query", "{err}");
    // The library's list options keep 0 as "the default page size", as documented.
    let page = db.list(ListOptions::default()).await.unwrap();
    assert_eq!(page.objects.len(), 20);
}

#[tokio::test]
async fn a_prefix_below_every_key_selects_nothing_instead_of_failing() {
    let (_dir, db) = filled().await;
    for prefix in ["\0", "\0oracle", "k/\0", "\u{1}"] {
        let listed = db.list(ListOptions::default().with_prefix(prefix)).await;
        assert_eq!(listed.unwrap().objects.len(), 0, "{prefix:?}");
        let query = Query::new(Filter::True).with_key_prefix(prefix);
        assert_eq!(
            db.query(&query).await.unwrap().objects.len(),
            0,
            "{prefix:?}"
        );
        assert_eq!(db.count(&query).await.unwrap(), 0, "{prefix:?}");
    }
}

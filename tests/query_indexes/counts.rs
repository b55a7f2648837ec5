//! Counts answered by the index alone: exact counts and counts of popular values (overflow
//! markers) equal the rows queries return, at every snapshot and after a reopen.

use asterope::{
    and, field, Condition, Database, Metadata, ObjectOps, PlanAccess, Query, Store, StoreExt, Value,
};

use crate::common::pattern;
use crate::data::{date, key};
use crate::model::wait_ready;

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
    assert_eq!(db.explain(&days).await?.access, PlanAccess::Index);

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
            assert_eq!(db.explain(&query).await?.access, PlanAccess::Index);
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

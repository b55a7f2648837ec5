//! Snapshot consistency while writers run: a transaction's indexed query does not change
//! between reads, and each query outside one returns current matches once, in key order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asterope::{
    field, Condition, Database, Error, ListOptions, Metadata, ObjectOps, PlanAccess, Query, Store,
    StoreExt, Value,
};

use crate::common::pattern;
use crate::data::key;
use crate::model::{compare_with_model, keys_of, wait_ready};
use crate::rng::Rng;

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
    assert_eq!(db.explain(&query).await?.access, PlanAccess::Index);
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
        assert_eq!(access, PlanAccess::Index);
        assert_eq!(problem, None);
    }
    Ok(())
}

//! Cases over the query routes (pages with sort and cursors, counts, plans, refused queries)
//! and, for stores that have them, secondary indexes (declared, used by plans, dropped).

use asterope::{
    field, IndexState, Metadata, ObjectOps, PlanAccess, Query, SortSpec, Store, StoreExt, Value,
};

use crate::common::pattern;
use crate::key;

/// Twenty objects `q/00`..`q/19`: `patient_id` cycles through P0..P3, `slices` is the number.
async fn put_patients(store: &dyn ObjectOps) {
    for i in 0..20i64 {
        let mut meta = Metadata::new();
        meta.insert("patient_id".into(), Value::from(format!("P{}", i % 4)));
        meta.insert("slices".into(), Value::Int(i));
        store
            .put_bytes(&key(&format!("q/{i:02}")), pattern(i as u64, 10), meta)
            .await
            .unwrap();
    }
}

/// The objects of patient P1, in key order.
const P1_KEYS: [&str; 5] = ["q/01", "q/05", "q/09", "q/13", "q/17"];

fn keys_of(objects: &[asterope::ObjectInfo]) -> Vec<String> {
    objects.iter().map(|o| o.key.to_string()).collect()
}

/// How `query` would run: `index` or `scan`.
async fn access(store: &dyn ObjectOps, query: &Query) -> PlanAccess {
    store.explain(query).await.unwrap().access
}

pub async fn queries(store: &dyn ObjectOps) {
    put_patients(store).await;
    let query = Query::new(field("patient_id").eq("P1")).with_key_prefix("q/");
    assert_eq!(
        keys_of(&store.query(&query).await.unwrap().objects),
        P1_KEYS
    );
    let sorted = Query::new(field("slices").gte(15))
        .with_sort(SortSpec::descending_by("slices"))
        .with_limit(2);
    let page = store.query(&sorted).await.unwrap();
    assert_eq!(keys_of(&page.objects), vec!["q/19", "q/18"]);
    let rest = store
        .query(&sorted.clone().with_cursor(page.next.unwrap()))
        .await
        .unwrap();
    assert_eq!(keys_of(&rest.objects), vec!["q/17", "q/16"]);
    assert_eq!(
        store
            .count(&Query::new(field("slices").lt(5)))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        access(store, &Query::new(field("slices").lt(5))).await,
        PlanAccess::Scan
    );
    let err = store
        .query(&Query::new(field("x").eq(1)).with_limit(1_000_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_query");
}

pub async fn indexes(store: &dyn Store) {
    put_patients(store).await;
    let info = store.create_index("patient_id").await.unwrap();
    assert_eq!(info.field, "patient_id");
    for _ in 0..200 {
        if store
            .list_indexes()
            .await
            .unwrap()
            .iter()
            .all(|i| i.state == IndexState::Ready)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let query = Query::new(field("patient_id").eq("P1")).with_key_prefix("q/");
    assert_eq!(access(store, &query).await, PlanAccess::Index);
    assert_eq!(
        keys_of(&store.query(&query).await.unwrap().objects),
        P1_KEYS
    );
    assert_eq!(
        access(store, &Query::new(field("slices").lt(5))).await,
        PlanAccess::Scan
    );
    store.drop_index("patient_id").await.unwrap();
    assert_eq!(
        store.drop_index("patient_id").await.unwrap_err().code(),
        "not_found"
    );
    assert_eq!(access(store, &query).await, PlanAccess::Scan);
}

//! Sorting and pagination: sorted and key-ordered pages, followed through their cursors at
//! several page sizes, give the naive order; ties break by ascending key.

use std::collections::BTreeMap;

use asterope::{
    compare_values, field, or, Database, Filter, Metadata, ObjectOps, Query, SortSpec, Store, Value,
};

use crate::data::{date, gen_metadata, BASE_SECS, DAY, OBJECTS};
use crate::model::{keys_of, naive, put, wait_ready};
use crate::rng::Rng;

/// The model's matches ordered as the store documents it: by the sort field's value
/// (`compare_values`, missing as null; reversed when descending), ties by ascending key.
fn naive_sorted(
    model: &BTreeMap<String, Metadata>,
    filter: &Filter,
    sort: &SortSpec,
) -> Vec<String> {
    let mut matches: Vec<(&String, &Metadata)> =
        model.iter().filter(|(_, m)| filter.matches(m)).collect();
    matches.sort_by(|(ka, a), (kb, b)| sort.compare(a, b).then_with(|| ka.cmp(kb)));
    matches.into_iter().map(|(k, _)| k.clone()).collect()
}

/// Follows cursors from the first page to the end, checking page sizes.
async fn all_pages(db: &Database, query: Query, limit: usize) -> asterope::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut q = query.clone().with_limit(limit);
        if let Some(c) = cursor.take() {
            q = q.with_cursor(c);
        }
        let page = db.query(&q).await?;
        assert!(page.objects.len() <= limit, "page over the limit");
        out.extend(keys_of(&page.objects));
        match page.next {
            Some(next) => {
                assert_eq!(page.objects.len(), limit, "a short page with a next cursor");
                cursor = Some(next);
            }
            None => return Ok(out),
        }
    }
    panic!("cursors never ended for {query:?}");
}

#[tokio::test]
async fn sorted_and_key_ordered_pages_follow_cursors_to_the_naive_order() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(7);
    for i in 0..OBJECTS {
        let mut metadata = gen_metadata(&mut rng);
        // Few distinct dates, so that ties are common.
        if let Some(Value::Timestamp(t)) = metadata.get_mut("study_date") {
            t.secs = BASE_SECS + (t.secs - BASE_SECS) % (4 * DAY);
        }
        put(
            &db,
            &mut model,
            &format!("k{:02}", (i * 37) % 97),
            metadata,
            i as u64,
        )
        .await?;
    }
    db.create_index("study_date").await?;
    db.create_index("patient_id").await?;
    wait_ready(&db, &["study_date", "patient_id"]).await?;

    let filters = [
        Filter::True,
        field("patient_id").is_in(["P001", "P002", "P010"]),
        field("study_date").gte(date(1, false)),
        field("modality").eq("CT"),
        or([
            field("study_date").exists(false),
            field("patient_id").eq("Q7"),
        ]),
    ];
    let sorts = [
        SortSpec::ascending_by("study_date"),
        SortSpec::descending_by("study_date"),
        SortSpec::ascending_by("study.series"),
        SortSpec::descending_by("slices"),
    ];
    for filter in &filters {
        for sort in &sorts {
            let expected = naive_sorted(&model, filter, sort);
            for limit in [1, 7, 25, 10_000] {
                let query = Query::new(filter.clone()).with_sort(sort.clone());
                let got = all_pages(&db, query, limit).await?;
                assert_eq!(got, expected, "filter {filter:?} sort {sort} limit {limit}");
            }
        }
        // Without a sort: key order, through the index or a scan alike.
        let expected = naive(&model, filter, None);
        for limit in [1, 7, 10_000] {
            let got = all_pages(&db, Query::new(filter.clone()), limit).await?;
            assert_eq!(got, expected, "filter {filter:?} key order, limit {limit}");
        }
    }

    // Descending order reverses the values only: equal dates still come in ascending key order.
    let down = naive_sorted(
        &model,
        &Filter::True,
        &SortSpec::descending_by("study_date"),
    );
    let date_of = |k: &String| model[k].get("study_date").cloned().unwrap_or(Value::Nil);
    let mut ties = 0;
    for pair in down.windows(2) {
        let order = compare_values(&date_of(&pair[0]), &date_of(&pair[1]));
        assert!(order.is_ge(), "{pair:?}");
        if order.is_eq() {
            ties += 1;
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }
    assert!(ties > 5, "the data should have ties, got {ties}");

    // A cursor from a sorted query is refused by name when it is garbage.
    let bad = Query::new(Filter::True)
        .with_sort(SortSpec::ascending_by("study_date"))
        .with_cursor("zz");
    let err = db.query(&bad).await.unwrap_err();
    assert_eq!(err.code(), "invalid_query");
    Ok(())
}

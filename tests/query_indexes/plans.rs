//! Query plans: `explain` uses an index only for indexable predicates, and index answers equal
//! scans for values reached through arrays (array elements, several comparisons satisfied by
//! different values).

use std::collections::BTreeMap;

use asterope::{
    and, field, not, or, Database, Filter, Metadata, ObjectOps, PlanAccess, Predicate, Query,
    Store, Value,
};

use crate::data::{date, gen_metadata, map, without_arrays};
use crate::model::{compare_with_model, naive, put, wait_ready};
use crate::rng::Rng;

#[tokio::test]
async fn explain_uses_an_index_only_for_indexable_predicates() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(99);
    for i in 0..20 {
        // Scalars only: this test is about plans (arrays have their own tests below).
        let metadata = without_arrays(gen_metadata(&mut rng));
        put(&db, &mut model, &format!("e/{i:02}"), metadata, i).await?;
    }
    // Before any index exists, everything is a scan.
    let before = db
        .explain(&Query::new(field("patient_id").eq("P001")))
        .await?;
    assert_eq!(before.access, PlanAccess::Scan);
    assert_eq!(before.index, None);

    db.create_index("patient_id").await?;
    db.create_index("study_date").await?;
    db.create_index("study.series").await?;
    // Declaring an index again is idempotent.
    let again = db.create_index("patient_id").await?;
    assert_eq!(again.field, "patient_id");
    wait_ready(&db, &["patient_id", "study_date", "study.series"]).await?;
    let listed: Vec<String> = db
        .list_indexes()
        .await?
        .into_iter()
        .map(|i| i.field)
        .collect();
    assert_eq!(listed, ["patient_id", "study.series", "study_date"]);

    let uses = |filter: Filter, index: &'static str, kind: &'static str| (filter, index, kind);
    let indexed = [
        uses(field("patient_id").eq("P001"), "patient_id", "equality"),
        uses(
            field("patient_id").is_in(["P001", "Q7"]),
            "patient_id",
            "$in",
        ),
        uses(field("patient_id").prefix("P0"), "patient_id", "prefix"),
        uses(
            field("study_date").gte(date(3, false)),
            "study_date",
            "range",
        ),
        uses(
            field("study_date").matching(Predicate::All(vec![
                Predicate::Gt(date(2, false)),
                Predicate::Lte(date(6, true)),
            ])),
            "study_date",
            "range",
        ),
        uses(field("study.series").lt(4), "study.series", "range"),
        // Range conjuncts on one field are combined into one range.
        uses(
            and([
                field("study_date").gte(date(1, false)),
                field("study_date").lt(date(4, false)),
            ]),
            "study_date",
            "range",
        ),
        // A top-level conjunct is enough; equality is preferred over a range.
        uses(
            and([
                field("modality").eq("CT"),
                field("study_date").lt(date(5, false)),
                field("patient_id").eq("P002"),
            ]),
            "patient_id",
            "equality",
        ),
    ];
    for (filter, index, kind) in indexed {
        let plan = db.explain(&Query::new(filter.clone())).await?;
        assert_eq!(plan.access, PlanAccess::Index, "{filter:?}: {plan:?}");
        assert_eq!(plan.index.as_deref(), Some(index), "{filter:?}: {plan:?}");
        assert!(plan.detail.contains(kind), "{filter:?}: {plan:?}");
        let (problem, _) =
            compare_with_model(&db, &model, &Query::new(filter).with_limit(10_000)).await?;
        assert_eq!(problem, None);
    }

    let scanned = [
        field("modality").eq("CT"),
        field("note").eq("n1"),
        field("patient_id").ne("P001"),
        field("patient_id").not_in(["P001"]),
        field("patient_id").exists(true),
        field("patient_id").eq(Value::Nil),
        field("patient_id").is_in([Value::from("P001"), Value::Nil]),
        field("patient_id").matching(Predicate::Not(Box::new(Predicate::Eq("P001".into())))),
        not(field("patient_id").eq("P001")),
        or([field("patient_id").eq("P001"), field("patient_id").eq("Q7")]),
        field("study_date").matching(Predicate::All(vec![
            Predicate::Gt(date(2, false)),
            Predicate::Lt(Value::Int(5)),
        ])),
        field("patient_id").eq(Value::Array(vec!["P001".into()])),
        and([field("modality").eq("CT"), field("note").eq("n1")]),
        Filter::True,
    ];
    for filter in scanned {
        let plan = db.explain(&Query::new(filter.clone())).await?;
        assert_eq!(plan.access, PlanAccess::Scan, "{filter:?}: {plan:?}");
        assert_eq!(plan.index, None, "{filter:?}: {plan:?}");
        let (problem, _) =
            compare_with_model(&db, &model, &Query::new(filter).with_limit(10_000)).await?;
        assert_eq!(problem, None);
    }
    Ok(())
}

/// Documents whose indexed field is an array are found through the index by any element, as
/// by a scan (index.rs: "a version whose field holds an array contributes one entry per
/// distinct scalar element").
#[tokio::test]
async fn array_elements_are_found_through_an_index() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    let docs = [
        ("a/1", Value::Array(vec!["ct".into(), "head".into()])),
        ("a/2", Value::from("head")),
        ("a/3", Value::Array(vec![])),
        ("a/4", Value::Array(vec!["neck".into()])),
    ];
    for (i, (name, tags)) in docs.iter().enumerate() {
        let metadata = Metadata::from([("tags".into(), tags.clone())]);
        put(&db, &mut model, name, metadata, i as u64).await?;
    }
    db.create_index("tags").await?;
    // One more after the index is declared: written by the commit, not the build.
    let late = Metadata::from([(
        "tags".into(),
        Value::Array(vec!["head".into(), "neck".into()]),
    )]);
    put(&db, &mut model, "a/5", late, 5).await?;
    wait_ready(&db, &["tags"]).await?;
    let filters = [
        field("tags").eq("head"),
        field("tags").is_in(["neck"]),
        field("tags").prefix("he"),
        field("tags").gte("h"),
    ];
    let mut problems = Vec::new();
    for filter in filters {
        let query = Query::new(filter).with_limit(100);
        let (problem, access) = compare_with_model(&db, &model, &query).await?;
        assert_eq!(access, PlanAccess::Index);
        problems.extend(problem);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Several comparisons on one field may be satisfied by different values the path reaches
/// (docs: "on an array field each may be satisfied by a different element"); the index range
/// must not require one value to satisfy them all.
#[tokio::test]
async fn comparisons_on_several_values_through_an_index() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path())?;
    let mut model = BTreeMap::new();
    // `study.series` reaches 1 and 10 through an array of maps.
    let fanned = Metadata::from([(
        "study".into(),
        Value::Array(vec![
            map(&[("series", Value::Int(1))]),
            map(&[("series", Value::Int(10))]),
        ]),
    )]);
    put(&db, &mut model, "f/1", fanned, 1).await?;
    let single = Metadata::from([("study".into(), map(&[("series", Value::Int(5))]))]);
    put(&db, &mut model, "f/2", single, 2).await?;
    // The same range in its two forms: one field with two operators, and two conjuncts.
    let forms = [
        field("study.series").matching(Predicate::All(vec![
            Predicate::Gt(Value::Int(2)),
            Predicate::Lt(Value::Int(8)),
        ])),
        and([field("study.series").gt(2), field("study.series").lt(8)]),
    ];
    for filter in &forms {
        // Evaluation: f/1 matches (10 > 2, 1 < 8), f/2 matches (5).
        assert_eq!(naive(&model, filter, None), ["f/1", "f/2"]);
        let query = Query::new(filter.clone()).with_limit(100);
        let (problem, access) = compare_with_model(&db, &model, &query).await?;
        assert_eq!(access, PlanAccess::Scan);
        assert_eq!(problem, None);
    }

    db.create_index("study.series").await?;
    wait_ready(&db, &["study.series"]).await?;
    let mut problems = Vec::new();
    for filter in &forms {
        let query = Query::new(filter.clone()).with_limit(100);
        let (problem, access) = compare_with_model(&db, &model, &query).await?;
        assert_eq!(access, PlanAccess::Index, "{filter:?}");
        problems.extend(problem);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

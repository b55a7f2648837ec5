//! Index maintenance: overwrites, deletes, dropped fields, a dropped index, reopening and
//! declaring an index again all keep index answers equal to the model's.

use std::collections::BTreeMap;

use asterope::{
    and, field, Condition, Database, Filter, IndexState, Metadata, ObjectOps, PlanAccess,
    Predicate, Query, Store, Value,
};

use crate::data::{key, PATIENTS};
use crate::model::{compare_with_model, put, wait_ready};
use crate::rng::Rng;

/// Scalar-only documents, so that this test is about maintenance rather than arrays.
fn scalar_metadata(rng: &mut Rng) -> Metadata {
    let mut m = Metadata::new();
    if !rng.chance(1, 8) {
        m.insert("patient_id".into(), (*rng.pick(PATIENTS)).into());
    }
    let score = if rng.chance(1, 3) {
        Value::Float(rng.range(-10, 200) as f64 / 2.0)
    } else {
        Value::Int(rng.range(-5, 100))
    };
    m.insert("score".into(), score);
    m.insert("site".into(), (*rng.pick(&["north", "south"])).into());
    m
}

fn maintenance_filters() -> Vec<(Filter, Option<&'static str>)> {
    vec![
        (field("patient_id").eq("P001"), Some("patient_id")),
        (
            field("patient_id").is_in(["P002", "Q7"]),
            Some("patient_id"),
        ),
        (field("patient_id").prefix("P0"), Some("patient_id")),
        (field("score").gt(50), Some("score")),
        (field("score").eq(0), Some("score")),
        (
            field("score").matching(Predicate::All(vec![
                Predicate::Gte(Value::Int(10)),
                Predicate::Lt(Value::Float(60.5)),
            ])),
            Some("score"),
        ),
        (
            and([field("site").eq("north"), field("patient_id").eq("P010")]),
            Some("patient_id"),
        ),
        (field("site").eq("south"), None),
    ]
}

/// Every maintenance filter returns what the model selects; the plan uses the expected index
/// when `indexes` holds it, and scans otherwise.
async fn check_maintenance(
    db: &Database,
    model: &BTreeMap<String, Metadata>,
    indexes: &[&str],
    stage: &str,
) -> asterope::Result<()> {
    for (filter, index) in maintenance_filters() {
        let query = Query::new(filter.clone()).with_limit(10_000);
        let (problem, access) = compare_with_model(db, model, &query).await?;
        assert_eq!(problem, None, "{stage}");
        let plan = db.explain(&query).await?;
        match index.filter(|i| indexes.contains(i)) {
            Some(i) => {
                assert_eq!(access, PlanAccess::Index, "{stage}: {filter:?}");
                assert_eq!(plan.index.as_deref(), Some(i), "{stage}: {filter:?}");
            }
            None => assert_eq!(access, PlanAccess::Scan, "{stage}: {filter:?}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_follow_overwrites_deletes_drop_and_reopen() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    let mut rng = Rng::new(5);
    let name = |i: u64| format!("m/{i:02}");
    {
        let db = Database::open(dir.path())?;
        for i in 0..50 {
            let metadata = scalar_metadata(&mut rng);
            put(&db, &mut model, &name(i), metadata, i).await?;
        }
        db.create_index("patient_id").await?;
        db.create_index("score").await?;
        wait_ready(&db, &["patient_id", "score"]).await?;
        check_maintenance(&db, &model, &["patient_id", "score"], "built").await?;

        // Overwrites (new blob or metadata only), deletes, and re-creations of deleted keys.
        for i in 0..50 {
            let k = name(i);
            match i % 5 {
                0 => {
                    let metadata = scalar_metadata(&mut rng);
                    put(&db, &mut model, &k, metadata, 100 + i).await?;
                }
                1 => {
                    let metadata = scalar_metadata(&mut rng);
                    db.update_metadata(&key(&k), metadata.clone(), Condition::default())
                        .await?;
                    model.insert(k, metadata);
                }
                2 if i % 10 == 2 => {
                    db.delete(&key(&k), Condition::default()).await?;
                    model.remove(&k);
                }
                _ => {}
            }
        }
        // Drop every field: the old entries of these keys must not bring them back.
        let bare = Metadata::from([("site".into(), Value::from("north"))]);
        for i in [3, 8] {
            let k = name(i);
            db.update_metadata(&key(&k), bare.clone(), Condition::default())
                .await?;
            model.insert(k, bare.clone());
        }
        for i in [2, 22] {
            let metadata = scalar_metadata(&mut rng);
            put(&db, &mut model, &name(i), metadata, 200 + i).await?;
        }
        check_maintenance(&db, &model, &["patient_id", "score"], "after writes").await?;

        db.drop_index("score").await?;
        let listed = db.list_indexes().await?;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].field, "patient_id");
        check_maintenance(&db, &model, &["patient_id"], "after drop").await?;
        let err = db.drop_index("score").await.unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    // Reopen: the remaining index is still declared, ready and used; results are unchanged.
    {
        let db = Database::open(dir.path())?;
        let listed = db.list_indexes().await?;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].field, "patient_id");
        assert_eq!(listed[0].state, IndexState::Ready);
        check_maintenance(&db, &model, &["patient_id"], "after reopen").await?;

        // More writes after the reopen, then an index declared again over the survivors.
        for i in [0, 1, 4] {
            let metadata = scalar_metadata(&mut rng);
            put(&db, &mut model, &name(i), metadata, 300 + i).await?;
        }
        db.delete(&key(&name(5)), Condition::default()).await?;
        model.remove(&name(5));
        db.create_index("score").await?;
        wait_ready(&db, &["patient_id", "score"]).await?;
        check_maintenance(&db, &model, &["patient_id", "score"], "rebuilt").await?;
    }

    let db = Database::open(dir.path())?;
    wait_ready(&db, &["patient_id", "score"]).await?;
    check_maintenance(&db, &model, &["patient_id", "score"], "second reopen").await?;
    Ok(())
}

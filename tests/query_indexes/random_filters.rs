//! Randomized filters, over documents with and without arrays, against the naive evaluation;
//! the generator must send a good share of them through an index.

use std::collections::BTreeMap;

use asterope::{Condition, Database, ObjectOps, PlanAccess, Query, Store};

use crate::data::{gen_filter, gen_metadata, key, without_arrays, INDEXED, OBJECTS};
use crate::model::{compare_with_model, put, wait_ready};
use crate::rng::Rng;

const DATASET_SEEDS: &[u64] = &[1, 2, 3, 42, 0xDEAD_BEEF, 20_240_601];
const FILTERS_PER_DATASET: usize = 80;

/// Builds a database per seed, indexes [`INDEXED`] while objects are being written, and checks
/// random queries (results, order, count) against the model. With `scalars_only`, fields
/// holding arrays are left out of the documents.
async fn check_random_filters(scalars_only: bool) -> asterope::Result<()> {
    let mut failures = Vec::new();
    let mut total = 0usize;
    let mut through_index = 0usize;
    for &seed in DATASET_SEEDS {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path())?;
        let mut rng = Rng::new(seed);
        let mut model = BTreeMap::new();
        let name = |i: usize| format!("s{}/{i:03}", i % 3);
        // Two thirds exist before the indexes (the background build indexes them), the rest
        // are committed while or after they are built (each commit writes its own entries).
        let document = |rng: &mut Rng| {
            let metadata = gen_metadata(rng);
            if scalars_only {
                without_arrays(metadata)
            } else {
                metadata
            }
        };
        for i in 0..OBJECTS * 2 / 3 {
            let metadata = document(&mut rng);
            put(&db, &mut model, &name(i), metadata, i as u64).await?;
        }
        for f in INDEXED {
            let info = db.create_index(f).await?;
            assert_eq!(info.field, *f);
        }
        for i in OBJECTS * 2 / 3..OBJECTS {
            let metadata = document(&mut rng);
            put(&db, &mut model, &name(i), metadata, i as u64).await?;
        }
        wait_ready(&db, INDEXED).await?;

        for case in 0..FILTERS_PER_DATASET {
            // Writes between queries, once the indexes are ready: each rewrites the posting
            // lists of the values it adds or removes.
            if rng.chance(1, 2) {
                let i = rng.below(OBJECTS as u64 + 10) as usize;
                if rng.chance(1, 4) && model.contains_key(&name(i)) {
                    db.delete(&key(&name(i)), Condition::default()).await?;
                    model.remove(&name(i));
                } else {
                    let metadata = document(&mut rng);
                    put(&db, &mut model, &name(i), metadata, (case + i) as u64).await?;
                }
            }
            let filter = gen_filter(&mut rng, 3);
            let prefix = match rng.below(6) {
                0 => Some("s1/"),
                1 => Some("s2/01"),
                _ => None,
            };
            let mut query = Query::new(filter).with_limit(10_000);
            if let Some(p) = prefix {
                query = query.with_key_prefix(p);
            }
            let (problem, access) = compare_with_model(&db, &model, &query).await?;
            total += 1;
            if access == PlanAccess::Index {
                through_index += 1;
            }
            if let Some(problem) = problem {
                failures.push(format!("seed {seed} case {case}: {problem}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} random queries differ from the naive evaluation; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator must actually exercise the index paths, not only scans.
    assert!(
        through_index * 4 >= total,
        "only {through_index} of {total} queries used an index"
    );
    Ok(())
}

/// Every indexed path reaches at most one scalar: the index must answer exactly as a scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_on_scalar_fields_match_a_naive_evaluation() -> asterope::Result<()> {
    check_random_filters(true).await
}

/// Arrays at the end of indexed paths and arrays of maps along them: any element may match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_over_arrays_match_a_naive_evaluation() -> asterope::Result<()> {
    check_random_filters(false).await
}

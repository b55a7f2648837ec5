//! Metadata benchmark: queries and metadata-only commits on DICOM-like objects, each measured
//! against SQLite (JSON column with expression indexes) on the same data in the same run.
//!
//! ```sh
//! cargo bench --features bench-sqlite --bench metadata                       # 1,000,000 objects
//! ASTEROPE_BENCH_OBJECTS=100000 cargo bench --features bench-sqlite --bench metadata
//! ASTEROPE_BENCH_EQ_QUERIES=200000 ...     # equality queries (20,000 by default), e.g. to profile
//! ASTEROPE_BENCH_RANGE_QUERIES=200 ...      # range queries (20 by default)
//! ASTEROPE_BENCH_CACHE_MIB=1024 ...         # metadata cache (default 3072 MiB)
//! ASTEROPE_BENCH_SQLITE_CACHE_MIB=3072 ...  # SQLite page cache (default: SQLite's own, 2 MiB)
//! ASTEROPE_BENCH_KEEP=DIR ...               # keep the loaded data in DIR and reuse it next time
//! cargo bench --features bench-sqlite,bench-mimalloc --bench metadata  # mimalloc as allocator
//! ```
//!
//! With `ASTEROPE_BENCH_KEEP` a second run skips the load (for profiling the queries); the
//! commit phase changes the data, so figures for the record come from fresh runs.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use asterope::{
    field, Condition, Database, Key, Metadata, ObjectOps, PutOptions, Query, Store, Timestamp,
    Value,
};
use futures::stream::{self, StreamExt};
use rusqlite::{params, Connection};

// With `bench-mimalloc`, the allocator an embedding application may choose instead of the
// system's.
#[cfg(feature = "bench-mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MODALITIES: [&str; 5] = ["CT", "MR", "US", "XR", "PT"];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Object `i`: ~10 objects per patient, study dates spread over 10 years.
fn document(i: u64, rng: &mut Rng) -> (String, Metadata, serde_json::Value) {
    let patient = format!("P{:06}", rng.next() % (OBJECTS.with(|n| *n) / 10).max(1));
    let day = rng.next() % 3650;
    let secs = 1_500_000_000 + (day * 86_400) as i64;
    let modality = MODALITIES[(rng.next() % 5) as usize];
    let slices = (rng.next() % 500) as i64;
    let tags = vec!["head", "contrast", "followup"][..(1 + rng.next() % 3) as usize].to_vec();
    let mut meta = Metadata::new();
    meta.insert("patient_id".into(), Value::from(patient.clone()));
    meta.insert(
        "study_date".into(),
        Value::Timestamp(Timestamp { secs, nanos: 0 }),
    );
    meta.insert("modality".into(), Value::from(modality));
    meta.insert("slices".into(), Value::Int(slices));
    meta.insert(
        "tags".into(),
        Value::Array(tags.iter().map(|t| Value::from(*t)).collect()),
    );
    let size = (rng.next() % 1_000_000_000) as i64;
    meta.insert("size".into(), Value::Int(size));
    let json = serde_json::json!({
        "patient_id": patient, "study_date": secs, "modality": modality,
        "slices": slices, "tags": tags, "size": size,
    });
    (format!("studies/{i:08}"), meta, json)
}

thread_local! {
    static OBJECTS: u64 = std::env::var("ASTEROPE_BENCH_OBJECTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

/// One row of the results table: each engine's median and its `high` percentile.
fn table_row(query: &str, ast: Vec<Duration>, sql: Vec<Duration>, high: f64, rows: &str) {
    println!(
        "| {query} | {} | {} | {} | {} | {rows} |",
        ms(percentile(ast.clone(), 0.5)),
        ms(percentile(sql.clone(), 0.5)),
        ms(percentile(ast, high)),
        ms(percentile(sql, high)),
    );
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> asterope::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n = OBJECTS.with(|n| *n);
    std::fs::create_dir_all("target/bench-scratch").unwrap();
    let temporary = tempfile::tempdir_in("target/bench-scratch").unwrap();
    let root = std::env::var_os("ASTEROPE_BENCH_KEEP")
        .map_or_else(|| temporary.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&root).unwrap();
    let loaded_marker = root.join("loaded");
    let loaded = loaded_marker.exists();
    println!(
        "# metadata benchmark: {n} objects, scratch {}{}, {} allocator",
        root.display(),
        if loaded { " (reused)" } else { "" },
        if cfg!(feature = "bench-mimalloc") {
            "mimalloc"
        } else {
            "system"
        }
    );

    // Load both engines with the same documents.
    // A metadata cache large enough for the working set, as SQLite gets the OS page cache.
    let cache_mib: u64 = std::env::var("ASTEROPE_BENCH_CACHE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3072);
    let db = Database::builder(root.join("asterope"))
        .cache_bytes(cache_mib << 20)
        .open()?;
    let sqlite = Connection::open(root.join("sqlite.db")).unwrap();
    sqlite
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .unwrap();
    let sqlite_cache_mib: Option<u64> = std::env::var("ASTEROPE_BENCH_SQLITE_CACHE_MIB")
        .ok()
        .and_then(|s| s.parse().ok());
    if let Some(mib) = sqlite_cache_mib {
        // Negative: a size in KiB.
        sqlite
            .execute_batch(&format!("PRAGMA cache_size=-{};", mib << 10))
            .unwrap();
    }
    if !loaded {
        db.create_index("patient_id").await?;
        db.create_index("study_date").await?;
        sqlite
            .execute_batch(
                "CREATE TABLE objects (key TEXT PRIMARY KEY, meta TEXT NOT NULL);
                 CREATE INDEX by_patient ON objects(json_extract(meta, '$.patient_id'));
                 CREATE INDEX by_date ON objects(json_extract(meta, '$.study_date'));",
            )
            .unwrap();
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let batch = 5000;
    let (mut ast_load, mut sql_load) = (Duration::ZERO, Duration::ZERO);
    let mut i = if loaded { n } else { 0 };
    while i < n {
        let docs: Vec<_> = (i..(i + batch).min(n))
            .map(|j| document(j, &mut rng))
            .collect();
        let started = Instant::now();
        let tx = db.begin().await?;
        for (key, meta, _) in &docs {
            let body = stream::empty().boxed();
            let options = PutOptions::default()
                .with_metadata(meta.clone())
                .with_size(0);
            tx.put(&Key::new(key.as_str())?, body, options).await?;
        }
        tx.commit().await?;
        ast_load += started.elapsed();
        let started = Instant::now();
        let t = sqlite.unchecked_transaction().unwrap();
        {
            let mut insert = t
                .prepare_cached("INSERT INTO objects (key, meta) VALUES (?1, ?2)")
                .unwrap();
            for (key, _, json) in &docs {
                insert.execute(params![key, json.to_string()]).unwrap();
            }
        }
        t.commit().unwrap();
        sql_load += started.elapsed();
        i += batch;
    }
    while db
        .list_indexes()
        .await?
        .iter()
        .any(|i| i.state != asterope::IndexState::Ready)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&loaded_marker, b"").unwrap();
    println!(
        "load ({batch} per transaction, indexes maintained): Asterope {:.1} s, SQLite {:.1} s",
        ast_load.as_secs_f64(),
        sql_load.as_secs_f64()
    );
    let on_disk = |path: &std::path::Path| -> u64 {
        let mut total = 0;
        let mut stack = vec![path.to_path_buf()];
        while let Some(p) = stack.pop() {
            match std::fs::read_dir(&p) {
                Ok(entries) => stack.extend(entries.flatten().map(|e| e.path())),
                Err(_) => total += std::fs::metadata(&p).map_or(0, |m| m.len()),
            }
        }
        total
    };
    println!(
        "on disk: Asterope metadata {} MiB (cache {cache_mib} MiB), SQLite {} MiB (cache {})",
        on_disk(&root.join("asterope/meta")) >> 20,
        on_disk(&root.join("sqlite.db")) >> 20,
        sqlite_cache_mib.map_or_else(|| "default".to_string(), |m| format!("{m} MiB"))
    );

    // Indexed equality, ~10 rows.
    let equality_queries: usize = std::env::var("ASTEROPE_BENCH_EQ_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let patients: Vec<String> = (0..equality_queries)
        .map(|_| format!("P{:06}", rng.next() % (n / 10).max(1)))
        .collect();
    let (mut ast, mut sql, mut rows) = (Vec::new(), Vec::new(), 0usize);
    let mut stmt = sqlite
        .prepare("SELECT key, meta FROM objects WHERE json_extract(meta, '$.patient_id') = ?1")
        .unwrap();
    for p in &patients {
        let query = Query::new(field("patient_id").eq(p.as_str()));
        let started = Instant::now();
        let page = db.query(&query).await?;
        ast.push(started.elapsed());
        rows += page.objects.len();
        let started = Instant::now();
        let got: Vec<(String, String)> = stmt
            .query_map(params![p], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        sql.push(started.elapsed());
        assert_eq!(got.len(), page.objects.len(), "engines disagree for {p}");
    }
    let plan = db
        .explain(&Query::new(field("patient_id").eq("P000001")))
        .await?;
    println!("| query | Asterope p50 | SQLite p50 | Asterope p99 | SQLite p99 | rows |");
    println!("|---|---|---|---|---|---|");
    table_row(
        &format!("indexed equality ({})", plan.detail),
        ast,
        sql,
        0.99,
        &format!("{:.1} avg", rows as f64 / patients.len() as f64),
    );

    // Range returning ~1%: 36 of 3650 days.
    // The same ranges, counted, then returned in full (both engines' rows carry the document).
    let mut count_stmt = sqlite
        .prepare("SELECT count(*) FROM objects WHERE json_extract(meta, '$.study_date') >= ?1 AND json_extract(meta, '$.study_date') < ?2")
        .unwrap();
    let mut rows_stmt = sqlite
        .prepare("SELECT key, meta FROM objects WHERE json_extract(meta, '$.study_date') >= ?1 AND json_extract(meta, '$.study_date') < ?2")
        .unwrap();
    let (mut ast_count, mut sql_count) = (Vec::new(), Vec::new());
    let (mut ast_rows, mut sql_rows, mut rows) = (Vec::new(), Vec::new(), 0usize);
    let range_queries: usize = std::env::var("ASTEROPE_BENCH_RANGE_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for _ in 0..range_queries {
        let start = 1_500_000_000 + ((rng.next() % 3600) * 86_400) as i64;
        let end = start + 36 * 86_400;
        let query = Query::new(
            field("study_date")
                .gte(Timestamp {
                    secs: start,
                    nanos: 0,
                })
                .and(field("study_date").lt(Timestamp {
                    secs: end,
                    nanos: 0,
                })),
        )
        .with_limit(10_000);
        let started = Instant::now();
        let count = db.count(&query).await?;
        ast_count.push(started.elapsed());
        let started = Instant::now();
        let sql_counted: u64 = count_stmt
            .query_row(params![start, end], |r| r.get(0))
            .unwrap();
        sql_count.push(started.elapsed());
        assert_eq!(sql_counted, count);

        // Pages of up to 10,000 rows (the most one query returns), as a client reads them.
        let started = Instant::now();
        let mut returned = Vec::new();
        let mut page_query = query.clone();
        loop {
            let page = db.query(&page_query).await?;
            returned.extend(page.objects);
            match page.next {
                Some(cursor) => page_query = query.clone().with_cursor(cursor),
                None => break,
            }
        }
        ast_rows.push(started.elapsed());
        rows += returned.len();
        let started = Instant::now();
        let got: Vec<(String, String)> = rows_stmt
            .query_map(params![start, end], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        sql_rows.push(started.elapsed());
        assert_eq!(got.len(), returned.len());
        assert_eq!(returned.len() as u64, count);
    }
    for (label, ast, sql) in [
        ("count", ast_count, sql_count),
        ("rows returned", ast_rows, sql_rows),
    ] {
        table_row(
            &format!("range, ~1% of rows ({label})"),
            ast,
            sql,
            0.99,
            &format!("{:.0} avg", rows as f64 / range_queries as f64),
        );
    }

    // Non-indexed scan.
    let (mut ast, mut sql) = (Vec::new(), Vec::new());
    let mut rows = 0;
    for _ in 0..3 {
        let query = Query::new(field("modality").eq("CT").and(field("slices").gt(490)));
        let started = Instant::now();
        rows = db.count(&query).await?;
        ast.push(started.elapsed());
        let started = Instant::now();
        let got: u64 = sqlite
            .query_row(
                "SELECT count(*) FROM objects WHERE json_extract(meta, '$.modality') = 'CT' AND json_extract(meta, '$.slices') > 490",
                [],
                |r| r.get(0),
            )
            .unwrap();
        sql.push(started.elapsed());
        assert_eq!(got, rows);
    }
    table_row("non-indexed scan (count)", ast, sql, 1.0, &rows.to_string());

    // Metadata-only durable commits, each phase on objects the other did not touch.
    let commits = 2000u64;
    let db = Arc::new(db);
    for (writers, first) in [(1u64, 0u64), (8, 10_000)] {
        let key_of = move |w: u64, c: u64| format!("studies/{:08}", first + w * 1000 + c);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let db = Arc::clone(&db);
            tasks.push(tokio::spawn(async move {
                for c in 0..commits / writers {
                    let key = Key::new(key_of(w, c))?;
                    let mut meta = Metadata::new();
                    meta.insert("reviewed".into(), Value::Int(c as i64));
                    db.update_metadata(&key, meta, Condition::default()).await?;
                }
                Ok::<(), asterope::Error>(())
            }));
        }
        for t in tasks {
            t.await.unwrap()?;
        }
        let ast_rate = commits as f64 / started.elapsed().as_secs_f64();
        let path = root.join("sqlite.db");
        let started = Instant::now();
        let threads: Vec<_> = (0..writers)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let conn = Connection::open(path).unwrap();
                    conn.busy_timeout(Duration::from_secs(30)).unwrap();
                    conn.execute_batch("PRAGMA synchronous=FULL;").unwrap();
                    for c in 0..commits / writers {
                        conn.execute(
                            // Replaces the document, as update_metadata does.
                            "UPDATE objects SET meta = ?1 WHERE key = ?2",
                            params![
                                serde_json::json!({ "reviewed": c }).to_string(),
                                key_of(w, c)
                            ],
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let sql_rate = commits as f64 / started.elapsed().as_secs_f64();
        println!(
            "metadata-only durable commits, {writers} writer(s): Asterope {ast_rate:.0}/s, SQLite (WAL, synchronous=FULL) {sql_rate:.0}/s"
        );
    }
    Ok(())
}

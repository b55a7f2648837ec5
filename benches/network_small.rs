//! Small-object benchmark over loopback HTTP/2: 4 KiB objects with metadata, 64 requests in
//! flight on one connection of the native client, against an `asterope serve`-equivalent server
//! in the same process. Reports ops/s for PUT, GET and an indexed query.
//!
//! ```sh
//! cargo bench --bench network_small                 # 20,000 objects
//! ASTEROPE_BENCH_OBJECTS=5000 cargo bench --bench network_small
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asterope::{
    field, Client, Database, Key, Metadata, ObjectOps, Query, ServerConfig, Store, StoreExt, Value,
};
use bytes::Bytes;

const IN_FLIGHT: u64 = 64;

async fn run_ops<F, Fut>(total: u64, op: F) -> (f64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = asterope::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (op, next) = (Arc::clone(&op), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return samples;
                }
                let t = Instant::now();
                op(i).await.expect("operation failed");
                samples.push(t.elapsed());
            }
        }));
    }
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    (rate, p99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> asterope::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let total: u64 = std::env::var("ASTEROPE_BENCH_OBJECTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    std::fs::create_dir_all("target/bench-scratch").unwrap();
    let scratch = tempfile::tempdir_in("target/bench-scratch").unwrap();
    let db = Database::open(scratch.path())?;
    db.create_index("patient_id").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(asterope::serve(
        listener,
        std::sync::Arc::new(db),
        ServerConfig::default(),
        std::future::pending(),
    ));
    let client = Client::connect(&url).await?;
    let body = Bytes::from(vec![0x5a; 4096]);

    let c = client.clone();
    let (put_rate, put_p99) = run_ops(total, move |i| {
        let (c, body) = (c.clone(), body.clone());
        async move {
            let mut meta = Metadata::new();
            meta.insert("patient_id".into(), Value::from(format!("P{:05}", i / 10)));
            meta.insert("modality".into(), Value::from("CT"));
            c.put_bytes(&Key::new(format!("small/{i:08}"))?, body, meta)
                .await
                .map(drop)
        }
    })
    .await;
    let c = client.clone();
    let (get_rate, get_p99) = run_ops(total, move |i| {
        let c = c.clone();
        async move {
            c.get_bytes(&Key::new(format!("small/{i:08}"))?)
                .await
                .map(drop)
        }
    })
    .await;
    let c = client.clone();
    let (query_rate, query_p99) = run_ops(total / 4, move |i| {
        let c = c.clone();
        async move {
            let query = Query::new(field("patient_id").eq(format!("P{:05}", i % (total / 10))));
            let page = c.query(&query).await?;
            assert_eq!(page.objects.len(), 10);
            Ok(())
        }
    })
    .await;
    println!("| 4 KiB objects, {IN_FLIGHT} streams on one connection | ops/s | p99 latency |");
    println!("|---|---|---|");
    println!(
        "| PUT (durable, with metadata) | {put_rate:.0} | {:.1} ms |",
        put_p99.as_secs_f64() * 1e3
    );
    println!(
        "| GET (verified by the client) | {get_rate:.0} | {:.1} ms |",
        get_p99.as_secs_f64() * 1e3
    );
    println!(
        "| indexed query, 10 rows | {query_rate:.0} | {:.1} ms |",
        query_p99.as_secs_f64() * 1e3
    );
    server.abort();
    Ok(())
}

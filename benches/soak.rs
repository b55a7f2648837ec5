//! Soak: a running `asterope serve` under 64 concurrent clients doing a mix of puts (sizes up to
//! 64 MiB, mostly small), gets, indexed queries and deletes for a fixed time. Every read is
//! checked against what was written. Reports ops/s, p99 latency per operation, mismatches, and
//! the server's peak RssAnon.
//!
//! ```sh
//! cargo build --release --bin asterope && cargo bench --bench soak      # 60 s
//! ASTEROPE_SOAK_SECONDS=10 cargo bench --bench soak
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asterope::{
    field, Client, Condition, Key, Metadata, ObjectOps, PutOptions, Query, Sha256Digest, Store,
    Value,
};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

#[path = "../tests/common/rss.rs"]
mod rss;

use rss::PeakRss;

const CLIENTS: u64 = 64;
const BLOCK: usize = 1 << 20;

/// A body of `size` bytes: an 8-byte seed, then a shared random block repeated; and its digest.
fn body(seed: u64, size: usize, block: &Bytes) -> (asterope::ByteStream, Sha256Digest) {
    let mut chunks = Vec::new();
    let head = Bytes::copy_from_slice(&seed.to_le_bytes()[..size.min(8)]);
    let mut left = size - head.len();
    chunks.push(head);
    while left > 0 {
        let n = left.min(BLOCK);
        chunks.push(block.slice(..n));
        left -= n;
    }
    let mut hasher = Sha256::new();
    for c in &chunks {
        hasher.update(c);
    }
    let digest = Sha256Digest(hasher.finalize().into());
    (stream::iter(chunks.into_iter().map(Ok)).boxed(), digest)
}

#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    bytes: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds: u64 = std::env::var("ASTEROPE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    std::fs::create_dir_all("target/bench-scratch").unwrap();
    let scratch = tempfile::tempdir_in("target/bench-scratch").unwrap();
    let mut server = Command::new("target/release/asterope")
        .arg("--data")
        .arg(scratch.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("build the server first: cargo build --release --bin asterope");
    let mut banner = String::new();
    BufReader::new(server.stderr.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let pid = server.id();
    let peak = PeakRss::start(Some(pid));

    let client = Client::connect(&url).await.unwrap();
    client.create_index("owner").await.unwrap();
    let mut seed_block = vec![0u8; BLOCK];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for b in seed_block.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    let block = Bytes::from(seed_block);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mismatches = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let (client, block, stats, mismatches) = (
            client.clone(),
            block.clone(),
            Arc::clone(&stats),
            Arc::clone(&mismatches),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = (id + 1) * 0x9E37_79B9_7F4A_7C15;
            let mut mine: BTreeMap<String, Sha256Digest> = BTreeMap::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                n += 1;
                let key = format!("c{id}/{}", rng % 16);
                let t = Instant::now();
                let (op, bytes) = match rng % 10 {
                    0..=3 => {
                        // Log-uniform size: mostly small, sometimes up to 64 MiB.
                        let size =
                            (1usize << ((rng >> 8) % 27)).min(64 << 20) + (rng as usize % 4096);
                        let size = size.min(64 << 20);
                        let (stream, digest) = body(rng, size, &block);
                        let mut meta = Metadata::new();
                        meta.insert("owner".into(), Value::from(format!("c{id}")));
                        let info = client
                            .put(
                                &Key::new(key.as_str()).unwrap(),
                                stream,
                                PutOptions::default().with_metadata(meta),
                            )
                            .await
                            .unwrap();
                        if info.sha256 != digest {
                            mismatches.fetch_add(1, Ordering::Relaxed);
                        }
                        mine.insert(key, digest);
                        ("put", size as u64)
                    }
                    4..=6 => match mine.get(&key) {
                        Some(expected) => {
                            let mut hasher = Sha256::new();
                            let mut body = client
                                .get(&Key::new(key.as_str()).unwrap(), Default::default())
                                .await
                                .unwrap()
                                .body;
                            let mut size = 0u64;
                            while let Some(chunk) = body.next().await {
                                let chunk = chunk.unwrap();
                                size += chunk.len() as u64;
                                hasher.update(&chunk);
                            }
                            if Sha256Digest(hasher.finalize().into()) != *expected {
                                mismatches.fetch_add(1, Ordering::Relaxed);
                            }
                            ("get", size)
                        }
                        None => continue,
                    },
                    7..=8 => {
                        let page = client
                            .query(&Query::new(field("owner").eq(format!("c{id}"))))
                            .await
                            .unwrap();
                        let found: Vec<String> =
                            page.objects.iter().map(|o| o.key.to_string()).collect();
                        let expected: Vec<&String> = mine.keys().collect();
                        if found.iter().collect::<Vec<_>>() != expected {
                            mismatches.fetch_add(1, Ordering::Relaxed);
                        }
                        ("query", 0)
                    }
                    _ => {
                        if mine.remove(&key).is_some() {
                            client
                                .delete(&Key::new(key.as_str()).unwrap(), Condition::default())
                                .await
                                .unwrap();
                        }
                        ("delete", 0)
                    }
                };
                let mut s = stats.lock().unwrap();
                s.latencies.entry(op).or_default().push(t.elapsed());
                s.bytes += bytes;
            }
            n
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = peak.finish();
    let _ = server.kill();
    let _ = server.wait();
    let stats = stats.lock().unwrap();
    let total: usize = stats.latencies.values().map(Vec::len).sum();
    println!("soak {seconds} s, {CLIENTS} clients on one connection: {total} ops ({:.0} ops/s), {:.2} GB moved, mismatches: {}, server peak RssAnon {} MiB",
        total as f64 / elapsed, stats.bytes as f64 / 1e9, mismatches.load(Ordering::Relaxed), peak >> 20);
    println!("| operation | count | ops/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (op, samples) in stats.latencies.iter() {
        let mut samples = samples.clone();
        samples.sort();
        let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        println!(
            "| {op} | {} | {:.0} | {:.1} ms | {:.1} ms |",
            samples.len(),
            samples.len() as f64 / elapsed,
            p(0.5),
            p(0.99)
        );
    }
}

//! Compaction benchmark: how fast live data moves out of sparse extents, how much disk it gives
//! back, and what it costs concurrent GETs.
//!
//! The store is filled with 4 MiB objects (random bytes, 64 MiB extents, background compaction
//! off), then a random half is deleted. Phases, in one run on the same disk:
//! 1. GET throughput of the survivors (verified, every byte read) with nothing else running;
//! 2. the same GET loop while `compact()` runs: GET throughput during compaction and the
//!    compaction's own rate (MB/s of live data moved);
//! 3. on a second store filled and thinned the same way, `compact()` alone;
//!
//! Baseline: copying the same number of bytes as plain files (read, write, `fdatasync`).
//!
//! ```sh
//! cargo bench --bench compaction                      # 2 GiB filled, 1 GiB live
//! ASTEROPE_BENCH_SIZE_MIB=512 cargo bench --bench compaction
//! ```

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asterope::{Database, GetOptions, Key, Metadata, ObjectOps, Store, StoreExt};
use bytes::Bytes;
use futures::StreamExt;

const MIB: u64 = 1 << 20;
const OBJECT: u64 = 4 * MIB;

fn random_bytes(seed: u64, len: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len as usize);
    Bytes::from(out)
}

/// Fills a store and deletes every other object in a shuffled order; returns the survivors.
async fn fill_and_thin(dir: &Path, total: u64) -> (Database, Vec<Key>) {
    let db = Database::builder(dir)
        .extent_size(64 * MIB)
        .background_compaction(None)
        .open()
        .unwrap();
    let count = total / OBJECT;
    for i in 0..count {
        let key = Key::new(format!("obj/{i:05}")).unwrap();
        db.put_bytes(&key, random_bytes(i + 1, OBJECT), Metadata::new())
            .await
            .unwrap();
    }
    let mut survivors = Vec::new();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = Key::new(format!("obj/{i:05}")).unwrap();
        if state % 2 == 0 {
            db.delete(&key, Default::default()).await.unwrap();
        } else {
            survivors.push(key);
        }
    }
    (db, survivors)
}

/// Reads survivors round-robin until `stop`; returns bytes read.
async fn read_loop(db: Database, keys: Vec<Key>, stop: Arc<AtomicBool>) -> u64 {
    let mut total = 0;
    'outer: loop {
        for key in &keys {
            if stop.load(Ordering::SeqCst) {
                break 'outer;
            }
            let mut body = db.get(key, GetOptions::default()).await.unwrap().body;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.unwrap();
                std::hint::black_box(chunk.iter().fold(0u8, |a, b| a ^ b));
                total += chunk.len() as u64;
            }
        }
    }
    total
}

async fn gets_for(db: &Database, keys: &[Key], run: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let reader = tokio::spawn(read_loop(db.clone(), keys.to_vec(), Arc::clone(&stop)));
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::SeqCst);
    let bytes = reader.await.unwrap();
    bytes as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn plain_copy(dir: &Path, bytes: u64) -> f64 {
    let source = dir.join("plain-source");
    let target = dir.join("plain-target");
    let data = random_bytes(99, 8 * MIB);
    let mut file = std::fs::File::create(&source).unwrap();
    let mut written = 0;
    while written < bytes {
        file.write_all(&data).unwrap();
        written += data.len() as u64;
    }
    file.sync_all().unwrap();
    drop(file);
    let started = Instant::now();
    std::fs::copy(&source, &target).unwrap();
    std::fs::File::open(&target).unwrap().sync_data().unwrap();
    let rate = written as f64 / started.elapsed().as_secs_f64() / 1e6;
    std::fs::remove_file(source).unwrap();
    std::fs::remove_file(target).unwrap();
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let total_mib: u64 = std::env::var("ASTEROPE_BENCH_SIZE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2048);
    let base =
        std::env::var("ASTEROPE_BENCH_DIR").unwrap_or_else(|_| "target/bench-scratch".into());
    std::fs::create_dir_all(&base).unwrap();
    let scratch = tempfile::tempdir_in(&base).unwrap();
    println!("# compaction benchmark: {total_mib} MiB filled in 4 MiB objects, half deleted");

    let (db, keys) = fill_and_thin(&scratch.path().join("a"), total_mib * MIB).await;
    let before = db.stats().await.unwrap();
    let window = Duration::from_secs(8);
    let idle_gets = gets_for(&db, &keys, window).await;

    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_loop(db.clone(), keys.clone(), Arc::clone(&stop)));
    let read_started = Instant::now();
    let compact_started = Instant::now();
    let report = db.compact().await.unwrap();
    let busy_compact = compact_started.elapsed();
    // Keep reading for as long as the idle window at least, so both rates average over time.
    let remaining = window.saturating_sub(read_started.elapsed());
    tokio::time::sleep(remaining).await;
    stop.store(true, Ordering::SeqCst);
    let busy_bytes = reader.await.unwrap();
    let busy_gets = busy_bytes as f64 / read_started.elapsed().as_secs_f64() / 1e6;
    // Extents emptied under the readers go in the next pass, once they have finished.
    let next_pass = db.compact().await.unwrap();
    let after = db.stats().await.unwrap();
    drop(db);

    let (db, _) = fill_and_thin(&scratch.path().join("b"), total_mib * MIB).await;
    let started = Instant::now();
    let alone = db.compact().await.unwrap();
    let alone_took = started.elapsed();
    drop(db);
    let copy_rate = plain_copy(scratch.path(), alone.moved_bytes.max(64 * MIB));

    let rate = |bytes: u64, took: Duration| bytes as f64 / took.as_secs_f64() / 1e6;
    let moved_alone = rate(alone.moved_bytes, alone_took);
    let moved_busy = rate(report.moved_bytes, busy_compact);
    println!(
        "live {} MiB; before: {} extents, {} MiB on disk; after two passes: {} extents \
         ({} removed by the second), {} MiB on disk",
        before.logical_bytes / MIB,
        before.extents,
        before.disk_bytes / MIB,
        after.extents,
        next_pass.extents_removed,
        after.disk_bytes / MIB
    );
    println!("| measure | Asterope | baseline | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| compaction alone: {} MiB moved in {:.2} s | {moved_alone:.0} MB/s | plain-file copy + fdatasync {copy_rate:.0} MB/s | {:.2} |",
        alone.moved_bytes / MIB,
        alone_took.as_secs_f64(),
        moved_alone / copy_rate
    );
    println!(
        "| compaction under GET load: {} MiB moved in {:.2} s | {moved_busy:.0} MB/s | compaction alone {moved_alone:.0} MB/s | {:.2} |",
        report.moved_bytes / MIB,
        busy_compact.as_secs_f64(),
        moved_busy / moved_alone
    );
    println!(
        "| verified GET throughput while compacting | {busy_gets:.0} MB/s | GETs alone {idle_gets:.0} MB/s | {:.2} |",
        busy_gets / idle_gets
    );
}

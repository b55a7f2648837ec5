//! Embedded-engine benchmark: streaming put and get of one large blob through the `Store` API,
//! each compared in the same run with the plain-file baseline on the same disk (`cp` + `sync`
//! for the put, `cat > /dev/null` for the warm-cache get), with the peak anonymous RSS of this
//! process during each phase.
//!
//! ```sh
//! cargo bench --bench embedded                          # 4 GiB
//! ASTEROPE_BENCH_SIZE_MIB=1024 cargo bench --bench embedded
//! ASTEROPE_BENCH_DIR=/path/on/disk cargo bench --bench embedded
//! ```

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use asterope::body::file_body;
use asterope::{Database, GetOptions, Key, ObjectOps, PutOptions};
use futures::StreamExt;

#[path = "../tests/common/rss.rs"]
mod rss;

use rss::PeakRss;

const MIB: u64 = 1 << 20;

fn shell(script: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
    started.elapsed()
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn write_source(path: &Path, size: u64) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; (4 * MIB) as usize];
    let mut file = std::io::BufWriter::new(File::create(path).unwrap());
    let mut written = 0;
    while written < size {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = (size - written).min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        written += n as u64;
    }
    file.flush().unwrap();
}

/// Reads every byte of a chunk (as a consumer would) and folds it, so the work cannot be skipped.
fn fold(chunk: &[u8]) -> u64 {
    chunk
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
        .fold(0, |a, b| a ^ b)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> asterope::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let size_mib: u64 = std::env::var("ASTEROPE_BENCH_SIZE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4096);
    let size = size_mib * MIB;
    let base =
        std::env::var("ASTEROPE_BENCH_DIR").unwrap_or_else(|_| "target/bench-scratch".into());
    std::fs::create_dir_all(&base).unwrap();
    let scratch = tempfile::tempdir_in(&base).unwrap();
    let source = scratch.path().join("source.bin");
    let copy = scratch.path().join("copy.bin");
    println!(
        "# embedded benchmark: {size_mib} MiB blob, scratch {}",
        scratch.path().display()
    );
    write_source(&source, size);
    shell(&format!("cat {} > /dev/null", source.display()));

    // Put: cp + fsync of the copy, against Database::put of the same file (durable at return).
    let cp = shell(&format!(
        "cp {0} {1} && sync {1}",
        source.display(),
        copy.display()
    ));
    std::fs::remove_file(&copy).unwrap();
    let db = Database::open(scratch.path().join("db"))?;
    let key = Key::new("bench/blob")?;
    let rss = PeakRss::start(None);
    let started = Instant::now();
    let file = File::open(&source).unwrap();
    let body = file_body(file, source.display().to_string());
    let info = db
        .put(&key, body, PutOptions::default().with_size(size))
        .await?;
    let put = started.elapsed();
    let put_rss = rss.finish();
    assert_eq!(info.size, size);

    // Warm-cache get: `cat` of a plain file against streaming the blob.
    std::fs::copy(&source, &copy).unwrap();
    shell(&format!("cat {} > /dev/null", copy.display()));
    let cat = shell(&format!("cat {} > /dev/null", copy.display()));
    let mut results = Vec::new();
    for (label, verify) in [("get (no verify)", false), ("get (verified)", true)] {
        // The first pass also maps the pages into this process; the second finds them mapped.
        for pass in ["1st pass", "2nd pass"] {
            let rss = PeakRss::start(None);
            let started = Instant::now();
            let mut body = db
                .get(&key, GetOptions::default().with_verify(verify))
                .await?
                .body;
            let mut folded = 0u64;
            let mut received = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                folded ^= fold(&chunk);
                received += chunk.len() as u64;
            }
            let took = started.elapsed();
            let peak = rss.finish();
            assert_eq!(received, size);
            std::hint::black_box(folded);
            results.push((label, pass, took, peak));
        }
    }

    println!("| operation | Asterope | baseline | ratio | peak RssAnon |");
    println!("|---|---|---|---|---|");
    println!(
        "| put {size_mib} MiB (durable) | {:.2} GB/s | cp + sync {:.2} GB/s | {:.2} | {} MiB |",
        gbps(size, put),
        gbps(size, cp),
        cp.as_secs_f64() / put.as_secs_f64(),
        put_rss / MIB
    );
    for (label, pass, took, peak) in results {
        println!(
            "| {label} {size_mib} MiB, warm, {pass} | {:.2} GB/s | cat {:.2} GB/s | {:.2} | {} MiB |",
            gbps(size, took),
            gbps(size, cat),
            cat.as_secs_f64() / took.as_secs_f64(),
            peak / MIB
        );
    }
    Ok(())
}

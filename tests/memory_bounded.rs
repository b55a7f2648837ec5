//! Memory stays bounded by the chunk size, not the blob size: a 512 MiB put and verified get
//! through the embedded API keep the process's anonymous RSS (`RssAnon`) growth small.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use asterope::{Database, GetOptions, Key, PutOptions, Store};
use bytes::Bytes;
use common::{pattern, MIB};
use futures::stream::{self, StreamExt};

fn rss_anon_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .expect("RssAnon in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_gigabyte_round_trip_in_bounded_memory() -> asterope::Result<()> {
    const SIZE: usize = 512 * MIB;
    const BUDGET: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(256 << 20)
        .open()?;
    let block = pattern(7, MIB);
    let baseline = rss_anon_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_anon_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    // Unknown size, 64 KiB pieces: exercises coalescing and growing allocations.
    let pieces = SIZE / (64 * 1024);
    let body = stream::iter((0..pieces).map(move |i| {
        let at = (i * 64 * 1024) % MIB;
        Ok::<Bytes, asterope::Error>(block.slice(at..at + 64 * 1024))
    }))
    .boxed();
    let key = Key::new("big")?;
    let info = db.put(&key, body, PutOptions::default()).await?;
    assert_eq!(info.size, SIZE as u64);

    let mut body = db.get(&key, GetOptions::default()).await?.body;
    let mut received = 0usize;
    let mut touched = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        // Touch every page, as a consumer would.
        touched += chunk
            .iter()
            .step_by(4096)
            .map(|&b| u64::from(b))
            .sum::<u64>();
        received += chunk.len();
    }
    assert_eq!(received, SIZE);
    assert!(touched > 0);

    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    println!(
        "RssAnon grew by {} KiB for a {SIZE}-byte round trip",
        growth / 1024
    );
    assert!(growth < BUDGET, "RssAnon grew by {growth} bytes");
    Ok(())
}

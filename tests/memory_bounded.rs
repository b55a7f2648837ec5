//! Memory stays bounded by the chunk size, not the blob size: a 512 MiB put and verified get
//! through the embedded API keep the process's anonymous RSS (`RssAnon`) growth small.

mod common;
#[path = "common/rss.rs"]
mod rss;

use rss::{rss_anon, PeakRss};

use asterope::{Database, GetOptions, Key, ObjectOps, PutOptions};
use bytes::Bytes;
use common::{pattern, MIB};
use futures::stream::{self, StreamExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_gigabyte_round_trip_in_bounded_memory() -> asterope::Result<()> {
    const SIZE: usize = 512 * MIB;
    const BUDGET: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(256 << 20)
        .open()?;
    let block = pattern(7, MIB);
    let baseline = rss_anon(None).expect("RssAnon in /proc/self/status");
    let peak = PeakRss::start(None);

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

    let growth = peak.finish().saturating_sub(baseline);
    println!(
        "RssAnon grew by {} KiB for a {SIZE}-byte round trip",
        growth / 1024
    );
    assert!(growth < BUDGET, "RssAnon grew by {growth} bytes");
    Ok(())
}

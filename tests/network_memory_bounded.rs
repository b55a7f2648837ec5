//! A 2 GiB upload and download over loopback HTTP/2 keep the server's anonymous RSS bounded
//! (< 128 MiB). The server runs as its own process (`asterope serve`), so its memory is measured
//! apart from the client's.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use asterope::{Client, GetOptions, Key, PutOptions, Store};
use bytes::Bytes;
use common::{pattern, MIB};
use futures::stream::{self, StreamExt};

fn rss_anon(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gigabytes_through_a_server_in_bounded_memory() {
    const SIZE: usize = 2048 * MIB;
    const BUDGET: u64 = 128 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = common::spawn_server(dir.path(), &[]);
    let pid = server.id();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = rss_anon(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let client = Client::connect(&url).await.unwrap();
    let block = pattern(3, MIB);
    let body =
        stream::iter((0..SIZE / MIB).map(move |_| Ok::<Bytes, asterope::Error>(block.clone())))
            .boxed();
    let key = Key::new("big").unwrap();
    let info = client
        .put(&key, body, PutOptions::default().with_size(SIZE as u64))
        .await
        .unwrap();
    assert_eq!(info.size, SIZE as u64);
    let mut body = client.get(&key, GetOptions::default()).await.unwrap().body;
    let mut received = 0usize;
    while let Some(chunk) = body.next().await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, SIZE);

    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "server peak RssAnon {} MiB for a {SIZE}-byte upload and download",
        peak >> 20
    );
    assert!(peak > 0, "RssAnon was never sampled");
    assert!(peak < BUDGET, "server RssAnon peaked at {peak} bytes");
}

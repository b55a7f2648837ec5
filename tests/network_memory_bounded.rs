//! A 2 GiB upload and download over loopback HTTP/2 keep the server's anonymous RSS bounded
//! (< 128 MiB). The server runs as its own process (`asterope serve`), so its memory is measured
//! apart from the client's.

mod common;
#[path = "common/rss.rs"]
mod rss;

use rss::PeakRss;

use asterope::{Client, GetOptions, Key, PutOptions, Store};
use bytes::Bytes;
use common::{pattern, MIB};
use futures::stream::{self, StreamExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gigabytes_through_a_server_in_bounded_memory() {
    const SIZE: usize = 2048 * MIB;
    const BUDGET: u64 = 128 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = common::spawn_server(dir.path(), &[]);
    let pid = server.id();
    let peak = PeakRss::start(Some(pid));

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

    let peak = peak.finish();
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "server peak RssAnon {} MiB for a {SIZE}-byte upload and download",
        peak >> 20
    );
    assert!(peak > 0, "RssAnon was never sampled");
    assert!(peak < BUDGET, "server RssAnon peaked at {peak} bytes");
}

//! A 2 GiB upload and download over loopback HTTP/2, and 16 concurrent uploads over HTTP/1.1,
//! keep the server's anonymous RSS bounded (< 128 MiB). The server runs as its own process
//! (`asterope serve`), so its memory is measured apart from the client's.

mod common;
#[path = "common/rss.rs"]
mod rss;

use rss::PeakRss;

use asterope::{Client, GetOptions, Key, ObjectOps, PutOptions};
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

/// Streams `blocks` MiB of `block` as one HTTP/1.1 chunked upload of `key`; returns the status.
async fn http1_upload(addr: &str, key: &str, block: Bytes, blocks: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v1/objects/{key} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         transfer-encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk_head = format!("{:x}\r\n", block.len());
    for _ in 0..blocks {
        tcp.write_all(chunk_head.as_bytes()).await.unwrap();
        tcp.write_all(&block).await.unwrap();
        tcp.write_all(b"\r\n").await.unwrap();
    }
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply[..12.min(reply.len())]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_http1_uploads_in_bounded_memory() {
    const UPLOADS: usize = 16;
    const BLOCKS: usize = 64;
    const BUDGET: u64 = 128 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = common::spawn_server(dir.path(), &[]);
    let addr = url.trim_start_matches("http://").to_string();
    let peak = PeakRss::start(Some(server.id()));

    let uploads = (0..UPLOADS).map(|i| {
        let addr = addr.clone();
        tokio::spawn(async move {
            http1_upload(
                &addr,
                &format!("up{i}"),
                pattern(i as u64 + 10, MIB),
                BLOCKS,
            )
            .await
        })
    });
    for status in futures::future::join_all(uploads).await {
        assert_eq!(status.unwrap(), "HTTP/1.1 201");
    }
    // And one download of them over HTTP/1.1, read and dropped as it streams.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"GET /v1/objects/up0 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut sink = tokio::io::sink();
    let received = tokio::io::copy(&mut tcp, &mut sink).await.unwrap();
    assert!(received > (BLOCKS * MIB) as u64);

    let peak = peak.finish();
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "server peak RssAnon {} MiB for {UPLOADS} concurrent {BLOCKS} MiB HTTP/1.1 uploads",
        peak >> 20
    );
    assert!(peak > 0, "RssAnon was never sampled");
    assert!(peak < BUDGET, "server RssAnon peaked at {peak} bytes");
}

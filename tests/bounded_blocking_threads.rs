//! A server on a runtime with only the blocking threads its configuration asks for
//! (`ServerConfig::blocking_threads`) serves more concurrent multi-chunk uploads than it has
//! upload places, with listings, queries and counts alongside, without any of them waiting
//! forever for a thread.
// Tests may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    unreachable_pub
)]

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{Client, Database, Key, ListOptions, ObjectOps, PutOptions, Query, ServerConfig};
use bytes::Bytes;
use common::{pattern, MIB};
use futures::stream::{self, StreamExt};
use server::TestServer;

const UPLOADS: usize = 12;
const UPLOAD_SIZE: usize = 4 * MIB;
const CHUNK: usize = 64 << 10;

#[test]
fn more_uploads_than_places_complete_on_the_bounded_blocking_pool() {
    let config = ServerConfig {
        max_concurrent_uploads: 2,
        max_blocking_requests: 1,
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(config.blocking_threads())
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(Database::open(dir.path()).unwrap(), config).await;
        let client = Client::connect(&server.url()).await.unwrap();
        let uploads = (0..UPLOADS).map(|i| {
            let client = client.clone();
            async move {
                let content = pattern(i as u64 + 1, UPLOAD_SIZE);
                let chunks: Vec<Bytes> = (0..UPLOAD_SIZE / CHUNK)
                    .map(|c| content.slice(c * CHUNK..(c + 1) * CHUNK))
                    .collect();
                let body = stream::iter(chunks.into_iter().map(Ok::<Bytes, asterope::Error>));
                let key = Key::new(format!("upload/{i:02}")).unwrap();
                let options = PutOptions::default().with_size(UPLOAD_SIZE as u64);
                client.put(&key, body.boxed(), options).await.unwrap().size
            }
        });
        let reads = (0..UPLOADS).map(|_| {
            let client = client.clone();
            async move {
                client
                    .list(ListOptions::default().with_prefix("upload/"))
                    .await
                    .unwrap();
                client.count(&Query::default()).await.unwrap();
                client.query(&Query::default()).await.unwrap();
            }
        });
        let (sizes, _) = futures::join!(
            futures::future::join_all(uploads),
            futures::future::join_all(reads)
        );
        assert_eq!(sizes, vec![UPLOAD_SIZE as u64; UPLOADS]);
        assert_eq!(
            client.count(&Query::default()).await.unwrap(),
            UPLOADS as u64
        );
        server.stop().await;
    });
}

#[test]
fn the_default_blocking_threads_cover_the_default_bounds_and_stay_below_tokios_default() {
    let config = ServerConfig::default();
    let threads = config.blocking_threads();
    assert!(threads >= 2 * config.max_concurrent_uploads + 2 * config.max_blocking_requests);
    assert!(threads < 512, "{threads} blocking threads");
}

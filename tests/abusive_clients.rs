//! Clients that break HTTP/2's rules, spoken frame by frame over a raw socket: more concurrent
//! streams than allowed, frames larger than allowed. The server refuses them within its limits
//! and keeps serving everyone else.

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::Duration;

use asterope::{Client, Database, Key, Metadata, ObjectOps, ServerConfig, StoreExt};
use common::pattern;
use server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HEADERS of `PUT /v1/objects/s<stream>` (HPACK: static-table indexes and literals without
/// indexing), leaving the stream open.
fn open_upload(stream: u32) -> Vec<u8> {
    let path = format!("/v1/objects/s{stream}");
    let mut block = vec![0x86]; // :scheme http
    block.extend_from_slice(&[0x02, 3]); // :method (name index 2), literal value
    block.extend_from_slice(b"PUT");
    block.extend_from_slice(&[0x04, path.len() as u8]); // :path
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 9]); // :authority
    block.extend_from_slice(b"localhost");
    frame(0x1, 0x4, stream, &block) // END_HEADERS
}

async fn handshake(server: &TestServer) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(PREFACE).await.unwrap();
    tcp.write_all(&frame(0x4, 0, 0, &[])).await.unwrap(); // SETTINGS
    tcp
}

/// Reads frames until `wanted(type, payload)` holds; false if the connection ends first.
async fn read_until(tcp: &mut TcpStream, mut wanted: impl FnMut(u8, &[u8]) -> bool) -> bool {
    loop {
        let mut head = [0u8; 9];
        if tcp.read_exact(&mut head).await.is_err() {
            return false;
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if tcp.read_exact(&mut payload).await.is_err() {
            return false;
        }
        if head[3] == 0x4 && head[4] & 1 == 0 {
            let _ = tcp.write_all(&frame(0x4, 0x1, 0, &[])).await; // ACK their SETTINGS
        }
        if wanted(head[3], &payload) {
            return true;
        }
    }
}

fn error_code(payload: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(payload[at..at + 4].try_into().unwrap())
}

async fn others_still_served(server: &TestServer) {
    let client = Client::connect(&server.url()).await.unwrap();
    let key = Key::new("bystander").unwrap();
    client
        .put_bytes(&key, pattern(1, 100_000), Metadata::new())
        .await
        .unwrap();
    assert_eq!(client.get_bytes(&key).await.unwrap().1, pattern(1, 100_000));
    assert!(client.head(&key).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_streams_are_refused_and_others_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_concurrent_streams: 16,
        ..ServerConfig::default()
    };
    let server = TestServer::start(Database::open(dir.path()).unwrap(), config).await;
    let mut tcp = handshake(&server).await;
    // Wait for the server's SETTINGS (which announce the limit), then open far more uploads.
    assert!(read_until(&mut tcp, |kind, _| kind == 0x4).await);
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        burst.extend_from_slice(&open_upload(2 * i + 1));
    }
    tcp.write_all(&burst).await.unwrap();
    // REFUSED_STREAM (7) on a RST_STREAM, or the connection torn down with GOAWAY.
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        read_until(&mut tcp, |kind, payload| {
            (kind == 0x3 && error_code(payload, 0) == 0x7) || kind == 0x7
        }),
    )
    .await
    .unwrap_or(false);
    assert!(
        refused,
        "excess streams were neither refused nor the connection closed"
    );
    others_still_served(&server).await;
    drop(tcp);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_end_that_connection_only() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(Database::open(dir.path()).unwrap(), ServerConfig::default()).await;
    let mut tcp = handshake(&server).await;
    assert!(read_until(&mut tcp, |kind, _| kind == 0x4).await);
    tcp.write_all(&open_upload(1)).await.unwrap();
    // A DATA frame announcing 16 MiB - 1 bytes, far above the 16 KiB the server allows.
    let mut head = frame(0x0, 0, 1, &[]);
    head[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
    tcp.write_all(&head).await.unwrap();
    tcp.write_all(&vec![0u8; 64 * 1024]).await.unwrap();
    let goaway = tokio::time::timeout(
        Duration::from_secs(10),
        read_until(&mut tcp, |kind, payload| {
            kind == 0x7 && error_code(payload, 4) == 0x6 // GOAWAY FRAME_SIZE_ERROR
        }),
    )
    .await
    .unwrap_or(false);
    assert!(goaway, "no GOAWAY(FRAME_SIZE_ERROR) for an oversized frame");
    others_still_served(&server).await;
    server.stop().await;
}

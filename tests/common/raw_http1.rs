//! A minimal HTTP/1.1 client on a raw socket, so that tests see the exact bytes of a reply.
#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::TestServer;

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A reply read off a raw socket: status, header block (lower-cased) and body bytes.
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    }
    pub fn error_code(&self) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        json["error"]["code"].as_str().unwrap_or("").to_string()
    }
}

/// Sends `request` with `Connection: close` semantics expected of the caller, reads everything
/// until the server closes, and splits the reply (a `content-length` body is taken as is).
pub async fn raw_exchange(server: &TestServer, request: &[u8]) -> RawReply {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut all))
        .await
        .expect("the server answered and closed")
        .unwrap();
    parse_reply(&all)
}

/// Splits a whole reply, read until the server closed, into status, header block and body.
pub fn parse_reply(all: &[u8]) -> RawReply {
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("a complete reply head in {:?}", text(all)));
    let head = text(&all[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(head.starts_with("http/1.1 "), "{head}");
    let mut body = all[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).expect("a complete chunked body");
    }
    RawReply { status, head, body }
}

/// The data of a chunked body, or `None` if it has no terminating chunk.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = text(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(data);
        }
        data.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

//! Transactions over the network: the status and typed error of a conflict, commit and
//! rollback requests that also name a transaction in a header, transactions bound to the token
//! that began them, the cap on open transactions per token, and their maximum lifetime.

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::Duration;

use asterope::{Client, Database, Error, Key, ServerConfig, Store};
use bytes::Bytes;
use common::pattern;
use h2::client::SendRequest;
use http::{Method, Request, StatusCode};
use server::TestServer;

const WRITER: &str = "writer-token";

async fn start(config: ServerConfig) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Database::open(dir.path()).unwrap(), config).await;
    (dir, server)
}

/// A raw HTTP/2 connection, so that tests see statuses and send headers the client never would.
async fn connect(server: &TestServer) -> SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

struct Reply {
    status: StatusCode,
    json: serde_json::Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// Sends `method path` with `headers` and an optional body; gives up after 10 s (a deadlock).
async fn send(
    client: &SendRequest<Bytes>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let exchange = async {
        let mut client = client.clone().ready().await.unwrap();
        let (response, mut stream) = client
            .send_request(builder.body(()).unwrap(), body.is_none())
            .unwrap();
        if let Some(body) = body {
            stream.send_data(body, true).unwrap();
        }
        let (parts, mut body) = response.await.unwrap().into_parts();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        Reply {
            status: parts.status,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the server did not answer within 10 s")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Begins a transaction with `token`; its id.
async fn begin(client: &SendRequest<Bytes>, token: &str) -> String {
    let reply = send(
        client,
        Method::POST,
        "/v1/transactions",
        &[("authorization", &bearer(token))],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
    reply.json["id"].as_str().unwrap().to_string()
}

async fn put_in(client: &SendRequest<Bytes>, token: &str, id: &str, key: &str) -> Reply {
    send(
        client,
        Method::PUT,
        &format!("/v1/objects/{key}"),
        &[
            ("authorization", &bearer(token)),
            ("x-asterope-transaction", id),
        ],
        Some(pattern(7, 1000)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_commit_is_409_conflict_and_the_client_returns_conflict() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let raw = connect(&server).await;
    let first = begin(&raw, WRITER).await;
    let second = begin(&raw, WRITER).await;
    assert_eq!(put_in(&raw, WRITER, &first, "k").await.status, 201);
    assert_eq!(put_in(&raw, WRITER, &second, "k").await.status, 201);
    let commit = |id: String| {
        let raw = raw.clone();
        async move {
            send(
                &raw,
                Method::POST,
                &format!("/v1/transactions/{id}/commit"),
                &[],
                None,
            )
            .await
        }
    };
    assert_eq!(commit(first).await.status, StatusCode::OK);
    let lost = commit(second).await;
    assert_eq!(lost.status, StatusCode::CONFLICT, "{:?}", lost.json);
    assert_eq!(lost.code(), "conflict");

    // The same race through the client gives the typed variant.
    let client = Client::connect(&server.url()).await.unwrap();
    let key = Key::new("c").unwrap();
    let (a, b) = (client.begin().await.unwrap(), client.begin().await.unwrap());
    for tx in [&a, &b] {
        tx.put(
            &key,
            common::chunked(pattern(1, 10), 10),
            Default::default(),
        )
        .await
        .unwrap();
    }
    a.commit().await.unwrap();
    match b.commit().await {
        Err(Error::Conflict { key }) => assert_eq!(key, "c"),
        other => panic!("expected Error::Conflict, got {other:?}"),
    }
    server.stop().await;
}

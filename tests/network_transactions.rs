//! Transactions over the network: the status and typed error of a conflict, commit and
//! rollback requests that also name a transaction in a header, transactions bound to the token
//! that began them, the cap on open transactions per token, and their maximum lifetime.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::Duration;

use asterope::{Access, Client, Database, Error, Key, ServerConfig, Store, Tokens};
use bytes::Bytes;
use common::pattern;
use h2::client::SendRequest;
use http::{Method, Request, StatusCode};
use server::TestServer;

const WRITER: &str = "writer-token";
const OTHER_WRITER: &str = "other-writer-token";
const READER: &str = "reader-token";

fn with_tokens(config: ServerConfig) -> ServerConfig {
    let mut tokens = Tokens::default();
    tokens.add(WRITER, Access::ReadWrite);
    tokens.add(OTHER_WRITER, Access::ReadWrite);
    tokens.add(READER, Access::ReadOnly);
    ServerConfig { tokens, ..config }
}

async fn start(config: ServerConfig) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(Database::open(dir.path()).unwrap(), config).await;
    (dir, server)
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
        .method(method.clone())
        .uri(format!("http://localhost{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    // A HEAD reply has no body to read (and a body on one is not this file's concern).
    let with_body = method != Method::HEAD;
    let exchange = async {
        let mut client = client.clone().ready().await.unwrap();
        let (response, mut stream) = client
            .send_request(builder.body(()).unwrap(), body.is_none())
            .unwrap();
        if let Some(body) = body {
            // A server that refuses the request early (unknown transaction) may reset the
            // stream before the body goes out; its reply is what the test looks at.
            let _ = stream.send_data(body, true);
        }
        let (parts, mut body) = response.await.unwrap().into_parts();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await.filter(|_| with_body) {
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
    let raw = server.connect_raw().await;
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

/// Commits (`commit`) or rolls back transaction `id` as `token`, optionally also naming
/// transaction `header` in `x-asterope-transaction`.
async fn end(
    client: &SendRequest<Bytes>,
    commit: bool,
    token: &str,
    id: &str,
    header: Option<&str>,
) -> Reply {
    let auth = bearer(token);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(header.map(|h| ("x-asterope-transaction", h)));
    let (method, path) = match commit {
        true => (Method::POST, format!("/v1/transactions/{id}/commit")),
        false => (Method::DELETE, format!("/v1/transactions/{id}")),
    };
    send(client, method, &path, &headers, None).await
}

async fn commit(client: &SendRequest<Bytes>, token: &str, id: &str, header: Option<&str>) -> Reply {
    end(client, true, token, id, header).await
}

async fn rollback(
    client: &SendRequest<Bytes>,
    token: &str,
    id: &str,
    header: Option<&str>,
) -> Reply {
    end(client, false, token, id, header).await
}

async fn get_plain(client: &SendRequest<Bytes>, key: &str) -> StatusCode {
    let path = format!("/v1/objects/{key}");
    let auth = bearer(READER);
    send(
        client,
        Method::HEAD,
        &path,
        &[("authorization", &auth)],
        None,
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_or_rollback_naming_a_transaction_in_a_header_is_refused_not_deadlocked() {
    let (_dir, server) = start(with_tokens(ServerConfig::default())).await;
    let raw = server.connect_raw().await;
    let a = begin(&raw, WRITER).await;
    let b = begin(&raw, WRITER).await;
    assert_eq!(put_in(&raw, WRITER, &a, "staged-a").await.status, 201);
    assert_eq!(put_in(&raw, WRITER, &b, "staged-b").await.status, 201);

    let same = commit(&raw, WRITER, &a, Some(&a)).await;
    assert_eq!(same.status, StatusCode::BAD_REQUEST, "{:?}", same.json);
    assert_eq!(same.code(), "invalid_argument");
    let same = rollback(&raw, WRITER, &a, Some(&a)).await;
    assert_eq!(same.status, StatusCode::BAD_REQUEST, "{:?}", same.json);

    // Crossed ids, at the same time: each names the other in its header.
    let (ab, ba) = tokio::join!(
        commit(&raw, WRITER, &a, Some(&b)),
        rollback(&raw, WRITER, &b, Some(&a))
    );
    assert_eq!(
        (ab.status, ba.status),
        (400.try_into().unwrap(), 400.try_into().unwrap())
    );

    // Nothing was lost: both transactions are still open and end as asked.
    assert_eq!(commit(&raw, WRITER, &a, None).await.status, StatusCode::OK);
    assert_eq!(get_plain(&raw, "staged-a").await, StatusCode::OK);
    assert_eq!(
        rollback(&raw, WRITER, &b, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get_plain(&raw, "staged-b").await, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_belongs_to_the_token_that_began_it() {
    let config = ServerConfig {
        transaction_lease: Duration::from_millis(600),
        ..ServerConfig::default()
    };
    let (_dir, server) = start(with_tokens(config)).await;
    let raw = server.connect_raw().await;
    let id = begin(&raw, WRITER).await;
    assert_eq!(put_in(&raw, WRITER, &id, "secret").await.status, 201);

    // To another token the id is unknown: no reads of staged data, no writes, no commit.
    let read = send(
        &raw,
        Method::GET,
        "/v1/objects/secret",
        &[
            ("authorization", &bearer(READER)),
            ("x-asterope-transaction", &id),
        ],
        None,
    )
    .await;
    assert_eq!(
        (read.status, read.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let write = put_in(&raw, OTHER_WRITER, &id, "other").await;
    assert_eq!(
        (write.status, write.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let foreign_commit = commit(&raw, OTHER_WRITER, &id, None).await;
    assert_eq!(foreign_commit.status, StatusCode::NOT_FOUND);
    let foreign_rollback = rollback(&raw, OTHER_WRITER, &id, None).await;
    assert_eq!(foreign_rollback.status, StatusCode::NOT_FOUND);

    // Nor does another token's use renew the lease: the owner's silence lets it expire.
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        let path = "/v1/objects/secret";
        let auth = bearer(READER);
        let headers = [
            ("authorization", auth.as_str()),
            ("x-asterope-transaction", &id),
        ];
        send(&raw, Method::HEAD, path, &headers, None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late = commit(&raw, WRITER, &id, None).await;
    assert_eq!(late.status, StatusCode::NOT_FOUND, "{:?}", late.json);
    assert_eq!(get_plain(&raw, "secret").await, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transactions_per_token_are_capped() {
    let config = ServerConfig {
        max_transactions_per_token: 3,
        ..ServerConfig::default()
    };
    let (_dir, server) = start(with_tokens(config)).await;
    let raw = server.connect_raw().await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(begin(&raw, WRITER).await);
    }
    let auth = bearer(WRITER);
    let refused = send(
        &raw,
        Method::POST,
        "/v1/transactions",
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        refused.json
    );
    assert_eq!(refused.code(), "too_many_transactions");
    assert_eq!(refused.json["error"]["limit"], 3);
    // Another token has its own allowance; ending one frees a place.
    begin(&raw, OTHER_WRITER).await;
    assert_eq!(
        rollback(&raw, WRITER, &open[0], None).await.status,
        StatusCode::NO_CONTENT
    );
    begin(&raw, WRITER).await;

    // The client sees the typed error.
    let client = Client::builder(server.url())
        .token(WRITER)
        .connect()
        .await
        .unwrap();
    match client.begin().await {
        Err(Error::TooManyTransactions { limit }) => assert_eq!(limit, 3),
        other => panic!("expected TooManyTransactions, got {:?}", other.map(|_| ())),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_ends_at_its_maximum_lifetime_however_often_it_is_renewed() {
    let config = ServerConfig {
        transaction_lease: Duration::from_secs(30),
        transaction_max_lifetime: Duration::from_millis(1500),
        ..ServerConfig::default()
    };
    let (_dir, server) = start(with_tokens(config)).await;
    let raw = server.connect_raw().await;
    let id = begin(&raw, WRITER).await;
    assert_eq!(put_in(&raw, WRITER, &id, "kept-busy").await.status, 201);
    // The owner keeps using it, well within its lease, past its lifetime.
    let until = tokio::time::Instant::now() + Duration::from_millis(3000);
    let mut last = StatusCode::CREATED;
    while tokio::time::Instant::now() < until {
        last = put_in(&raw, WRITER, &id, "kept-busy").await.status;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, StatusCode::NOT_FOUND);
    assert_eq!(
        commit(&raw, WRITER, &id, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get_plain(&raw, "kept-busy").await, StatusCode::NOT_FOUND);
    server.stop().await;
}

//! The raw HTTP/2 client the tests speak through: building requests, sending them with an
//! optional body and trailers, reading replies (a HEAD reply checked to end with its HEADERS
//! frame), and starting a server with the configurations the tests need.

use asterope::{Access, Database, ServerConfig, Tokens};
use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, StatusCode};

use crate::server::TestServer;

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub(crate) fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

pub(crate) fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

pub(crate) async fn read_reply(response: h2::client::ResponseFuture) -> Reply {
    read_reply_of(response, true).await
}

/// Reads a reply; a HEAD reply announces the object's length but carries no body.
pub(crate) async fn read_reply_of(response: h2::client::ResponseFuture, with_body: bool) -> Reply {
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await.filter(|_| with_body) {
        let chunk = chunk.unwrap_or_else(|e| panic!("{parts:?} {bytes:?}: {e}"));
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: bytes,
    }
}

/// Sends a request with an optional body and optional trailers.
pub(crate) async fn send(
    client: &SendRequest<Bytes>,
    request: Request<()>,
    body: Option<Bytes>,
    trailers: Option<HeaderMap>,
) -> Reply {
    let mut client = client.clone().ready().await.unwrap();
    let with_body = request.method() != Method::HEAD;
    let end_now = body.is_none() && trailers.is_none();
    let (response, mut stream) = client.send_request(request, end_now).unwrap();
    if let Some(body) = body {
        stream.send_data(body, trailers.is_none()).unwrap();
    }
    if let Some(trailers) = trailers {
        stream.send_trailers(trailers).unwrap();
    }
    read_reply_of(response, with_body).await
}

pub(crate) async fn start(config: ServerConfig) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(8 << 20)
        .open()
        .unwrap();
    let server = TestServer::start(db, config).await;
    (dir, server)
}

/// A server that accepts one read-only token, `reader-secret`.
pub(crate) async fn start_with_reader_token() -> (tempfile::TempDir, TestServer) {
    let mut tokens = Tokens::default();
    tokens.add("reader-secret", Access::ReadOnly);
    start(ServerConfig {
        tokens,
        ..ServerConfig::default()
    })
    .await
}

/// Sends a request without a body.
pub(crate) async fn ask(
    client: &SendRequest<Bytes>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    send(client, request(method, path, headers), None, None).await
}

/// Sends a HEAD and returns its reply after checking that the HEADERS frame ended the stream:
/// no DATA frame follows, on success and on error replies alike.
pub(crate) async fn head_only(
    client: &SendRequest<Bytes>,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut client = client.clone().ready().await.unwrap();
    let (response, _) = client
        .send_request(request(Method::HEAD, path, headers), true)
        .unwrap();
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    assert!(
        body.is_end_stream(),
        "HEAD {path} ({}): the HEADERS frame did not end the stream",
        parts.status
    );
    let data = body.data().await;
    assert!(data.is_none(), "HEAD {path} ({}): {data:?}", parts.status);
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: Vec::new(),
    }
}

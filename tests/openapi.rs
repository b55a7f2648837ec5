//! The OpenAPI document the server serves at `GET /v1/openapi.json` describes exactly the routes
//! the server answers: every documented (method, path) is routed, and every method the server
//! routes on a documented path is documented. It needs no token.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

#[path = "common/raw_http1.rs"]
mod raw_http1;
#[path = "common/server.rs"]
mod server;

use std::collections::BTreeSet;

use asterope::{Access, Database, ServerConfig, Tokens};
use raw_http1::raw_exchange;
use server::TestServer;

const METHODS: [&str; 5] = ["GET", "HEAD", "PUT", "POST", "DELETE"];

async fn start(dir: &std::path::Path, config: ServerConfig) -> TestServer {
    let db = Database::builder(dir.join("data")).open().unwrap();
    TestServer::start(db, config).await
}

/// A concrete path for a template (`{key}` and the like filled in).
fn sample(template: &str) -> String {
    template
        .replace("{key}", "k")
        .replace("{field}", "f")
        .replace("{id}", "t")
}

async fn request(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> raw_http1::RawReply {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\n{auth}connection: close\r\ncontent-length: 0\r\n\r\n"
    );
    raw_exchange(server, text.as_bytes()).await
}

/// Whether the server routes `method` on `path`: anything but the refusal of an unknown route
/// (`400 invalid_argument`, "no such route"; a HEAD reply carries only the code) or of a method
/// the route does not take (`405 method_not_allowed`).
async fn routed(server: &TestServer, method: &str, path: &str) -> bool {
    let reply = request(server, method, path, None).await;
    if reply.status == 405 {
        return false;
    }
    if reply.status != 400
        || reply.header("x-asterope-error-code").as_deref() != Some("invalid_argument")
    {
        return true;
    }
    if method == "HEAD" {
        return false;
    }
    !String::from_utf8_lossy(&reply.body).contains("no such route")
}

async fn document(server: &TestServer) -> serde_json::Value {
    let reply = request(server, "GET", "/v1/openapi.json", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    serde_json::from_slice(&reply.body).unwrap()
}

#[tokio::test]
async fn every_routed_method_is_documented_and_every_documented_one_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let document = document(&server).await;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{:?}", paths.keys());
    let mut documented = BTreeSet::new();
    let mut served = BTreeSet::new();
    for (template, item) in paths {
        for method in METHODS {
            if item.get(method.to_ascii_lowercase()).is_some() {
                documented.insert((method, template.clone()));
            }
            if routed(&server, method, &sample(template)).await {
                served.insert((method, template.clone()));
            }
        }
    }
    assert_eq!(documented, served);
    assert!(!routed(&server, "GET", "/v1/nothing-here").await);
}

/// A method a documented path does not take is `405 method_not_allowed`, and its `Allow` header
/// lists exactly the methods the document gives the path.
#[tokio::test]
async fn other_methods_are_405_with_the_documented_methods_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let document = document(&server).await;
    for (template, item) in document["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
            .map(|m| m.to_string())
            .collect();
        let refused = ["PATCH", "TRACE"]
            .into_iter()
            .chain(METHODS.into_iter().filter(|m| !documented.contains(*m)));
        for method in refused {
            let reply = request(&server, method, &sample(template), None).await;
            assert_eq!(reply.status, 405, "{method} {template}");
            assert_eq!(
                reply.header("x-asterope-error-code").as_deref(),
                Some("method_not_allowed"),
                "{method} {template}"
            );
            let allow = reply.header("allow").unwrap_or_default();
            let allowed: BTreeSet<String> =
                allow.split(", ").map(str::to_ascii_uppercase).collect();
            assert_eq!(allowed, documented, "Allow of {method} {template}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_document_needs_no_token_but_the_data_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut tokens = Tokens::default();
    tokens.add("secret", Access::ReadWrite);
    let config = ServerConfig {
        tokens,
        ..ServerConfig::default()
    };
    let server = start(dir.path(), config).await;
    let document = document(&server).await;
    let security = &document["paths"]["/v1/objects/{key}"]["get"]["security"];
    assert_eq!(security[0]["bearer"], serde_json::json!([]));
    assert!(document["paths"]["/v1/openapi.json"]["get"]["security"].is_null());
    assert_eq!(request(&server, "GET", "/v1/stats", None).await.status, 401);
    assert_eq!(
        request(&server, "GET", "/v1/stats", Some("secret"))
            .await
            .status,
        200
    );
    assert_eq!(
        request(&server, "HEAD", "/v1/openapi.json", None)
            .await
            .status,
        200
    );
}

//! Bearer tokens: every route but health is guarded, read-only tokens cannot write, the scheme is
//! case-insensitive and a 401 names it.

use asterope::{Access, ServerConfig, Tokens};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::{ask, request, send, start, start_with_reader_token};

#[tokio::test]
async fn tokens_guard_every_route_but_health() {
    let mut tokens = Tokens::default();
    tokens.add("writer-secret", Access::ReadWrite);
    tokens.add("reader-secret", Access::ReadOnly);
    let config = ServerConfig {
        tokens,
        ..ServerConfig::default()
    };
    let (_dir, server) = start(config).await;
    let client = server.connect_raw().await;
    let writer = [("authorization", "Bearer writer-secret")];
    let reader = [("authorization", "Bearer reader-secret")];
    let wrong = [("authorization", "Bearer nope")];
    let put = |h: &[(&str, &str)]| request(Method::PUT, "/v1/objects/guarded", h);
    let body = || Some(Bytes::from_static(b"payload"));

    let reply = send(&client, put(&[]), body(), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let reply = send(&client, put(&wrong), body(), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(&client, put(&reader), body(), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/guarded", &writer),
        None,
        None,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "refused writes stored something"
    );
    let reply = send(&client, put(&writer), body(), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    for path in [
        "/v1/objects/guarded",
        "/v1/objects",
        "/metrics",
        "/v1/metadata/guarded",
    ] {
        let reply = send(&client, request(Method::GET, path, &[]), None, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        let reply = send(&client, request(Method::GET, path, &reader), None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let reply = send(
        &client,
        request(Method::DELETE, "/v1/objects/guarded", &reader),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Compaction rewrites storage: a read-only token may not start it.
    let compact = |h: &[(&str, &str)]| request(Method::POST, "/v1/compact", h);
    let reply = send(&client, compact(&[]), None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(&client, compact(&reader), None, None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = send(&client, compact(&writer), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["moved_bytes"].is_u64(), "{:?}", reply.json());
    let reply = send(&client, request(Method::GET, "/v1/health", &[]), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_401_names_it() {
    let (_dir, server) = start_with_reader_token().await;
    let client = server.connect_raw().await;
    for accepted in [
        "Bearer reader-secret",
        "bearer reader-secret",
        "BEARER reader-secret",
        "bEaReR  reader-secret",
    ] {
        let list = request(Method::GET, "/v1/objects", &[("authorization", accepted)]);
        let reply = send(&client, list, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{accepted}");
    }
    for refused in [
        None,
        Some("Bearerreader-secret"),
        Some("Basic reader-secret"),
        Some("Bearer nope"),
    ] {
        let headers: Vec<(&str, &str)> = refused.iter().map(|h| ("authorization", *h)).collect();
        for method in [Method::GET, Method::HEAD] {
            let reply = ask(&client, method.clone(), "/v1/objects", &headers).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {refused:?}"
            );
            assert_eq!(
                reply.headers["www-authenticate"], "Bearer realm=\"asterope\"",
                "{method} {refused:?}"
            );
        }
    }
}

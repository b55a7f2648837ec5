//! Malformed requests get clear errors: bad keys, paths and methods, an empty key, list
//! parameters that are not exact, and query strings where a route takes none.

use asterope::ServerConfig;
use bytes::Bytes;
use http::{Method, Request, StatusCode};

use crate::client::{ask, request, send, start};

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let cases: Vec<(Request<()>, StatusCode, &str)> = vec![
        (
            request(Method::PUT, "/v1/objects/a%00b", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_key",
        ),
        (
            request(Method::PUT, "/v1/objects/%ff%fe", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_key",
        ),
        (
            request(
                Method::GET,
                &format!("/v1/objects/{}", "k".repeat(1025)),
                &[],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_key",
        ),
        (
            request(
                Method::PUT,
                "/v1/objects/m",
                &[("x-asterope-meta", "{not json")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_metadata",
        ),
        (
            request(
                Method::PUT,
                "/v1/objects/m",
                &[("x-asterope-meta", "[1,2]")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_metadata",
        ),
        (
            request(
                Method::PUT,
                "/v1/objects/m",
                &[("x-asterope-sha256", "xyz")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            request(
                Method::DELETE,
                "/v1/objects/m",
                &[("x-asterope-if-version", "-1")],
            ),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            request(Method::GET, "/v1/objects/missing", &[]),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            request(Method::GET, "/v1/objects?limit=abc", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            request(Method::GET, "/v2/whatever", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
    ];
    for (req, status, code) in cases {
        let uri = req.uri().clone();
        let reply = send(&client, req, Some(Bytes::from_static(b"data")), None).await;
        assert_eq!(reply.status, status, "{uri}");
        assert_eq!(reply.error_code(), code, "{uri}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(!message.is_empty(), "{uri}: no message");
    }
    // Oversize metadata (64 KiB encoded is the limit).
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(100_000));
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/m", &[("x-asterope-meta", &big)]),
        Some(Bytes::from_static(b"data")),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_metadata");
    // The exact error body of a missing object.
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/nope", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": {"code": "not_found", "message": "object not found: nope", "key": "nope"}})
    );
}

#[tokio::test]
async fn list_parameters_are_refused_unless_exact() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    for i in 0..3 {
        let put = request(Method::PUT, &format!("/v1/objects/k{i}"), &[]);
        let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let list = |query: &str| request(Method::GET, &format!("/v1/objects?{query}"), &[]);
    let reply = send(&client, list("limit=1"), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let next = reply.json()["next"].as_str().unwrap().to_string();
    let reply = send(&client, list(&format!("limit=1&cursor={next}")), None, None).await;
    assert_eq!(reply.json()["items"][0]["key"], "k1");
    for query in [
        "cursor=%00",
        "cursor=k0",
        "cursor=zz",
        "cursor=",
        &format!("prefix=k1&cursor={next}"),
        &format!("cursor={next}&cursor={next}"),
        "limit=0",
        "limit=-1",
        "limit=+2",
        "limit=%202",
        "limit=2.0",
        "limit=99999999999999999999999",
        "limit=10001",
        "limit=2&limit=3",
        "prefix=a&prefix=b",
        "prefix=%FF",
        "order=desc",
    ] {
        let reply = send(&client, list(query), None, None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{query}: {:?}",
            reply.json()
        );
    }
    let reply = ask(&client, Method::PUT, "/v1/indexes/a%FFb", &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = ask(&client, Method::GET, "/v1/indexes", &[]).await;
    assert_eq!(reply.json()["indexes"], serde_json::json!([]));
}

#[tokio::test]
async fn an_empty_key_is_an_invalid_key_on_every_object_method() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let object_methods = [Method::PUT, Method::GET, Method::DELETE, Method::HEAD];
    let metadata_methods = [Method::PUT, Method::GET, Method::HEAD];
    for (path, methods) in [
        ("/v1/objects/", &object_methods[..]),
        ("/v1/metadata/", &metadata_methods[..]),
    ] {
        for method in methods {
            let body = (method == Method::PUT).then(|| Bytes::from_static(b"{}"));
            let reply = send(&client, request(method.clone(), path, &[]), body, None).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
            assert_eq!(
                reply.headers["x-asterope-error-code"], "invalid_key",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn a_query_string_on_a_route_without_parameters_is_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let put = request(Method::PUT, "/v1/objects/a?b=c", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let reply = ask(&client, Method::GET, "/v1/objects/a", &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "stored under a cut key"
    );
    let put = request(Method::PUT, "/v1/objects/a%3Fb=c", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(reply.json()["key"], "a?b=c");
    for (method, path) in [
        (Method::GET, "/v1/objects/a%3Fb=c?x"),
        (Method::GET, "/v1/metadata/a%3Fb=c?x=1"),
        (Method::GET, "/v1/stats?verbose=1"),
        (Method::POST, "/v1/query?limit=5"),
    ] {
        let reply = ask(&client, method.clone(), path, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    let reply = ask(&client, Method::GET, "/v1/health?probe=1", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

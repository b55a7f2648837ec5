//! Reading objects: ranges and object headers, unsatisfiable or malformed ranges (416 with the
//! size), and HEAD replies that carry headers only on every route.

use asterope::ServerConfig;
use http::{Method, StatusCode};

use crate::client::{ask, head_only, request, send, start, start_with_reader_token};
use crate::common::{pattern, sha256};

#[tokio::test]
async fn ranges_and_object_headers() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let data = pattern(2, 100_000);
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/r", &[]),
        Some(data.clone()),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/r", &[("range", "bytes=10-19")]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.headers["content-range"], "bytes 10-19/100000");
    assert_eq!(reply.headers["content-length"], "10");
    assert_eq!(&reply.body[..], &data[10..20]);
    let reply = send(
        &client,
        request(Method::GET, "/v1/objects/r", &[]),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256(&data).to_hex())
    );
    assert_eq!(reply.body, data.to_vec());
    for bad in ["bytes=100000-", "bytes=0-1,5-6", "items=0-1", "bytes=9-2"] {
        let reply = send(
            &client,
            request(Method::GET, "/v1/objects/r", &[("range", bad)]),
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(reply.error_code(), "invalid_range", "{bad}");
    }
}

#[tokio::test]
async fn unsatisfiable_or_malformed_ranges_are_416_with_the_size() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    for (key, size) in [("empty", 0usize), ("ten", 10)] {
        let put = request(Method::PUT, &format!("/v1/objects/{key}"), &[]);
        let reply = send(&client, put, Some(pattern(3, size)), None).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let get = |key: &str, range: &str| {
        request(
            Method::GET,
            &format!("/v1/objects/{key}"),
            &[("range", range)],
        )
    };
    let refused = [
        ("empty", "bytes=-5", "0"),
        ("empty", "bytes=0-", "0"),
        ("ten", "bytes=10-", "10"),
        ("ten", "bytes=-0", "10"),
        ("ten", "bytes=+5-+9", "10"),
        ("ten", "bytes=+5-", "10"),
        ("ten", "bytes=-+5", "10"),
        ("ten", "bytes= 5-9", "10"),
        ("ten", "bytes=5 -9", "10"),
        ("ten", "bytes=0-1,5-6", "10"),
        ("ten", "items=0-1", "10"),
    ];
    for (key, range, size) in refused {
        let reply = send(&client, get(key, range), None, None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::RANGE_NOT_SATISFIABLE, "invalid_range"),
            "{key} {range}"
        );
        assert_eq!(
            reply.headers["content-range"],
            format!("bytes */{size}").as_str(),
            "{key} {range}"
        );
    }
    let reply = send(&client, get("ten", "BYTES=-3"), None, None).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.headers["content-range"], "bytes 7-9/10");
    // A missing object is 404 whatever its range; a HEAD ignores Range.
    let reply = send(&client, get("missing", "bytes=+1-"), None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let head = request(Method::HEAD, "/v1/objects/ten", &[("range", "bytes=50-")]);
    let reply = send(&client, head, None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-length"], "10");
}

#[tokio::test]
async fn head_replies_carry_headers_only_on_every_route() {
    let (_dir, server) = start_with_reader_token().await;
    let client = server.connect_raw().await;
    let reader = ("authorization", "Bearer reader-secret");

    let reply = head_only(&client, "/v1/health", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The length a GET would carry.
    let get = ask(&client, Method::GET, "/v1/health", &[]).await;
    assert_eq!(
        reply.headers["content-length"],
        get.body.len().to_string().as_str()
    );

    let reply = head_only(&client, "/v1/objects/missing", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["x-asterope-error-code"], "unauthorized");

    let reply = head_only(&client, "/v1/objects/missing", &[reader]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.headers["x-asterope-error-code"], "not_found");

    let reply = head_only(&client, "/v1/objects?limit=many", &[reader]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = head_only(&client, "/v1/no-such-route", &[reader]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let msgpack = ("accept", "application/msgpack");
    for path in ["/v1/objects", "/v1/stats", "/v1/indexes", "/metrics"] {
        let reply = head_only(&client, path, &[reader]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let reply = head_only(&client, path, &[reader, msgpack]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

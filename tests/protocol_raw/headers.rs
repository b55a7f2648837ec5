//! Request headers: duplicate, unknown or meaningless Asterope headers are refused, store-wide
//! routes refuse a transaction header, and large header blocks (before SETTINGS, or the largest
//! valid metadata on concurrent streams) are served.

use asterope::ServerConfig;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};

use crate::client::{ask, request, send, start};
use crate::common::{pattern, sha256};
use crate::server::TestServer;

#[tokio::test]
async fn duplicate_and_unknown_headers_are_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let data = Bytes::from_static(b"payload");
    let good = sha256(&data).to_hex();
    let bad = sha256(b"other").to_hex();
    let put = |headers: &[(&str, &str)]| request(Method::PUT, "/v1/objects/h", headers);
    let refused_puts: [&[(&str, &str)]; 8] = [
        &[("x-asterope-sha256", &good), ("x-asterope-sha256", &bad)],
        &[("x-asterope-sha256", &good), ("x-asterope-sha256", &good)],
        &[
            ("x-asterope-if-version", "0"),
            ("x-asterope-if-version", "7"),
        ],
        &[("x-asterope-meta", "{}"), ("x-asterope-meta", "{\"a\":1}")],
        &[("x-asterope-if-version", "+0")],
        &[("x-asterope-if-verison", "7")],
        &[("content-type", "a/b"), ("content-type", "c/d")],
        &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
    ];
    for headers in refused_puts {
        let reply = send(&client, put(headers), Some(data.clone()), None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{headers:?}"
        );
    }
    let mut trailers = HeaderMap::new();
    trailers.append("x-asterope-sha256", good.parse().unwrap());
    trailers.append("x-asterope-sha256", bad.parse().unwrap());
    let reply = send(&client, put(&[]), Some(data.clone()), Some(trailers)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = ask(&client, Method::GET, "/v1/objects/h", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "a refused put stored");

    let reply = send(&client, put(&[]), Some(data.clone()), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let get = |headers: &[(&str, &str)]| request(Method::GET, "/v1/objects/h", headers);
    let refused_gets: [&[(&str, &str)]; 3] = [
        &[("range", "bytes=0-1"), ("range", "bytes=2-3")],
        &[("x-asterope-verify", "yes")],
        &[
            ("x-asterope-transaction", "a"),
            ("x-asterope-transaction", "b"),
        ],
    ];
    for headers in refused_gets {
        let reply = send(&client, get(headers), None, None).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{headers:?}"
        );
    }
    let reply = send(&client, get(&[("x-asterope-verify", "client")]), None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn asterope_headers_where_they_mean_nothing_are_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let put = request(Method::PUT, "/v1/objects/k", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let digest = sha256(b"x").to_hex();
    for (method, path, header) in [
        (Method::GET, "/v1/objects/k", ("x-asterope-if-version", "1")),
        (
            Method::GET,
            "/v1/metadata/k",
            ("x-asterope-if-version", "1"),
        ),
        (Method::GET, "/v1/objects/k", ("x-asterope-meta", "{}")),
        (
            Method::DELETE,
            "/v1/objects/k",
            ("x-asterope-sha256", digest.as_str()),
        ),
        (
            Method::PUT,
            "/v1/metadata/k",
            ("x-asterope-sha256", digest.as_str()),
        ),
        (
            Method::PUT,
            "/v1/objects/k",
            ("x-asterope-verify", "client"),
        ),
        (Method::GET, "/v1/objects", ("x-asterope-if-version", "1")),
        (Method::POST, "/v1/query", ("x-asterope-meta", "{}")),
    ] {
        let body = matches!(method, Method::PUT | Method::POST).then(|| Bytes::from_static(b"{}"));
        let reply = send(
            &client,
            request(method.clone(), path, &[header]),
            body,
            None,
        )
        .await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{method} {path} {header:?}"
        );
    }
    // Where they apply, they work.
    let conditional = [("x-asterope-if-version", "1")];
    let update = request(Method::PUT, "/v1/metadata/k", &conditional);
    let reply = send(&client, update, Some(Bytes::from_static(b"{}")), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = ask(
        &client,
        Method::HEAD,
        "/v1/objects/k",
        &[("x-asterope-verify", "client")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn store_wide_routes_refuse_a_transaction_header() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let begin = request(Method::POST, "/v1/transactions", &[]);
    let reply = send(&client, begin, None, None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let inside = [("x-asterope-transaction", id.as_str())];
    for (method, path) in [
        (Method::GET, "/v1/stats"),
        (Method::POST, "/v1/compact"),
        (Method::GET, "/v1/indexes"),
        (Method::PUT, "/v1/indexes/kind"),
        (Method::DELETE, "/v1/indexes/kind"),
        (Method::POST, "/v1/transactions"),
    ] {
        let reply = ask(&client, method.clone(), path, &inside).await;
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{method} {path}"
        );
    }
    // Nothing was created by the refused requests.
    let reply = ask(&client, Method::GET, "/v1/indexes", &[]).await;
    assert_eq!(reply.json()["indexes"], serde_json::json!([]));
    let count = request(Method::POST, "/v1/query/count", &inside);
    let reply = send(&client, count, Some(Bytes::from_static(b"{}")), None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// A request whose header block (`bytes` of header values) goes out at once, in the
/// 16 KiB frames a client must use before it has seen the server's SETTINGS.
async fn health_with_large_headers(
    server: &TestServer,
    bytes: usize,
) -> Result<StatusCode, h2::Error> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await?;
    let connection = tokio::spawn(connection);
    let filler = hex::encode(pattern(9, bytes / 2));
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri("http://localhost/v1/health");
    for (i, piece) in filler.as_bytes().chunks(4000).enumerate() {
        builder = builder.header(format!("x-filler-{i}"), std::str::from_utf8(piece).unwrap());
    }
    let (response, _) = client.send_request(builder.body(()).unwrap(), true)?;
    let status = response.await?.status();
    drop(client);
    let _ = connection.await;
    Ok(status)
}

#[tokio::test]
async fn a_large_header_block_sent_before_settings_is_served() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let limit = asterope_serialization::MAX_HEADER_LIST_BYTES;
    for bytes in [100_000, 200_000, limit - 20_000] {
        let status = health_with_large_headers(&server, bytes).await;
        assert_eq!(
            status.ok(),
            Some(StatusCode::OK),
            "{bytes} bytes of headers"
        );
    }
    // Past the limit: a clean refusal of the request, not of the connection.
    let status = health_with_large_headers(&server, limit + 50_000).await;
    assert_eq!(
        status.ok(),
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    );
}

/// Two streams of one connection, each with a metadata header of the largest valid size (about
/// 491 KB of JSON for a 64 KiB document), are both served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_largest_metadata_headers_are_served() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let reply = ask(&client, Method::GET, "/v1/health", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let items = vec![r#"{"$base64":""}"#; 32_765].join(",");
    let meta = format!(r#"{{"b":[{items}]}}"#);
    assert!(meta.len() > 490_000);
    let puts = (0..2).map(|i| {
        let request = request(
            Method::PUT,
            &format!("/v1/objects/h/{i}"),
            &[("x-asterope-meta", meta.as_str())],
        );
        send(&client, request, Some(Bytes::from_static(b"abc")), None)
    });
    for reply in futures::future::join_all(puts).await {
        assert_eq!(reply.status, StatusCode::CREATED);
    }
}

//! Request bodies and metadata text: queries in JSON or MessagePack, integers beyond 64 bits,
//! repeated JSON keys and malformed escapes, and deeply nested MessagePack, all refused by name
//! rather than rounded, guessed or crashed on.

use asterope::ServerConfig;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::{ask, request, send, start};

#[tokio::test]
async fn query_bodies_speak_json_or_messagepack() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    for (key, patient) in [("a", "1"), ("b", "2"), ("c", "1")] {
        let meta = format!("{{\"patient_id\":\"{patient}\"}}");
        let put = request(
            Method::PUT,
            &format!("/v1/objects/{key}"),
            &[("x-asterope-meta", &meta)],
        );
        send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    }
    let body =
        serde_json::json!({"filter": {"patient_id": "1"}, "sort": "-patient_id", "limit": 10});
    let reply = send(
        &client,
        request(
            Method::POST,
            "/v1/query",
            &[("content-type", "application/json")],
        ),
        Some(Bytes::from(body.to_string())),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let keys: Vec<_> = reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect();
    assert_eq!(keys, vec!["a", "c"]);
    assert!(reply.json()["next"].is_null());

    let packed = asterope_serialization::encode(&body).unwrap();
    let reply = send(
        &client,
        request(
            Method::POST,
            "/v1/query",
            &[
                ("content-type", "application/msgpack"),
                ("accept", "application/msgpack"),
            ],
        ),
        Some(Bytes::from(packed)),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/msgpack");
    let decoded: serde_json::Value = asterope_serialization::decode(&reply.body, "reply").unwrap();
    let keys: Vec<_> = decoded["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect();
    assert_eq!(keys, vec!["a", "c"]);

    let reply = send(
        &client,
        request(Method::POST, "/v1/query", &[]),
        Some(Bytes::from_static(
            b"{\"filter\": {\"a\": {\"$bogus\": 1}}}",
        )),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_query");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("$bogus"), "{message}");
}

#[tokio::test]
async fn integers_beyond_64_bits_are_refused_not_rounded() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let big = r#"{"n":18446744073709551615}"#;
    let put = request(Method::PUT, "/v1/objects/big", &[("x-asterope-meta", big)]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_metadata")
    );
    let put = request(Method::PUT, "/v1/objects/big", &[]);
    let reply = send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let update = |content_type: &str| {
        request(
            Method::PUT,
            "/v1/metadata/big",
            &[("content-type", content_type)],
        )
    };
    let reply = send(&client, update("application/json"), Some(big.into()), None).await;
    assert_eq!(reply.error_code(), "invalid_metadata");
    let packed = asterope_serialization::encode(&serde_json::json!({ "n": u64::MAX })).unwrap();
    let reply = send(
        &client,
        update("application/msgpack"),
        Some(packed.into()),
        None,
    )
    .await;
    assert_eq!(reply.error_code(), "invalid_metadata");
    let query = request(Method::POST, "/v1/query", &[]);
    let filter = r#"{"filter":{"n":99999999999999999999}}"#;
    let reply = send(&client, query, Some(filter.into()), None).await;
    assert_eq!(reply.error_code(), "invalid_query");
    let reply = ask(&client, Method::GET, "/v1/metadata/big", &[]).await;
    assert_eq!(reply.json()["meta"], serde_json::json!({}));
}

#[tokio::test]
async fn repeated_json_keys_and_malformed_escapes_are_refused() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let body = || Some(Bytes::from_static(b"x"));
    let meta = [("x-asterope-meta", r#"{"a":1,"a":2}"#)];
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/k", &meta),
        body(),
        None,
    )
    .await;
    assert_eq!(reply.error_code(), "invalid_metadata");
    let query = r#"{"filter":{"a":1},"filter":{"a":2}}"#;
    let post = request(Method::POST, "/v1/query", &[]);
    let reply = send(&client, post, Some(query.into()), None).await;
    assert_eq!(reply.error_code(), "invalid_query");
    let packed: &[u8] = &[
        0x81, 0xa6, b'f', b'i', b'l', b't', b'e', b'r', 0x82, 0xa1, b'a', 1, 0xa1, b'a', 2,
    ];
    let post = request(
        Method::POST,
        "/v1/query/count",
        &[("content-type", "application/msgpack")],
    );
    let reply = send(&client, post, Some(Bytes::copy_from_slice(packed)), None).await;
    assert_eq!(reply.error_code(), "invalid_query");
    for (method, path, code) in [
        (Method::PUT, "/v1/objects/a%ZZ", "invalid_key"),
        (Method::PUT, "/v1/objects/a%2", "invalid_key"),
        (Method::GET, "/v1/objects?prefix=%G1", "invalid_argument"),
        (Method::PUT, "/v1/indexes/a%", "invalid_query"),
    ] {
        let reply = send(&client, request(method.clone(), path, &[]), body(), None).await;
        assert_eq!(reply.error_code(), code, "{method} {path}");
    }
    let reply = send(
        &client,
        request(Method::PUT, "/v1/objects/a%25ZZ", &[]),
        body(),
        None,
    )
    .await;
    assert_eq!(reply.json()["key"], "a%ZZ");
}

/// MessagePack bodies nested deeper than any valid request are refused before they are decoded:
/// a few hundred bytes of nested arrays used to overflow the stack of the worker decoding them
/// and abort the whole server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_messagepack_bodies_are_refused_not_a_crash() {
    let (_dir, server) = start(ServerConfig::default()).await;
    let client = server.connect_raw().await;
    let put = request(Method::PUT, "/v1/objects/k", &[]);
    send(&client, put, Some(Bytes::from_static(b"x")), None).await;
    let nested = |prefix: &[u8], levels: usize, last: u8| {
        let mut body = prefix.to_vec();
        body.extend(std::iter::repeat_n(0x91u8, levels));
        body.push(last);
        Bytes::from(body)
    };
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/query/count",
            nested(b"\x81\xa6filter\x81\xa1a", 5000, 0x80),
        ),
        (
            Method::POST,
            "/v1/query",
            nested(b"\x81\xa6filter\x81\xa1a", 5000, 0x80),
        ),
        (
            Method::PUT,
            "/v1/metadata/k",
            nested(b"\x81\xa1a", 5000, 0xc0),
        ),
    ] {
        let head = request(
            method.clone(),
            path,
            &[("content-type", "application/msgpack")],
        );
        let reply = send(&client, head, Some(body), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    let health = ask(&client, Method::GET, "/v1/health", &[]).await;
    assert_eq!(health.status, StatusCode::OK);
}

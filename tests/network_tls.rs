//! HTTP/2 over TLS end to end, with a certificate generated for the test (rcgen).

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{Client, Database, Key, Metadata, ObjectOps, StoreExt};
use common::pattern;
use server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (config, cert_path) = common::self_signed_tls(dir.path());
    let db = Database::open(dir.path().join("data")).unwrap();
    let server = TestServer::start(db, config).await;
    let url = format!("https://localhost:{}", server.addr.port());

    let client = Client::builder(url.as_str())
        .root_certificate(&cert_path)
        .connect()
        .await
        .unwrap();
    let key = Key::new("secure/obj").unwrap();
    let data = pattern(1, 1 << 20);
    client
        .put_bytes(&key, data.clone(), Metadata::new())
        .await
        .unwrap();
    assert_eq!(client.get_bytes(&key).await.unwrap().1, data);

    // Without trusting the certificate the handshake fails, clearly.
    let err = Client::connect(&url).await.unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    // Cleartext HTTP/2 against the TLS port is refused.
    let plain_url = format!("http://127.0.0.1:{}", server.addr.port());
    let refused = match Client::connect(&plain_url).await {
        Ok(plain) => plain.head(&key).await.is_err(),
        Err(_) => true,
    };
    assert!(refused);
    server.stop().await;
}

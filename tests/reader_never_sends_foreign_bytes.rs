//! No byte is ever delivered unless it is a byte of the object named: a reader paused in the
//! middle of an object keeps getting that object's bytes while the space under it is released
//! (a staged write rolled back or replaced, a committed object deleted) and reused by other
//! writes. Checked with verification on and off, and chunks received before the reuse are
//! re-checked after it (they must not change under the caller). Also through a server, whose
//! reply is paused by a slow client while the transaction is rolled back.

mod common;
#[path = "common/server.rs"]
mod server;

use asterope::{
    Client, Database, GetOptions, Key, Metadata, ObjectOps, PutOptions, Result, ServerConfig,
    Store, StoreExt,
};
use bytes::Bytes;
use common::{chunked, pattern, MIB};
use futures::StreamExt;

const SIZE: usize = 16 * MIB;

/// How the paused reader's object loses its space.
#[derive(Clone, Copy, Debug)]
enum Release {
    /// The transaction that staged it rolls back.
    Rollback,
    /// The transaction stages another put of the same key.
    Restage,
    /// The committed object is deleted.
    Delete,
}

fn key(name: &str) -> Key {
    Key::new(name).expect("valid key")
}

/// Reads the rest of `body` after `received`, and checks that everything is the object's.
async fn finish_and_check(
    mut body: asterope::ByteStream,
    mut received: Vec<Bytes>,
    wanted: &[u8],
    what: &str,
) {
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => received.push(chunk),
            Err(e) => panic!("{what}: the read failed: {e}"),
        }
    }
    let got: Vec<u8> = received.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(got.len(), wanted.len(), "{what}");
    let first_foreign = got.iter().zip(wanted.iter()).position(|(a, b)| a != b);
    assert_eq!(
        first_foreign, None,
        "{what}: a byte that is not the object's was delivered"
    );
}

fn test_db(dir: &std::path::Path) -> Result<Database> {
    Database::builder(dir)
        .extent_size(64 << 20)
        .background_compaction(None)
        .open()
}

async fn paused_reader_gets_only_its_object(release: Release, verify: bool) -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = test_db(dir.path())?;
    let wanted = pattern(1, SIZE);
    let tx = db.begin().await?;
    let options = GetOptions::default().with_verify(verify);
    let mut body = match release {
        Release::Delete => {
            db.put(
                &key("read"),
                chunked(wanted.clone(), MIB),
                PutOptions::default(),
            )
            .await?;
            db.get(&key("read"), options).await?.body
        }
        Release::Rollback | Release::Restage => {
            tx.put(
                &key("read"),
                chunked(wanted.clone(), MIB),
                PutOptions::default(),
            )
            .await?;
            tx.get(&key("read"), options).await?.body
        }
    };
    let received: Vec<Bytes> = vec![body.next().await.expect("a first chunk")?];

    match release {
        Release::Rollback => tx.rollback().await?,
        Release::Restage => {
            tx.put(
                &key("read"),
                chunked(pattern(9, SIZE), MIB),
                PutOptions::default(),
            )
            .await?;
        }
        Release::Delete => db.delete(&key("read"), Default::default()).await?,
    }
    for seed in [2, 3] {
        let other = key(&format!("other-{seed}"));
        db.put_bytes(&other, pattern(seed, SIZE), Metadata::new())
            .await?;
    }

    let what = format!("{release:?}, verify {verify}");
    finish_and_check(body, received, &wanted, &what).await;
    Ok(())
}

#[tokio::test]
async fn rolled_back_staged_object_streams_its_own_bytes() -> Result<()> {
    paused_reader_gets_only_its_object(Release::Rollback, false).await?;
    paused_reader_gets_only_its_object(Release::Rollback, true).await
}

#[tokio::test]
async fn restaged_object_streams_its_own_bytes() -> Result<()> {
    paused_reader_gets_only_its_object(Release::Restage, false).await?;
    paused_reader_gets_only_its_object(Release::Restage, true).await
}

#[tokio::test]
async fn deleted_committed_object_streams_its_own_bytes() -> Result<()> {
    paused_reader_gets_only_its_object(Release::Delete, false).await?;
    paused_reader_gets_only_its_object(Release::Delete, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_object_read_through_a_server_streams_its_own_bytes() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let server = server::TestServer::start(test_db(dir.path())?, ServerConfig::default()).await;
    let client = Client::connect(&server.url()).await?;
    // Larger than the server's flow-control windows, so most of it waits in the store.
    let size = 48 * MIB;
    let wanted = pattern(1, size);
    for verify in [false, true] {
        let tx = client.begin().await?;
        tx.put(
            &key("read"),
            chunked(wanted.clone(), MIB),
            PutOptions::default(),
        )
        .await?;
        let options = GetOptions::default().with_verify(verify);
        let mut body = tx.get(&key("read"), options).await?.body;
        let received = vec![body.next().await.expect("a first chunk")?];
        tx.rollback().await?;
        for seed in [2, 3, 4] {
            let other = key(&format!("other-{seed}"));
            client
                .put_bytes(&other, pattern(seed, 16 * MIB), Metadata::new())
                .await?;
        }
        let what = format!("through the server, verify {verify}");
        finish_and_check(body, received, &wanted, &what).await;
    }
    server.stop().await;
    Ok(())
}

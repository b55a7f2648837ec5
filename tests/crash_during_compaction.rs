//! Crash safety of compaction: a process that churns objects and compacts in a loop is killed
//! with SIGKILL at random moments; after every reopen each object reads back exactly, no blob's
//! space is counted twice or leaked, and a final compaction gives the space back.
//!
//! The test binary re-runs itself as the child (`ASTEROPE_COMPACTION_CHILD` names the data dir).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use asterope::{Database, Key, Metadata, ObjectOps, Store, StoreExt, Value};
use common::{pattern, sha256};

const CHILD_ENV: &str = "ASTEROPE_COMPACTION_CHILD";
/// The allocation unit: blobs take their size rounded up to it.
const UNIT: u64 = 512;

fn open(dir: &std::path::Path) -> Database {
    Database::builder(dir)
        .extent_size(8 << 20)
        .background_compaction(None)
        .open()
        .unwrap()
}

/// Content and metadata are both derived from `seed`, so any surviving object can be checked.
async fn put_seeded(db: &Database, key: &Key, seed: u64) {
    let size = 200_000 + (seed * 7919 % 900_000) as usize;
    let mut meta = Metadata::new();
    meta.insert("seed".into(), Value::Int(seed as i64));
    db.put_bytes(key, pattern(seed, size), meta).await.unwrap();
}

/// The child: overwrites and deletes churn objects and compacts, forever.
async fn child(dir: &std::path::Path, first_seed: u64) {
    let db = open(dir);
    let mut seed = first_seed;
    loop {
        for _ in 0..6 {
            let key = Key::new(format!("churn/{:02}", seed % 30)).unwrap();
            put_seeded(&db, &key, seed).await;
            seed += 1;
        }
        let gone = Key::new(format!("churn/{:02}", (seed * 13) % 30)).unwrap();
        let _ = db.delete(&gone, Default::default()).await;
        db.compact().await.unwrap();
    }
}

/// Checks every object against its seed; returns the live bytes and the space they need.
async fn check(db: &Database, attempt: usize) -> (u64, u64) {
    let (mut live, mut needed) = (0, 0);
    for info in db.list_all("").await.unwrap() {
        let Some(Value::Int(seed)) = info.metadata.get("seed") else {
            panic!("attempt {attempt}: {} has no seed", info.key);
        };
        let (_, bytes) = db.get_bytes(&info.key).await.unwrap();
        let expected = pattern(*seed as u64, bytes.len());
        assert!(
            bytes == expected,
            "attempt {attempt}: {} is damaged",
            info.key
        );
        assert_eq!(info.sha256, sha256(&expected));
        live += info.size;
        needed += info.size.div_ceil(UNIT) * UNIT;
    }
    let stats = db.stats().await.unwrap();
    assert_eq!(
        stats.physical_bytes, needed,
        "attempt {attempt}: space in use is not exactly the live blobs' ({stats:?})"
    );
    (live, needed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_compactions_lose_and_leak_nothing() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let first = std::env::var("ASTEROPE_FIRST_SEED")
            .unwrap()
            .parse()
            .unwrap();
        child(std::path::Path::new(&dir), first).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let db = open(&data);
        for i in 0..20u64 {
            put_seeded(
                &db,
                &Key::new(format!("keep/{i:02}")).unwrap(),
                1_000_000 + i,
            )
            .await;
        }
    }
    let mut rng = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {rng}");
    for attempt in 0..8 {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "killed_compactions_lose_and_leak_nothing",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &data)
            .env(
                "ASTEROPE_FIRST_SEED",
                (attempt as u64 * 100_000).to_string(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 700));
        process.kill().unwrap();
        process.wait().unwrap();

        let db = open(&data);
        let (live, _) = check(&db, attempt).await;
        for i in 0..20u64 {
            assert!(db
                .head(&Key::new(format!("keep/{i:02}")).unwrap())
                .await
                .is_ok());
        }
        println!("attempt {attempt}: {live} live bytes intact");
    }
    let db = open(&data);
    db.compact().await.unwrap();
    let (live, _) = check(&db, 99).await;
    let disk = db.stats().await.unwrap().disk_bytes;
    assert!(
        disk <= live + live / 10,
        "after a final compaction {disk} bytes on disk for {live} live bytes"
    );
}

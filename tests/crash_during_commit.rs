//! Crash safety of transactions: a process committing multi-key transactions is killed with
//! SIGKILL at random moments; after reopening, each transaction is all or nothing and every
//! acknowledged one is there.
//!
//! The test binary re-runs itself as the child (`ASTEROPE_COMMIT_CHILD` names the data dir).
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use asterope::{Database, Key, Metadata, PutOptions, Store, StoreExt, Value};
use common::{chunked, pattern};

const CHILD_ENV: &str = "ASTEROPE_COMMIT_CHILD";
const BLOB: usize = 200_000;

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

fn round_of(meta: &Metadata) -> i64 {
    match meta.get("round") {
        Some(Value::Int(r)) => *r,
        other => panic!("no round in {other:?}"),
    }
}

/// The child: commits transaction after transaction, printing each acknowledged round.
async fn child(dir: &str, first_round: i64) {
    let db = Database::builder(dir).extent_size(8 << 20).open().unwrap();
    let mut round = first_round;
    loop {
        let tx = db.begin().await.unwrap();
        let mut meta = Metadata::new();
        meta.insert("round".into(), Value::Int(round));
        for name in ["pair/a", "pair/b"] {
            let options = PutOptions::default().with_metadata(meta.clone());
            let body = chunked(pattern(round as u64, BLOB), 64 * 1024);
            tx.put(&key(name), body, options).await.unwrap();
        }
        tx.put(
            &key(&format!("log/{round:06}")),
            chunked(pattern(0, 10), 10),
            PutOptions::default(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        println!("{round}");
        round += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_commits_are_all_or_nothing() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let first: i64 = std::env::var("ASTEROPE_FIRST_ROUND")
            .unwrap()
            .parse()
            .unwrap();
        child(&dir, first).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut committed: i64 = -1;
    for attempt in 0..10 {
        // Until the child acknowledges a round, the last acknowledged one is the previous child's.
        let acked = Arc::new(AtomicI64::new(committed));
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "killed_commits_are_all_or_nothing",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &data)
            .env("ASTEROPE_FIRST_ROUND", (committed + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let reader = {
            let acked = Arc::clone(&acked);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    if let Ok(round) = line.unwrap_or_default().trim().parse::<i64>() {
                        acked.store(round, Ordering::SeqCst);
                    }
                }
            })
        };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 400));
        process.kill().unwrap();
        process.wait().unwrap();
        reader.join().unwrap();
        let acked = acked.load(Ordering::SeqCst);

        let db = Database::builder(&data)
            .extent_size(8 << 20)
            .open()
            .unwrap();
        let a = db.get_bytes(&key("pair/a")).await;
        let b = db.get_bytes(&key("pair/b")).await;
        let round = match (a, b) {
            (Ok((a_info, a_bytes)), Ok((b_info, b_bytes))) => {
                let round = round_of(&a_info.metadata);
                assert_eq!(
                    round,
                    round_of(&b_info.metadata),
                    "attempt {attempt}: torn transaction"
                );
                assert_eq!(a_info.version, b_info.version);
                assert!(
                    a_bytes == pattern(round as u64, BLOB),
                    "attempt {attempt}: pair/a bytes"
                );
                assert!(
                    b_bytes == pattern(round as u64, BLOB),
                    "attempt {attempt}: pair/b bytes"
                );
                round
            }
            (Err(a), Err(b)) if a.code() == "not_found" && b.code() == "not_found" => -1,
            (a, b) => panic!(
                "attempt {attempt}: torn transaction: {:?} / {:?}",
                a.map(|x| x.0),
                b.map(|x| x.0)
            ),
        };
        assert!(
            round >= acked,
            "attempt {attempt}: acknowledged round {acked} lost (found {round})"
        );
        assert!(
            round <= acked + 1,
            "attempt {attempt}: round {round} never started (acked {acked})"
        );
        let logs = db.list_all("log/").await.unwrap();
        assert_eq!(
            logs.len() as i64,
            round + 1,
            "attempt {attempt}: log entries"
        );
        println!("attempt {attempt}: acked {acked}, found {round}");
        committed = round;
    }
    assert!(committed > 0, "the child never committed anything");
}

//! Crash safety: a CLI process killed with SIGKILL at varied moments of a large overwrite leaves
//! either the old object or the new one, never a partial one; earlier objects stay intact; and
//! the space of the interrupted writes is reused after reopening. The extent files grow during
//! the puts, so kills also land midway through growing one: whatever length that leaves, the
//! directory opens, and no file grows beyond the maximum extent size.
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

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use asterope::{Database, Key, Sha256Digest, StoreExt};
use common::{pattern, sha256, MIB};

const EXTENT_SIZE: u64 = 16 << 20;
const BIG: usize = 40 * MIB;
const ROUNDS: u64 = 12;

fn open(dir: &Path) -> Database {
    Database::builder(dir)
        .extent_size(EXTENT_SIZE)
        .open()
        .expect("reopen after kill")
}

fn cli_put(dir: &Path, key: &str, file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asterope"));
    cmd.arg("--data")
        .arg(dir)
        .arg("--extent-size")
        .arg(EXTENT_SIZE.to_string())
        .arg("put")
        .arg(key)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Reads every object fully (verifying SHA-256 on the way) and checks it against `expected`.
async fn check_intact(db: &Database, expected: &BTreeMap<String, Sha256Digest>) {
    for (name, sha) in expected {
        let (info, bytes) = db
            .get_bytes(&Key::new(name.as_str()).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.sha256, *sha, "{name}: recorded digest changed");
        assert_eq!(sha256(&bytes), *sha, "{name}: bytes changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_puts_leave_old_or_new_never_partial() {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut expected = BTreeMap::new();

    // Earlier objects that must survive every crash.
    for i in 0..3u64 {
        let file = dir.path().join(format!("small{i}"));
        let data = pattern(1000 + i, 3 * MIB + 100 * i as usize);
        std::fs::write(&file, &data).unwrap();
        let status = cli_put(&data_dir, &format!("keep/{i}"), &file)
            .status()
            .unwrap();
        assert!(status.success());
        expected.insert(format!("keep/{i}"), sha256(&data));
    }

    // Time a complete put to spread the kills over its whole length.
    let file = dir.path().join("big");
    let first = pattern(seed, BIG);
    std::fs::write(&file, &first).unwrap();
    let started = Instant::now();
    assert!(cli_put(&data_dir, "big", &file).status().unwrap().success());
    let full_put = started.elapsed();
    let mut committed_big = sha256(&first);
    println!("one {BIG}-byte put takes {full_put:?}");

    let mut rng = seed | 1;
    let mut outcomes = (0, 0);
    for round in 1..=ROUNDS {
        let data = pattern(seed.wrapping_add(round), BIG);
        std::fs::write(&file, &data).unwrap();
        let new_sha = sha256(&data);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill anywhere from process start to a little past the usual end of the put.
        let span = full_put.as_micros() as u64 * 15 / 10 + 1;
        let delay = Duration::from_micros(rng % span);
        let mut child = cli_put(&data_dir, "big", &file).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();

        let db = open(&data_dir);
        check_intact(&db, &expected).await;
        let (info, bytes) = db.get_bytes(&Key::new("big").unwrap()).await.unwrap();
        let found = sha256(&bytes);
        assert_eq!(found, info.sha256);
        if found == new_sha {
            committed_big = new_sha;
            outcomes.1 += 1;
        } else {
            assert_eq!(found, committed_big, "round {round}: neither old nor new");
            assert!(
                !status.success(),
                "round {round}: acknowledged put lost (exit {status:?})"
            );
            outcomes.0 += 1;
        }
        for entry in std::fs::read_dir(data_dir.join("extents")).unwrap() {
            let length = entry.unwrap().metadata().unwrap().len();
            assert!(
                length <= EXTENT_SIZE,
                "round {round}: an extent grew to {length}"
            );
        }
        // Only live blobs hold space: interrupted writes were reclaimed on open.
        let stats = db.space_stats();
        let live = (3 * 3 * MIB + 300 + BIG) as u64;
        let used = stats.extent_bytes - stats.free_bytes;
        assert!(
            used <= live + 16 * 4096,
            "round {round}: {used} bytes used for {live} live bytes: {stats:?}"
        );
        // And it is reused: the extents never need more than the live data plus one big blob
        // in flight plus per-extent slack.
        assert!(
            stats.extent_bytes <= live + BIG as u64 + 4 * EXTENT_SIZE,
            "round {round}: extents grew to {stats:?}"
        );
    }
    println!(
        "killed before commit: {}, after: {}",
        outcomes.0, outcomes.1
    );
    let db = open(&data_dir);
    expected.insert("big".into(), committed_big);
    check_intact(&db, &expected).await;
}

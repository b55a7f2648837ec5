//! The command line on a closed pipe (`asterope get KEY | head -c 200`): like `cat`, it stops
//! quietly, with no panic and no message, and exits with status 141 (128 + SIGPIPE, what a shell
//! reports for `cat` in the same place).
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

use std::io::Read;
use std::process::{Command, Stdio};

use asterope::{Database, Metadata, StoreExt};
use common::{pattern, MIB};

/// Exit status of a writer whose reader went away, as shells report it for `cat`.
const CLOSED_PIPE_STATUS: i32 = 141;

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = Database::builder(dir.path()).open().unwrap();
        db.put_bytes(
            &asterope::Key::new("big").unwrap(),
            pattern(1, 4 * MIB),
            Metadata::new(),
        )
        .await
        .unwrap();
        for i in 0..50 {
            let mut meta = Metadata::new();
            meta.insert("n".into(), asterope::Value::Int(i));
            db.put_bytes(
                &asterope::Key::new(format!("small/{i:03}")).unwrap(),
                pattern(i as u64, 10),
                meta,
            )
            .await
            .unwrap();
        }
    });
    dir
}

fn command(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_asterope"));
    command
        .arg("--data")
        .arg(dir)
        .arg("--compaction-interval")
        .arg("0")
        .args(args);
    command
}

#[test]
fn every_command_ends_quietly_when_stdout_is_closed() {
    let dir = data_dir();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"hello").unwrap();
    let input = input.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["get", "big"],
        &["get", "small/001"],
        &["head", "big"],
        &["ls"],
        &["ls", "small/"],
        &["ls", "--limit", "3"],
        &["meta", "set", "small/001", "{}"],
        &["query", "{}"],
        &["query", "{}", "--count"],
        &["query", "{}", "--explain"],
        &["put", "new", input],
        &["stats"],
        &["index", "create", "n"],
        &["index", "ls"],
        &["compact"],
    ];
    for args in commands {
        let mut child = command(dir.path(), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the only reading end before the command writes anything.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(stderr, "", "{args:?} printed to stderr");
        assert_eq!(status.code(), Some(CLOSED_PIPE_STATUS), "{args:?}");
    }
}

/// `asterope get big 2>&1 | head -c 200`: stdout and stderr are one pipe whose reader stops
/// after 200 bytes.
#[test]
fn get_into_a_pipe_closed_after_200_bytes_exits_quietly() {
    let dir = data_dir();
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = command(dir.path(), &["get", "big"])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut first = vec![0u8; 200];
    reader.read_exact(&mut first).unwrap();
    assert_eq!(&first[..], &pattern(1, 200)[..]);
    drop(reader);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(CLOSED_PIPE_STATUS));
}

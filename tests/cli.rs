//! The `asterope` command line, embedded and against a server: same commands, same output,
//! clear errors with stable codes and non-zero exits.
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

use std::path::Path;
use std::process::{Command, Output};

use common::success_stdout as stdout;
use common::{pattern, sha256, MIB};

fn run(target: &[String], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asterope"))
        .args(target)
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs the same scenario and returns what should be identical across targets.
fn scenario(target: &[String], dir: &Path) -> Vec<serde_json::Value> {
    let file = dir.join("scan.bin");
    let data = pattern(7, 3 * MIB + 11);
    std::fs::write(&file, &data).unwrap();
    let file = file.to_str().unwrap();
    let mut seen = Vec::new();
    for (i, patient) in ["111", "222", "111"].iter().enumerate() {
        let meta = format!(
            r#"{{"patient_id":"{patient}","slices":{},"study_date":{{"$date":"2024-0{}-01"}}}}"#,
            100 + i,
            i + 1
        );
        let out = json_lines(&stdout(&run(
            target,
            &["put", &format!("s/{i}"), file, "--meta", &meta],
        )));
        assert_eq!(out[0]["sha256"], sha256(&data).to_hex());
    }
    let head = json_lines(&stdout(&run(target, &["head", "s/1"])));
    seen.push(serde_json::json!([
        head[0]["key"],
        head[0]["size"],
        head[0]["meta"]
    ]));
    let got = dir.join("got.bin");
    stdout(&run(target, &["get", "s/2", "-o", got.to_str().unwrap()]));
    assert!(std::fs::read(&got).unwrap() == data.to_vec());
    let range = run(target, &["get", "s/2", "--range", "10-19"]);
    assert_eq!(&range.stdout[..], &data[10..20]);
    let listed: Vec<_> = json_lines(&stdout(&run(target, &["ls", "s/"])))
        .into_iter()
        .map(|o| o["key"].clone())
        .collect();
    seen.push(serde_json::json!(listed));
    stdout(&run(target, &["index", "create", "patient_id"]));
    for _ in 0..100 {
        if stdout(&run(target, &["index", "ls"])).contains("ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let explain = json_lines(&stdout(&run(
        target,
        &["query", r#"{"patient_id":"111"}"#, "--explain"],
    )));
    assert_eq!(explain[0]["access"], "index");
    let found = json_lines(&stdout(&run(
        target,
        &["query", r#"{"patient_id":"111"}"#, "--sort", "-slices"],
    )));
    seen.push(serde_json::json!(found
        .iter()
        .map(|o| o["key"].clone())
        .collect::<Vec<_>>()));
    let count = stdout(&run(
        target,
        &[
            "query",
            r#"{"study_date":{"$gte":{"$date":"2024-02-01"}}}"#,
            "--count",
        ],
    ));
    seen.push(serde_json::json!(count.trim()));
    stdout(&run(target, &["rm", "s/0"]));
    // s/1 and s/2 hold the same bytes: stored once.
    let stats = json_lines(&stdout(&run(target, &["stats"])));
    assert_eq!(stats[0]["dedup_saved_bytes"], data.len() as u64);
    seen.push(serde_json::json!([
        stats[0]["objects"],
        stats[0]["logical_bytes"],
        stats[0]["physical_bytes"]
    ]));
    let report = json_lines(&stdout(&run(target, &["compact"])));
    assert!(report[0]["disk_bytes_released"].is_u64(), "{report:?}");

    // Errors: stable codes on stderr, non-zero exit, no output file left behind.
    for (args, code) in [
        (vec!["get", "s/0"], "not_found"),
        (vec!["head", ""], "invalid_key"),
        (vec!["put", "x", file, "--meta", "[1]"], "invalid_metadata"),
        (
            vec!["put", "x", file, "--sha256", &"0".repeat(64)],
            "checksum_mismatch",
        ),
        (vec!["get", "s/1", "--range", "99999999-"], "invalid_range"),
        (vec!["query", r#"{"a":{"$gtx":1}}"#], "invalid_query"),
        (
            vec!["rm", "s/1", "--if-version", "999999"],
            "precondition_failed",
        ),
    ] {
        let out = run(target, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("error[{code}]")),
            "{args:?}: {stderr}"
        );
        seen.push(serde_json::json!(code));
    }
    let missing = dir.join("missing.bin");
    assert!(
        !run(target, &["get", "nope", "-o", missing.to_str().unwrap()])
            .status
            .success()
    );
    assert!(!missing.exists());
    seen
}

#[test]
fn embedded_and_networked_cli_behave_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = vec![
        "--data".to_string(),
        dir.path().join("embedded").display().to_string(),
    ];
    let local = scenario(&embedded, dir.path());

    let (child, url) = common::spawn_server(&dir.path().join("served"), &[]);
    let _server = common::KillOnDrop(child);
    let networked = vec!["--server".to_string(), url];
    let remote = scenario(&networked, dir.path());
    assert_eq!(local, remote);
}

#[test]
fn a_corrupt_blob_fails_get_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let target = vec!["--data".to_string(), data_dir.display().to_string()];
    let file = dir.path().join("in.bin");
    let data = pattern(3, MIB);
    std::fs::write(&file, &data).unwrap();
    stdout(&run(&target, &["put", "k", file.to_str().unwrap()]));
    let extent = data_dir.join("extents/00000000.ext");
    let mut bytes = std::fs::read(&extent).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&extent, &bytes).unwrap();
    let out_file = dir.path().join("out.bin");
    let out = run(&target, &["get", "k", "-o", out_file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[corrupt]"));
    assert!(!out_file.exists());
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 2, "a partial download file was left behind");
}

#[test]
fn verify_reports_damaged_objects_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let target = vec!["--data".to_string(), data_dir.display().to_string()];
    let file = dir.path().join("in.bin");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        std::fs::write(&file, pattern(i as u64, MIB)).unwrap();
        stdout(&run(&target, &["put", name, file.to_str().unwrap()]));
    }
    stdout(&run(&target, &["verify", "--all"]));
    // Damage the middle object: find its first bytes in the extent and flip one after them.
    let extent = data_dir.join("extents/00000000.ext");
    let mut bytes = std::fs::read(&extent).unwrap();
    let needle = pattern(1, 64);
    let at = bytes.windows(64).position(|w| w == &needle[..]).unwrap();
    bytes[at + 1000] ^= 0x80;
    std::fs::write(&extent, &bytes).unwrap();
    let out = run(&target, &["verify", "--all"]);
    assert!(!out.status.success());
    let damaged = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["key"], "b");
    assert_eq!(damaged[0]["code"], "corrupt");
    stdout(&run(&target, &["verify", "a"]));
    assert!(!run(&target, &["verify", "b"]).status.success());
}

/// An index whose build cannot succeed never stops the directory from opening: the CLI lists it
/// as failed, `index create` on it exits non-zero with a clear error instead of reporting
/// success, and `index drop` removes it.
#[test]
fn failed_index_is_listed_refused_by_create_and_droppable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let target = vec!["--data".to_string(), data.to_str().unwrap().to_string()];
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    stdout(&run(&target, &["put", "k", file.to_str().unwrap()]));
    asterope_storage::declare_unreadable_index(&data, "patient_id").unwrap();

    let listed = json_lines(&stdout(&run(&target, &["index", "ls"])));
    assert_eq!(listed[0]["field"], "patient_id");
    assert_eq!(listed[0]["state"], "failed");
    let created = run(&target, &["index", "create", "patient_id"]);
    assert_eq!(created.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(stderr.contains("could not be built"), "{stderr}");
    assert!(stdout(&run(&target, &["get", "k"])).contains('x'));
    stdout(&run(&target, &["index", "drop", "patient_id"]));
    assert!(stdout(&run(&target, &["index", "ls"])).trim().is_empty());
}

#[test]
fn a_download_into_a_fifo_streams_through_it_and_keeps_the_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let target = vec![
        "--data".to_string(),
        dir.path().join("data").display().to_string(),
    ];
    let file = dir.path().join("in.bin");
    let data = pattern(5, 2 * MIB + 3);
    std::fs::write(&file, &data).unwrap();
    stdout(&run(&target, &["put", "k", file.to_str().unwrap()]));
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    stdout(&run(&target, &["get", "k", "-o", fifo.to_str().unwrap()]));
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced by a {kind:?}");
    assert_eq!(reader.join().unwrap(), data);
}

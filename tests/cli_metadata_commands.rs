//! Metadata and paging from the command line, embedded and against a server: `meta set`
//! (no re-upload, `--if-version`), `--meta @FILE` and `@-`, `ls --limit/--cursor`,
//! `query --cursor`, and listing lines that describe objects as the HTTP listing does.
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

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::pattern;
use common::success_stdout as ok;

fn run_with_stdin(target: &[String], cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_asterope"))
        .current_dir(cwd)
        .args(target)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn run(target: &[String], cwd: &Path, args: &[&str]) -> Output {
    run_with_stdin(target, cwd, args, b"")
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn one(text: &str) -> serde_json::Value {
    let mut all = lines(text);
    assert_eq!(all.len(), 1, "{text}");
    all.remove(0)
}

/// The cursor a limited listing reports on stderr as `{"next": ...}`.
fn next_cursor(output: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|l| l.starts_with("{\"next\""))?;
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    Some(json["next"].as_str().unwrap().to_string())
}

fn keys(text: &str) -> Vec<String> {
    lines(text)
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect()
}

fn scenario(target: &[String], cwd: &Path) {
    let data = pattern(3, 5000);
    std::fs::write(cwd.join("blob.bin"), &data).unwrap();
    // A document too long for a command line (beyond ARG_MAX's 128 KiB per argument), read
    // from a file: its JSON is mostly whitespace, its MessagePack within the limit.
    let big = format!(
        "{{\"note\": \"{}\",{}\"n\": 1}}",
        "é".repeat(10_000),
        " ".repeat(300_000)
    );
    std::fs::write(cwd.join("meta.json"), &big).unwrap();
    let put = one(&ok(&run(
        target,
        cwd,
        &["put", "a/1", "blob.bin", "--meta", "@meta.json"],
    )));
    assert_eq!(
        put["meta"]["note"].as_str().unwrap().chars().count(),
        10_000
    );
    let put2 = one(&ok(&run_with_stdin(
        target,
        cwd,
        &["put", "a/2", "blob.bin", "--meta", "@-"],
        br#"{"from": "stdin"}"#,
    )));
    assert_eq!(put2["meta"], serde_json::json!({"from": "stdin"}));
    let refused = run_with_stdin(target, cwd, &["put", "a/3", "-", "--meta", "@-"], b"{}");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error[invalid_argument]"));
    let missing = run(
        target,
        cwd,
        &["put", "a/3", "blob.bin", "--meta", "@nope.json"],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("error[io_error]"));

    // meta set replaces the metadata and keeps the bytes.
    let version = put["version"].as_u64().unwrap();
    let set = one(&ok(&run(
        target,
        cwd,
        &["meta", "set", "a/1", r#"{"kind":"CT"}"#],
    )));
    assert_eq!(set["meta"], serde_json::json!({"kind": "CT"}));
    assert_eq!(set["sha256"], put["sha256"]);
    let current = set["version"].as_u64().unwrap();
    assert!(current > version);
    let stale = run(
        target,
        cwd,
        &[
            "meta",
            "set",
            "a/1",
            "{}",
            "--if-version",
            &version.to_string(),
        ],
    );
    assert!(String::from_utf8_lossy(&stale.stderr).contains("error[precondition_failed]"));
    let set = one(&ok(&run_with_stdin(
        target,
        cwd,
        &[
            "meta",
            "set",
            "a/1",
            "@-",
            "--if-version",
            &current.to_string(),
        ],
        br#"{"kind":"MR"}"#,
    )));
    assert_eq!(set["meta"], serde_json::json!({"kind": "MR"}));
    let head = one(&ok(&run(target, cwd, &["head", "a/1"])));
    assert_eq!(head["meta"], serde_json::json!({"kind": "MR"}));
    let got = run(target, cwd, &["get", "a/1"]);
    assert_eq!(got.stdout, data.to_vec());
    let absent = run(target, cwd, &["meta", "set", "nope", "{}"]);
    assert!(String::from_utf8_lossy(&absent.stderr).contains("error[not_found]"));

    // Listing lines describe objects as the HTTP listing does.
    for i in 3..=6 {
        let meta = format!(r#"{{"i":{i}}}"#);
        ok(&run(
            target,
            cwd,
            &["put", &format!("a/{i}"), "blob.bin", "--meta", &meta],
        ));
    }
    let all = lines(&ok(&run(target, cwd, &["ls", "a/"])));
    assert_eq!(all.len(), 6);
    for field in [
        "key", "size", "sha256", "version", "created", "updated", "meta",
    ] {
        assert!(
            all[0].get(field).is_some(),
            "ls line lacks {field}: {}",
            all[0]
        );
    }
    assert_eq!(all[0]["meta"], serde_json::json!({"kind": "MR"}));

    // Pages: --limit stops early and reports where to go on; --cursor goes on.
    let first = run(target, cwd, &["ls", "a/", "--limit", "4"]);
    assert_eq!(keys(&ok(&first)), ["a/1", "a/2", "a/3", "a/4"]);
    let cursor = next_cursor(&first).expect("a next cursor");
    let rest = run(target, cwd, &["ls", "a/", "--cursor", &cursor]);
    assert_eq!(keys(&ok(&rest)), ["a/5", "a/6"]);
    assert_eq!(next_cursor(&rest), None);
    let exact = run(target, cwd, &["ls", "a/", "--limit", "6"]);
    assert_eq!(keys(&ok(&exact)).len(), 6);
    assert_eq!(next_cursor(&exact), None);

    let filter = r#"{"i": {"$gte": 3}}"#;
    let first = run(target, cwd, &["query", filter, "--limit", "2"]);
    assert_eq!(keys(&ok(&first)), ["a/3", "a/4"]);
    let cursor = next_cursor(&first).expect("a next cursor");
    let rest = run(target, cwd, &["query", filter, "--cursor", &cursor]);
    assert_eq!(keys(&ok(&rest)), ["a/5", "a/6"]);
    let sorted = run(
        target,
        cwd,
        &["query", filter, "--sort", "-i", "--limit", "3"],
    );
    assert_eq!(keys(&ok(&sorted)), ["a/6", "a/5", "a/4"]);
    let cursor = next_cursor(&sorted).expect("a next cursor");
    let rest = run(
        target,
        cwd,
        &["query", filter, "--sort", "-i", "--cursor", &cursor],
    );
    assert_eq!(keys(&ok(&rest)), ["a/3"]);
    let query_line = &lines(&ok(&run(target, cwd, &["query", r#"{"i":3}"#])))[0];
    assert!(query_line.get("created").is_some(), "{query_line}");
}

#[test]
fn metadata_commands_and_paging_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let target = vec![
        "--data".to_string(),
        dir.path().join("data").display().to_string(),
    ];
    scenario(&target, dir.path());
}

#[test]
fn metadata_commands_and_paging_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = common::spawn_server(&dir.path().join("served"), &[]);
    let _server = common::KillOnDrop(child);
    scenario(&["--server".to_string(), url], dir.path());
}

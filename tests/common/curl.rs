//! Running curl from tests. curl is required: a test that needs it fails with a clear message
//! when it is missing instead of passing without checking anything.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// Fails the test unless curl can run.
pub fn require_curl() {
    let found = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "curl is required by this test and is not installed (install it, e.g. `apt-get install curl`)"
    );
}

/// Runs curl over HTTP/1.1 (`--http1.1`, curl's default for `http://` anyway) with `args`.
pub async fn curl(args: &[&str]) -> Output {
    curl_with_stdin(args, None).await
}

/// Runs curl with `args` (after `-sS --max-time 30`, and `--http1.1` unless `args` names
/// another version), its standard input read from `stdin` when given.
pub async fn curl_with_stdin(args: &[&str], stdin: Option<std::path::PathBuf>) -> Output {
    require_curl();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new("curl");
        command.args(["-sS", "--max-time", "30"]);
        if !args.iter().any(|a| a.starts_with("--http")) {
            command.arg("--http1.1");
        }
        command.args(args);
        match stdin {
            Some(path) => command.stdin(std::fs::File::open(path).unwrap()),
            None => command.stdin(Stdio::null()),
        };
        command.output().unwrap()
    })
    .await
    .unwrap()
}

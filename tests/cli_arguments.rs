//! How the command line reads its arguments and environment: empty variables count as unset,
//! hyphen values parse, contradictory targets are refused, and help says what is checked.
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

use common::success_stdout as ok;
use common::{pattern, MIB};

fn asterope(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_asterope"));
    command.current_dir(cwd).args(args);
    for name in [
        "ASTEROPE_DATA",
        "ASTEROPE_URL",
        "ASTEROPE_TOKEN",
        "ASTEROPE_CA_CERT",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn refused(output: &Output, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("error[{code}]")), "{stderr}");
    stderr
}

/// An address nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("in.bin"), b"hello").unwrap();
    let empty = [
        ("ASTEROPE_DATA", ""),
        ("ASTEROPE_URL", ""),
        ("ASTEROPE_TOKEN", ""),
        ("ASTEROPE_CA_CERT", ""),
    ];
    ok(&asterope(
        cwd,
        &empty,
        &["--data", "given", "put", "k", "in.bin"],
    ));
    assert!(ok(&asterope(cwd, &empty, &["--data", "given", "ls"])).contains("\"k\""));
    // Without the flag the default directory is used.
    ok(&asterope(cwd, &empty, &["put", "d", "in.bin"]));
    assert!(cwd.join("asterope-data").is_dir());
    assert!(ok(&asterope(cwd, &empty, &["ls"])).contains("\"d\""));
}

#[test]
fn range_suffix_parses_as_a_separate_argument() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let data = pattern(5, 1000);
    std::fs::write(cwd.join("in.bin"), &data).unwrap();
    ok(&asterope(cwd, &[], &["put", "k", "in.bin"]));
    for args in [
        &["get", "k", "--range", "-5"][..],
        &["get", "k", "--range=-5"],
    ] {
        let out = asterope(cwd, &[], args);
        assert!(out.status.success(), "{args:?}");
        assert_eq!(&out.stdout[..], &data[995..], "{args:?}");
    }
}

#[test]
fn server_and_data_directory_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let url = closed_port_url();
    // Both on the command line, or both from the environment: ambiguous.
    let stderr = refused(
        &asterope(cwd, &[], &["--server", &url, "--data", "d", "ls"]),
        "invalid_argument",
    );
    assert!(stderr.contains("--data"), "{stderr}");
    refused(
        &asterope(
            cwd,
            &[("ASTEROPE_URL", &url), ("ASTEROPE_DATA", "d")],
            &["ls"],
        ),
        "invalid_argument",
    );
    refused(
        &asterope(cwd, &[], &["--server", &url, "serve"]),
        "invalid_argument",
    );
    // A flag beats the other one's environment variable: `--data` reads the directory...
    drop(asterope::Database::open(cwd.join("d")).unwrap());
    ok(&asterope(
        cwd,
        &[("ASTEROPE_URL", &url)],
        &["--data", "d", "ls"],
    ));
    // ... and `--server` goes to the server (here: nothing listens).
    refused(
        &asterope(cwd, &[("ASTEROPE_DATA", "d")], &["--server", &url, "ls"]),
        "io_error",
    );
    assert!(!cwd.join("asterope-data").exists());
}

#[test]
fn server_url_with_a_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = closed_port_url();
    for url in [format!("{base}/asterope"), format!("{base}/?x=1")] {
        let stderr = refused(
            &asterope(dir.path(), &[], &["--server", &url, "ls"]),
            "invalid_argument",
        );
        assert!(stderr.contains("path"), "{stderr}");
    }
    // A bare trailing slash is the root.
    refused(
        &asterope(dir.path(), &[], &["--server", &format!("{base}/"), "ls"]),
        "io_error",
    );
}

#[test]
fn get_help_names_the_checks_it_makes() {
    let dir = tempfile::tempdir().unwrap();
    let help = ok(&asterope(dir.path(), &[], &["get", "--help"]));
    assert!(help.contains("CRC-32"), "{help}");
    assert!(help.contains("SHA-256"), "{help}");
    assert!(!help.contains("verifying its SHA-256"), "{help}");
}

#[test]
fn explain_with_a_prefix_names_the_prefix_scan() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("in.bin"), b"x").unwrap();
    ok(&asterope(
        cwd,
        &[],
        &["put", "a/1", "in.bin", "--meta", r#"{"n":1}"#],
    ));
    let plan = ok(&asterope(
        cwd,
        &[],
        &["query", r#"{"n":1}"#, "--prefix", "a/", "--explain"],
    ));
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["access"], "scan");
    let detail = plan["detail"].as_str().unwrap();
    assert!(
        detail.contains("prefix") && detail.contains("a/"),
        "{detail}"
    );
    let plan = ok(&asterope(cwd, &[], &["query", r#"{"n":1}"#, "--explain"]));
    assert!(plan.contains("full scan"), "{plan}");
}

/// A ranged read over the network is checked too: the client cannot hash a range, so it lets
/// the server check the blocks' CRC-32 instead of turning every check off.
#[test]
fn ranged_network_read_of_a_damaged_blob_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let served = cwd.join("served");
    let data = pattern(9, MIB);
    std::fs::write(cwd.join("in.bin"), &data).unwrap();
    ok(&asterope(
        cwd,
        &[],
        &["--data", served.to_str().unwrap(), "put", "k", "in.bin"],
    ));
    let extent = served.join("extents/00000000.ext");
    let mut bytes = std::fs::read(&extent).unwrap();
    let at = bytes.windows(64).position(|w| w == &data[..64]).unwrap();
    bytes[at + 100] ^= 1;
    std::fs::write(&extent, &bytes).unwrap();
    let (child, url) = common::spawn_server(&served, &["--compaction-interval", "0"]);
    let _server = common::KillOnDrop(child);
    let out = asterope(
        cwd,
        &[],
        &["--server", &url, "get", "k", "--range", "0-999"],
    );
    assert!(!out.status.success(), "damaged range read succeeded");
    assert_ne!(&out.stdout[..], &data[..1000]);
    // With --no-verify the bytes come as stored.
    let out = asterope(
        cwd,
        &[],
        &[
            "--server",
            &url,
            "get",
            "k",
            "--range",
            "0-999",
            "--no-verify",
        ],
    );
    assert_eq!(out.stdout.len(), 1000);
}

/// Commands that only read never create a store where `--data` points: a mistyped path is an
/// error and leaves nothing behind.
#[test]
fn reading_commands_do_not_create_a_store_at_a_mistyped_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    for args in [
        vec!["ls"],
        vec!["stats"],
        vec!["get", "k"],
        vec!["head", "k"],
        vec!["query", "{}"],
        vec!["verify", "--all"],
        vec!["index", "ls"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_asterope"))
            .arg("--data")
            .arg(&missing)
            .args(&args)
            .env_remove("ASTEROPE_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no data directory"), "{args:?}: {stderr}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[test]
fn the_metadata_cache_size_is_an_option_of_every_command_that_opens_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("in.bin"), b"small cache").unwrap();
    let cache = ["--cache-size", "1048576"];
    ok(&asterope(
        cwd,
        &[],
        &[&cache[..], &["put", "k", "in.bin"]].concat(),
    ));
    let got = ok(&asterope(
        cwd,
        &[("ASTEROPE_CACHE_SIZE", "2097152")],
        &["get", "k"],
    ));
    assert_eq!(got, "small cache");
    let help = ok(&asterope(cwd, &[], &["serve", "--help"]));
    assert!(help.contains("--cache-size <BYTES>"), "{help}");
    let refused = asterope(cwd, &[], &["--cache-size", "lots", "ls"]);
    assert_eq!(refused.status.code(), Some(2));
}

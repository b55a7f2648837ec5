//! Helpers shared by the integration tests: deterministic test data, streams, digests.
#![allow(dead_code)]

mod data;

use asterope::Database;

// Not every test uses the data helpers.
#[allow(unused_imports)]
pub use data::*;

/// A database with small (1 MiB) extents, so that modest blobs span several of them.
pub fn small_extent_db(dir: &std::path::Path) -> Database {
    Database::builder(dir)
        .extent_size(1 << 20)
        .open()
        .expect("open database")
}

/// A server configuration with TLS by a self-signed certificate for `localhost`, written with
/// its key under `dir`; returns the configuration and the certificate's path (a client's root).
pub fn self_signed_tls(dir: &std::path::Path) -> (asterope::ServerConfig, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let config = asterope::ServerConfig {
        tls: Some(asterope_network::load_tls_config(&cert, &key).unwrap()),
        ..asterope::ServerConfig::default()
    };
    (config, cert)
}

/// The standard output of a command that must have succeeded (else its stderr is shown).
pub fn success_stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// A child process (a server) killed and reaped when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `asterope [global args] --data DIR serve --listen 127.0.0.1:0` as a child process and
/// returns it with the URL it printed.
pub fn spawn_server(dir: &std::path::Path, global_args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_asterope"))
        .args(global_args)
        .arg("--data")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start asterope serve");
    let mut banner = String::new();
    let stderr = child.stderr.take().expect("piped stderr");
    BufReader::new(stderr)
        .read_line(&mut banner)
        .expect("read the server banner");
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_string();
    (child, url)
}

//! A full store (capacity limit, and a real full filesystem where user namespaces allow mounting
//! a small tmpfs, also after compaction gave space back to it) refuses the write with
//! `storage_full`, keeps everything already stored, and
//! accepts writes again once space is back.

mod common;

use std::path::Path;
use std::process::Command;

use asterope::{Condition, Database, Key, PutOptions, Store, StoreExt};
use common::{chunked, pattern, sha256, MIB};

#[tokio::test]
async fn capacity_limit_refuses_cleanly_and_recovers() -> asterope::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder(dir.path())
        .extent_size(2 << 20)
        .capacity_limit(Some(6 << 20))
        .open()?;
    let a = Key::new("a")?;
    let b = Key::new("b")?;
    db.put_bytes(&a, pattern(1, MIB), Default::default())
        .await?;
    db.put_bytes(&b, pattern(2, 2 * MIB), Default::default())
        .await?;

    // Known size and unknown size (a stream) both fail with the same code.
    let big = pattern(3, 8 * MIB);
    let sized = PutOptions::default().with_size(big.len() as u64);
    let err = db
        .put(&Key::new("c")?, chunked(big.clone(), MIB), sized)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage_full", "{err}");
    let err = db
        .put(
            &Key::new("c")?,
            chunked(big, 64 * 1024),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage_full", "{err}");
    assert_eq!(
        db.head(&Key::new("c")?).await.unwrap_err().code(),
        "not_found"
    );

    // Nothing already stored was touched, and the failed writes gave their space back.
    assert_eq!(db.get_bytes(&a).await?.1, pattern(1, MIB));
    assert_eq!(db.get_bytes(&b).await?.1, pattern(2, 2 * MIB));
    db.put_bytes(&Key::new("d")?, pattern(4, 2 * MIB), Default::default())
        .await?;
    // Deleting makes room for more.
    db.delete(&b, Condition::default()).await?;
    db.put_bytes(&Key::new("e")?, pattern(5, 2 * MIB), Default::default())
        .await?;
    Ok(())
}

fn user_namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn full_filesystem_gives_storage_full_and_loses_nothing() {
    if !user_namespaces_work() {
        eprintln!("SKIPPED: this machine cannot mount a tmpfs in a user namespace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    let small = dir.path().join("small");
    let huge = dir.path().join("huge");
    std::fs::write(&small, pattern(1, 3 * MIB)).unwrap();
    std::fs::write(&huge, pattern(2, 40 * MIB)).unwrap();
    let small_sha = sha256(&pattern(1, 3 * MIB)).to_hex();
    let bin = env!("CARGO_BIN_EXE_asterope");
    let data = mount.join("data");
    let cli = format!("{bin} --data {} --extent-size 4194304", data.display());
    // Inside a private mount namespace: a 24 MiB tmpfs is the whole disk.
    let script = format!(
        "set -u
        mount -t tmpfs -o size=24m tmpfs {mnt}
        {cli} put a {small} >/dev/null || exit 10
        {cli} put huge {huge} 2>{err}; test $? -ne 0 || exit 11
        {cli} get a | sha256sum | grep -q {small_sha} || exit 12
        {cli} head huge 2>/dev/null && exit 13
        {cli} rm a || exit 14
        {cli} put b {small} >/dev/null || exit 15
        {cli} get b | sha256sum | grep -q {small_sha} || exit 16
        {cli} put c {small} >/dev/null || exit 17
        {cli} rm b || exit 18
        {cli} compact >/dev/null || exit 19
        head -c 64M /dev/zero > {mnt}/filler 2>/dev/null
        {cli} put d {small} 2>{err2}; test $? -ne 0 || exit 20
        {cli} get c | sha256sum | grep -q {small_sha} || exit 21
        rm {mnt}/filler
        {cli} put d {small} >/dev/null || exit 22
        {cli} get d | sha256sum | grep -q {small_sha} || exit 23
        exit 0",
        mnt = mount.display(),
        small = small.display(),
        huge = huge.display(),
        err = dir.path().join("stderr").display(),
        err2 = dir.path().join("stderr-after-holes").display(),
    );
    let status = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    assert!(
        status.success(),
        "step failed: {status:?}; stderr of the full put: {stderr}"
    );
    assert!(
        stderr.contains("error[storage_full]"),
        "full disk not reported as storage_full: {stderr}"
    );
    // Space given back to the filesystem by compaction and taken by another file meanwhile:
    // the next put needs it back and is refused cleanly, at allocation.
    let after_holes =
        std::fs::read_to_string(dir.path().join("stderr-after-holes")).unwrap_or_default();
    assert!(
        after_holes.contains("error[storage_full]"),
        "a full disk after hole punching not reported as storage_full: {after_holes}"
    );
    let _ = Path::new(&data);
}

//! A full store (capacity limit, and a real full filesystem where user namespaces allow mounting
//! a small tmpfs, also after compaction gave space back to it) refuses the write with
//! `storage_full`, keeps everything already stored, and
//! accepts writes again once space is back. Extents grow with the data, so a small disk holds
//! what fits on it whatever the maximum extent size, and growth beyond the disk or the capacity
//! limit fails the allocation, never a write.

mod common;

use std::path::Path;
use std::process::Command;

use asterope::{Condition, Database, Key, ObjectOps, PutOptions, StoreExt};
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

/// Total length of the extent files.
fn extent_file_lengths(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("extents"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test]
async fn capacity_limit_bounds_the_growth_of_extents() -> asterope::Result<()> {
    const LIMIT: u64 = 6 << 20;
    let dir = tempfile::tempdir().unwrap();
    // Extents may grow far beyond the limit; the limit is what stops them.
    let db = Database::builder(dir.path())
        .extent_size(64 << 20)
        .capacity_limit(Some(LIMIT))
        .open()?;
    db.put_bytes(&Key::new("a")?, pattern(1, 100_000), Default::default())
        .await?;
    assert!(
        extent_file_lengths(dir.path()) < LIMIT,
        "grew to the limit at once"
    );
    db.put_bytes(&Key::new("b")?, pattern(2, 2 * MIB), Default::default())
        .await?;
    for chunk in [MIB, 64 * 1024] {
        let err = db
            .put(
                &Key::new("c")?,
                chunked(pattern(3, 5 * MIB), chunk),
                PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "storage_full", "{err}");
        assert!(extent_file_lengths(dir.path()) <= LIMIT);
    }
    db.put_bytes(&Key::new("d")?, pattern(4, 3 * MIB), Default::default())
        .await?;
    assert!(extent_file_lengths(dir.path()) <= LIMIT);
    assert_eq!(db.get_bytes(&Key::new("a")?).await?.1, pattern(1, 100_000));
    assert_eq!(db.get_bytes(&Key::new("b")?).await?.1, pattern(2, 2 * MIB));
    assert_eq!(db.get_bytes(&Key::new("d")?).await?.1, pattern(4, 3 * MIB));
    Ok(())
}

fn user_namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs shell `steps` in a private mount namespace where a 24 MiB tmpfs is the whole disk,
/// with `CLI` standing for the command line (`--data` on that disk, then `global_args`),
/// `MNT` for the mount point, `SMALL` and `HUGE` for 3 MiB and 40 MiB files to store,
/// `SMALL_SHA` for the small file's SHA-256 and `ERR` and `ERR2` for files that capture the
/// stderr of refused puts. Asserts that every step passed and that the put whose stderr went
/// to `ERR` was refused with `storage_full`; returns the stderr written to `ERR2`.
/// `None` where this machine cannot mount a tmpfs.
fn on_a_small_disk(global_args: &str, steps: &str) -> Option<String> {
    if !user_namespaces_work() {
        eprintln!("SKIPPED: this machine cannot mount a tmpfs in a user namespace");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    let small = dir.path().join("small");
    let huge = dir.path().join("huge");
    std::fs::write(&small, pattern(1, 3 * MIB)).unwrap();
    std::fs::write(&huge, pattern(2, 40 * MIB)).unwrap();
    let data = mount.join("data");
    let cli = format!(
        "{} --data {} {global_args}",
        env!("CARGO_BIN_EXE_asterope"),
        data.display()
    );
    let (err, err2) = (dir.path().join("stderr"), dir.path().join("stderr2"));
    let script = format!("set -u\nmount -t tmpfs -o size=24m tmpfs MNT\n{steps}\nexit 0")
        .replace("CLI", &cli)
        .replace("MNT", &mount.display().to_string())
        .replace("SMALL_SHA", &sha256(&pattern(1, 3 * MIB)).to_hex())
        .replace("SMALL", &small.display().to_string())
        .replace("HUGE", &huge.display().to_string())
        .replace("ERR2", &err2.display().to_string())
        .replace("ERR", &err.display().to_string());
    let status = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(
        status.success(),
        "step failed: {status:?}; stderr of the full put: {stderr}"
    );
    assert!(
        stderr.contains("error[storage_full]"),
        "full disk not reported as storage_full: {stderr}"
    );
    Some(std::fs::read_to_string(&err2).unwrap_or_default())
}

#[test]
fn full_filesystem_gives_storage_full_and_loses_nothing() {
    let Some(after_holes) = on_a_small_disk(
        "--extent-size 4194304",
        "CLI put a SMALL >/dev/null || exit 10
        CLI put huge HUGE 2>ERR; test $? -ne 0 || exit 11
        CLI get a | sha256sum | grep -q SMALL_SHA || exit 12
        CLI head huge 2>/dev/null && exit 13
        CLI rm a || exit 14
        CLI put b SMALL >/dev/null || exit 15
        CLI get b | sha256sum | grep -q SMALL_SHA || exit 16
        CLI put c SMALL >/dev/null || exit 17
        CLI rm b || exit 18
        CLI compact >/dev/null || exit 19
        head -c 64M /dev/zero > MNT/filler 2>/dev/null
        CLI put d SMALL 2>ERR2; test $? -ne 0 || exit 20
        CLI get c | sha256sum | grep -q SMALL_SHA || exit 21
        rm MNT/filler
        CLI put d SMALL >/dev/null || exit 22
        CLI get d | sha256sum | grep -q SMALL_SHA || exit 23",
    ) else {
        return;
    };
    // Space given back to the filesystem by compaction and taken by another file meanwhile:
    // the next put needs it back and is refused cleanly, at allocation.
    assert!(
        after_holes.contains("error[storage_full]"),
        "a full disk after hole punching not reported as storage_full: {after_holes}"
    );
}

#[test]
fn growing_extents_fill_a_small_disk_then_refuse_cleanly() {
    // The default maximum extent size (1 GiB), far beyond the 24 MiB disk: the extent grows
    // until the disk is full, and the put that finds it full is refused.
    on_a_small_disk(
        "",
        "CLI put a SMALL >/dev/null || exit 10
        CLI put b SMALL >/dev/null || exit 11
        CLI put huge HUGE 2>ERR; test $? -ne 0 || exit 12
        CLI head huge 2>/dev/null && exit 13
        CLI get a | sha256sum | grep -q SMALL_SHA || exit 14
        CLI get b | sha256sum | grep -q SMALL_SHA || exit 15
        CLI put c SMALL >/dev/null || exit 16
        CLI get c | sha256sum | grep -q SMALL_SHA || exit 17",
    );
}

#[test]
fn a_disk_with_less_room_than_a_growth_step_still_takes_small_puts() {
    // 768 KiB left on the disk, less than the 1 MiB the extent would grow by: it grows by what
    // each put needs instead, until even that does not fit.
    on_a_small_disk(
        "",
        "head -c 1000 HUGE > SMALL.part
        CLI put first SMALL.part >/dev/null || exit 10
        head -c $(( $(df -k --output=avail MNT | tail -1) - 768 ))K /dev/zero > MNT/filler
        i=0
        while head -c $(( (i + 1) * 300000 )) HUGE | tail -c 300000 > SMALL.part &&
            CLI put part/$i SMALL.part >/dev/null 2>ERR; do
            i=$((i + 1)); test $i -lt 100 || exit 11
        done
        test $(stat -c %s MNT/data/extents/00000000.ext) -gt 1048576 || exit 12
        CLI get part/0 | cmp -s -n 300000 - HUGE || exit 13",
    );
}

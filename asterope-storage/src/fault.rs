//! Injectable storage faults, for tests only (feature `fault-injection`): make the next
//! positioned writes or data syncs of extent files fail with `EIO`, as a failing disk would.
//!
//! The switches are process-wide; a test that uses them should run in its own test binary.

use std::sync::atomic::{AtomicU64, Ordering};

static FAILING_WRITES: AtomicU64 = AtomicU64::new(0);
static FAILING_SYNCS: AtomicU64 = AtomicU64::new(0);

/// The next `n` positioned writes to extent files fail with `EIO`.
pub fn fail_next_writes(n: u64) {
    FAILING_WRITES.store(n, Ordering::SeqCst);
}

/// The next `n` data syncs of extent files fail with `EIO`.
pub fn fail_next_syncs(n: u64) {
    FAILING_SYNCS.store(n, Ordering::SeqCst);
}

fn take(counter: &AtomicU64) -> std::io::Result<()> {
    let hit = counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if hit {
        Err(std::io::Error::from_raw_os_error(5)) // EIO
    } else {
        Ok(())
    }
}

pub(crate) fn check_write() -> std::io::Result<()> {
    take(&FAILING_WRITES)
}

pub(crate) fn check_sync() -> std::io::Result<()> {
    take(&FAILING_SYNCS)
}

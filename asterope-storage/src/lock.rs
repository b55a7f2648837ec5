//! The exclusive lock on a data directory.
//!
//! Another process holding the lock is refused at once ([`Error::Locked`]). This process
//! holding it is different: a database dropped a moment ago may still be letting go (its last
//! reference can be a background index build finishing its batch, or a compaction pass), so an
//! open that finds the directory held by this same process waits for it, up to
//! [`IN_PROCESS_WAIT`], before answering `locked`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use asterope_core::{Error, Result};
use rustix::fs::{flock, FlockOperation};

/// How long an open waits for a directory this process still holds to be let go.
const IN_PROCESS_WAIT: Duration = Duration::from_secs(5);

/// Directories (canonical paths) this process holds locked.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn held() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds `<dir>/LOCK` locked (advisory `flock`) for as long as it lives. The kernel releases the
/// lock when the process dies, so a killed process never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// `None` only while dropping.
    file: Option<File>,
    dir: PathBuf,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let canonical = dir
            .canonicalize()
            .map_err(|e| Error::io(format!("resolving {}", dir.display()), e))?;
        let deadline = Instant::now() + IN_PROCESS_WAIT;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    held().insert(canonical.clone());
                    return Ok(DirLock {
                        file: Some(file),
                        dir: canonical,
                    });
                }
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    let ours = held().contains(&canonical);
                    if !ours || Instant::now() >= deadline {
                        return Err(Error::Locked {
                            path: dir.display().to_string(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(Error::io(format!("locking {}", path.display()), e.into())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Unlock first, then forget: an opener that sees the directory no longer held by this
        // process finds the lock free.
        drop(self.file.take());
        held().remove(&self.dir);
    }
}

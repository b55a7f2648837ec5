//! The exclusive lock on a data directory.

use std::fs::{File, OpenOptions};
use std::path::Path;

use asterope_core::{Error, Result};
use rustix::fs::{flock, FlockOperation};

/// Holds `<dir>/LOCK` locked (advisory `flock`) for as long as it lives. The kernel releases the
/// lock when the process dies, so a killed process never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
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
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(Error::Locked {
                path: dir.display().to_string(),
            }),
            Err(e) => Err(Error::io(format!("locking {}", path.display()), e.into())),
        }
    }
}

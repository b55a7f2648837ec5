//! Injected storage faults, for tests only (feature `fault-injection`): a [`FaultPlan`] given to
//! [`DatabaseBuilder::fault_plan`](crate::DatabaseBuilder::fault_plan) makes chosen extent and
//! metadata operations of that one database fail with `EIO`, as a failing disk would.
//!
//! The plan wraps the database's real backends ([`crate::backend`]) in [`FaultyExtentIo`] and
//! [`FaultyMetaIo`]: an armed operation fails without reaching the disk; every other one is
//! passed through. Plans are per database, so tests with faults run side by side in one
//! binary. The test keeps a clone of the plan and arms it between operations.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::FallocateFlags;

use crate::backend::{Backends, ExtentIo, MetaIo};

/// An operation a [`FaultPlan`] can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultPoint {
    /// A positioned write to an extent file.
    ExtentWrite,
    /// A data sync of an extent file (or the sync of a newly created one).
    ExtentSync,
    /// Growing, preallocating or punching an extent file (`fallocate`, or `set_len`).
    ExtentAllocate,
    /// A positioned read of an extent file, or the length check made before a mapped read.
    ExtentRead,
    /// An atomic batch applied to the metadata tree (a commit, an index or blob change).
    MetaWrite,
    /// Making applied metadata durable (sled's flush and the syncs after it).
    MetaFlush,
    /// A lookup or a scan step in the metadata tree.
    MetaRead,
}

const POINTS: usize = 7;

impl FaultPoint {
    fn slot(self) -> usize {
        match self {
            FaultPoint::ExtentWrite => 0,
            FaultPoint::ExtentSync => 1,
            FaultPoint::ExtentAllocate => 2,
            FaultPoint::ExtentRead => 3,
            FaultPoint::MetaWrite => 4,
            FaultPoint::MetaFlush => 5,
            FaultPoint::MetaRead => 6,
        }
    }
}

/// Which operations of a database fail next: cheap to clone, clones share the plan.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    armed: Arc<Armed>,
}

#[derive(Debug, Default)]
struct Armed {
    /// Per point: operations still to let through before failing.
    skip: [AtomicU64; POINTS],
    /// Per point: operations to fail once the skipped ones have passed.
    fail: [AtomicU64; POINTS],
    /// Per point: failures injected so far.
    injected: [AtomicU64; POINTS],
}

impl FaultPlan {
    /// A plan that fails nothing until armed.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// The next `n` operations at `point` fail.
    pub fn fail_next(&self, point: FaultPoint, n: u64) {
        self.fail_after(point, 0, n);
    }

    /// After `ok` more operations at `point` succeed, the `n` following ones fail.
    pub fn fail_after(&self, point: FaultPoint, ok: u64, n: u64) {
        let slot = point.slot();
        if let (Some(skip), Some(fail)) = (self.armed.skip.get(slot), self.armed.fail.get(slot)) {
            skip.store(ok, Ordering::SeqCst);
            fail.store(n, Ordering::SeqCst);
        }
    }

    /// Disarms every point: from now on every operation passes.
    pub fn clear(&self) {
        for slot in 0..POINTS {
            if let (Some(skip), Some(fail)) = (self.armed.skip.get(slot), self.armed.fail.get(slot))
            {
                fail.store(0, Ordering::SeqCst);
                skip.store(0, Ordering::SeqCst);
            }
        }
    }

    /// Failures injected at `point` so far.
    pub fn injected(&self, point: FaultPoint) -> u64 {
        self.armed
            .injected
            .get(point.slot())
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }

    /// Failures at `point` armed but not injected yet.
    pub fn pending(&self, point: FaultPoint) -> u64 {
        self.armed
            .fail
            .get(point.slot())
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }

    /// `Err(EIO)` if this operation at `point` is one to fail.
    fn check(&self, point: FaultPoint) -> io::Result<()> {
        let slot = point.slot();
        let (Some(skip), Some(fail), Some(injected)) = (
            self.armed.skip.get(slot),
            self.armed.fail.get(slot),
            self.armed.injected.get(slot),
        ) else {
            return Ok(());
        };
        if fail.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        if skip
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(());
        }
        if fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        Ok(())
    }

    /// `backends` wrapped so that this plan decides which operations fail.
    pub(crate) fn wrap(&self, backends: Backends) -> Backends {
        Backends {
            extents: Arc::new(FaultyExtentIo {
                inner: backends.extents,
                plan: self.clone(),
            }),
            meta: Arc::new(FaultyMetaIo {
                inner: backends.meta,
                plan: self.clone(),
            }),
        }
    }
}

/// An extent backend that fails the operations its plan arms and passes the others on.
#[derive(Debug)]
pub(crate) struct FaultyExtentIo {
    inner: Arc<dyn ExtentIo>,
    plan: FaultPlan,
}

impl ExtentIo for FaultyExtentIo {
    fn write_at(&self, file: &File, data: &[u8], offset: u64) -> io::Result<()> {
        self.plan.check(FaultPoint::ExtentWrite)?;
        self.inner.write_at(file, data, offset)
    }

    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.plan.check(FaultPoint::ExtentRead)?;
        self.inner.read_at(file, buf, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.plan.check(FaultPoint::ExtentSync)?;
        self.inner.sync_data(file)
    }

    fn sync_all(&self, file: &File) -> io::Result<()> {
        self.plan.check(FaultPoint::ExtentSync)?;
        self.inner.sync_all(file)
    }

    fn allocate(
        &self,
        file: &File,
        flags: FallocateFlags,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.plan.check(FaultPoint::ExtentAllocate)?;
        self.inner.allocate(file, flags, offset, len)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.plan.check(FaultPoint::ExtentAllocate)?;
        self.inner.set_len(file, len)
    }

    fn len(&self, file: &File) -> io::Result<u64> {
        self.plan.check(FaultPoint::ExtentRead)?;
        self.inner.len(file)
    }
}

/// A metadata backend that fails the operations its plan arms and passes the others on.
#[derive(Debug)]
pub(crate) struct FaultyMetaIo {
    inner: Arc<dyn MetaIo>,
    plan: FaultPlan,
}

fn sled_io(error: io::Error) -> sled::Error {
    sled::Error::Io(error)
}

impl MetaIo for FaultyMetaIo {
    fn get(&self, tree: &sled::Tree, key: &[u8]) -> sled::Result<Option<sled::IVec>> {
        self.plan.check(FaultPoint::MetaRead).map_err(sled_io)?;
        self.inner.get(tree, key)
    }

    fn next_entry(&self, scan: &mut sled::Iter) -> Option<sled::Result<(sled::IVec, sled::IVec)>> {
        if let Err(e) = self.plan.check(FaultPoint::MetaRead) {
            return Some(Err(sled_io(e)));
        }
        self.inner.next_entry(scan)
    }

    fn apply(&self, tree: &sled::Tree, batch: sled::Batch) -> sled::Result<()> {
        self.plan.check(FaultPoint::MetaWrite).map_err(sled_io)?;
        self.inner.apply(tree, batch)
    }

    fn flush(&self, db: &sled::Db) -> sled::Result<()> {
        self.plan.check(FaultPoint::MetaFlush).map_err(sled_io)?;
        self.inner.flush(db)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.inner.sync_data(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_lets_the_skipped_operations_pass_then_fails_the_armed_ones() {
        let plan = FaultPlan::new();
        assert!(plan.check(FaultPoint::MetaFlush).is_ok(), "unarmed");
        plan.fail_after(FaultPoint::MetaFlush, 2, 1);
        let outcomes: Vec<bool> = (0..4)
            .map(|_| plan.check(FaultPoint::MetaFlush).is_ok())
            .collect();
        assert_eq!(outcomes, [true, true, false, true]);
        assert_eq!(plan.injected(FaultPoint::MetaFlush), 1);
        assert_eq!(plan.pending(FaultPoint::MetaFlush), 0);
        // Points are independent, and a cleared plan fails nothing.
        plan.fail_next(FaultPoint::ExtentWrite, 5);
        assert!(plan.check(FaultPoint::ExtentSync).is_ok());
        assert_eq!(
            plan.check(FaultPoint::ExtentWrite)
                .map_err(|e| e.raw_os_error()),
            Err(Some(5))
        );
        plan.clear();
        assert!(plan.check(FaultPoint::ExtentWrite).is_ok());
        assert_eq!(plan.injected(FaultPoint::ExtentWrite), 1);
    }
}

//! Blob space: the extents, the allocator over them, and the rule that keeps freed space out of
//! reach of writers while a reader may still be streaming it.
//!
//! A reader takes a [`ReadPin`] before it looks up a record and holds it (through every chunk it
//! hands out) until it is done. Space retired by a delete or overwrite at epoch `r`, or by a
//! dropped [`Reservation`] (a staged write rolled back or replaced, an upload that failed), goes
//! back to the allocator only once no pin taken at an epoch `<= r` is alive.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use asterope_core::{Error, Result};

use crate::alloc::{Allocator, MarkError, Run, UNIT};
use crate::extent::{Extent, ExtentId, ExtentSet};
use crate::lock::DirLock;

/// Space handed to one writer smaller than this is not worth taking while a new extent can still
/// be created; fragments are used only when the capacity is exhausted.
const MIN_USEFUL_RUN: u64 = 1 << 20;

#[derive(Debug, Default)]
struct Pins {
    epoch: u64,
    /// Live pins per epoch.
    active: BTreeMap<u64, usize>,
    /// Runs retired at an epoch, waiting for older pins to go.
    pending: Vec<(u64, Vec<Run>)>,
}

/// The blob space of one data directory.
#[derive(Debug)]
pub(crate) struct Space {
    pub(crate) extents: ExtentSet,
    allocator: Mutex<Allocator>,
    pins: Mutex<Pins>,
    extent_size: u64,
    capacity_limit: Option<u64>,
    /// Body bytes buffered by uploads to this directory (see `writer::WRITE_BUDGET_UNITS`).
    write_budget: Arc<tokio::sync::Semaphore>,
    /// Held for as long as the extents can be read or written through this value.
    _lock: DirLock,
}

/// Counters of the blob space.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpaceCounters {
    pub(crate) extents: usize,
    pub(crate) total_bytes: u64,
    pub(crate) free_bytes: u64,
    pub(crate) pending_bytes: u64,
}

impl Space {
    pub(crate) fn new(
        lock: DirLock,
        extents: ExtentSet,
        extent_size: u64,
        capacity_limit: Option<u64>,
    ) -> Space {
        let mut allocator = Allocator::default();
        for extent in extents.all() {
            allocator.add_extent(extent.id, extent.size);
        }
        Space {
            extents,
            allocator: Mutex::new(allocator),
            pins: Mutex::new(Pins::default()),
            extent_size: extent_size / UNIT * UNIT,
            capacity_limit,
            write_budget: Arc::new(tokio::sync::Semaphore::new(
                crate::writer::WRITE_BUDGET_UNITS as usize,
            )),
            _lock: lock,
        }
    }

    /// The upload write budget shared by every writer of this directory.
    pub(crate) fn write_budget(&self) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(&self.write_budget)
    }

    /// Marks committed runs as used (recovery). A run beyond the end of its extent file, or in
    /// an extent file that is gone, means the file was truncated or removed under the store:
    /// the extent is taken to be as long as its runs say (a missing file is recreated empty),
    /// so the directory still opens; reads of the lost bytes then fail with `io_error`, and
    /// `verify` names the objects. Runs overlapping each other are refused.
    pub(crate) fn mark_used(&self, runs: &[Run]) -> std::result::Result<(), String> {
        let mut allocator = self.allocator();
        for run in runs {
            let mut outcome = allocator.mark_used(*run);
            if outcome == Err(MarkError::UnknownExtent) {
                self.extents
                    .recreate_missing(run.extent)
                    .map_err(|e| format!("run {run:?}: {e}"))?;
                tracing::warn!("extent {} is missing: recreated empty", run.extent);
                allocator.add_extent(run.extent, 0);
                outcome = allocator.mark_used(*run);
            }
            if outcome == Err(MarkError::OutOfBounds) && run.offset % UNIT == 0 {
                let end = run.offset.saturating_add(run.allocated());
                tracing::warn!(
                    "extent {} ends before byte {end} of a stored blob: it was truncated",
                    run.extent
                );
                allocator.grow_extent(run.extent, end);
                outcome = allocator.mark_used(*run);
            }
            outcome.map_err(|e| format!("run {run:?} is unusable: {e:?}"))?;
        }
        Ok(())
    }

    /// Hands out space for up to `want` bytes; may return less. Creates a new extent when no
    /// free run is useful and the capacity limit allows.
    pub(crate) fn allocate(&self, want: u64) -> Result<(Run, Arc<Extent>)> {
        let mut allocator = self.allocator();
        let run = match allocator.allocate(want, want.min(MIN_USEFUL_RUN)) {
            Some(run) => run,
            None => match self.room_for_extent(&allocator) {
                Some(size) => {
                    let extent = self.extents.create(size)?;
                    allocator.add_extent(extent.id, extent.size);
                    allocator
                        .allocate(want, UNIT)
                        .ok_or_else(|| Error::internal("new extent has no free space"))?
                }
                None => allocator.allocate(want, UNIT).ok_or_else(|| {
                    let reason = match self.capacity_limit {
                        Some(limit) => format!("the capacity limit of {limit} bytes is reached"),
                        None => "no space left for a new extent".to_string(),
                    };
                    Error::StorageFull { reason }
                })?,
            },
        };
        drop(allocator);
        self.claim(run)
    }

    /// Size and free bytes of each extent.
    pub(crate) fn extent_usage(&self) -> Vec<(ExtentId, u64, u64)> {
        self.allocator().extent_usage()
    }

    /// Stops or resumes allocation from an extent (compaction empties it meanwhile).
    pub(crate) fn set_draining(&self, extent: ExtentId, draining: bool) {
        self.allocator().set_draining(extent, draining);
    }

    /// Extents the allocator hands nothing out from.
    pub(crate) fn draining_extents(&self) -> Vec<ExtentId> {
        self.allocator().draining()
    }

    /// Deletes an extent if nothing in it is in use (nor waiting for readers).
    pub(crate) fn remove_extent_if_empty(&self, extent: ExtentId) -> Result<bool> {
        if !self.allocator().remove_extent_if_empty(extent) {
            return Ok(false);
        }
        self.extents.remove(extent)?;
        Ok(true)
    }

    /// Punches holes over free runs of at least `min_len` bytes, giving their disk blocks back.
    /// Each run is taken from the allocator while it is punched, so no writer can get it
    /// meanwhile.
    pub(crate) fn punch_free_space(&self, min_len: u64) -> Result<()> {
        for extent in self.extents.all() {
            let runs = self.allocator().free_runs(extent.id);
            for run in runs.into_iter().filter(|run| run.len >= min_len) {
                if self.allocator().mark_used(run).is_err() {
                    continue; // handed out since the listing
                }
                let punched = extent.punch_hole(run.offset, run.len);
                self.free(&[run]);
                if !punched? {
                    return Ok(()); // the filesystem cannot punch holes
                }
            }
        }
        Ok(())
    }

    /// Bytes of disk the extent files occupy.
    pub(crate) fn disk_bytes(&self) -> Result<u64> {
        self.extents
            .all()
            .iter()
            .map(|extent| extent.disk_bytes())
            .sum()
    }

    /// Hands out up to `want` bytes from existing extents only (compaction never grows the
    /// store).
    pub(crate) fn allocate_existing(&self, want: u64) -> Result<(Run, Arc<Extent>)> {
        let run = self
            .allocator()
            .allocate(want, UNIT)
            .ok_or_else(|| Error::StorageFull {
                reason: "no free space in other extents to compact into".into(),
            })?;
        self.claim(run)
    }

    /// The extent of a freshly allocated run, with disk blocks behind the run; on failure the
    /// run goes back to the allocator.
    fn claim(&self, run: Run) -> Result<(Run, Arc<Extent>)> {
        let extent = self.extents.get(run.extent).and_then(|extent| {
            extent
                .ensure_allocated(run.offset, run.allocated())
                .map(|()| extent)
        });
        match extent {
            Ok(extent) => Ok((run, extent)),
            Err(e) => {
                self.free(&[run]);
                Err(e)
            }
        }
    }

    /// Size of the next extent, if the capacity limit leaves room for one.
    fn room_for_extent(&self, allocator: &Allocator) -> Option<u64> {
        let room = match self.capacity_limit {
            Some(limit) => limit.saturating_sub(allocator.total_bytes()) / UNIT * UNIT,
            None => self.extent_size,
        };
        let size = room.min(self.extent_size);
        (size >= UNIT).then_some(size)
    }

    /// Returns space immediately (never-committed runs).
    pub(crate) fn free(&self, runs: &[Run]) {
        let mut allocator = self.allocator();
        for run in runs {
            allocator.free(*run);
        }
    }

    /// Retires the runs of a blob that committed metadata no longer references. They are freed
    /// now if no reader can still see them, else when the last such reader finishes.
    pub(crate) fn retire(&self, runs: Vec<Run>) {
        let mut pins = self.pins();
        let epoch = pins.epoch;
        pins.epoch += 1;
        if pins
            .active
            .keys()
            .next()
            .is_some_and(|&oldest| oldest <= epoch)
        {
            pins.pending.push((epoch, runs));
        } else {
            drop(pins);
            self.free(&runs);
        }
    }

    /// Pins the current epoch for a reader.
    pub(crate) fn pin(self: &Arc<Self>) -> Arc<ReadPin> {
        let mut pins = self.pins();
        let epoch = pins.epoch;
        *pins.active.entry(epoch).or_insert(0) += 1;
        Arc::new(ReadPin {
            space: Arc::clone(self),
            epoch,
        })
    }

    fn unpin(&self, epoch: u64) {
        let mut pins = self.pins();
        if let Some(count) = pins.active.get_mut(&epoch) {
            *count -= 1;
            if *count == 0 {
                pins.active.remove(&epoch);
            }
        }
        let oldest = pins.active.keys().next().copied().unwrap_or(u64::MAX);
        let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut pins.pending)
            .into_iter()
            .partition(|(retired, _)| *retired < oldest);
        pins.pending = keep;
        drop(pins);
        for (_, runs) in release {
            self.free(&runs);
        }
    }

    pub(crate) fn counters(&self) -> SpaceCounters {
        let pending_bytes = self
            .pins()
            .pending
            .iter()
            .flat_map(|(_, runs)| runs.iter().map(Run::allocated))
            .sum();
        let allocator = self.allocator();
        SpaceCounters {
            extents: allocator.extent_count(),
            total_bytes: allocator.total_bytes(),
            free_bytes: allocator.free_bytes(),
            pending_bytes,
        }
    }

    fn allocator(&self) -> MutexGuard<'_, Allocator> {
        // Allocator methods never panic midway, so a poisoned lock still guards a consistent map.
        self.allocator.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pins(&self) -> MutexGuard<'_, Pins> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps the space visible to one reader from being reused while it lives.
#[derive(Debug)]
pub(crate) struct ReadPin {
    space: Arc<Space>,
    epoch: u64,
}

impl Drop for ReadPin {
    fn drop(&mut self) {
        self.space.unpin(self.epoch);
    }
}

/// Space written for a blob that has not been committed yet: retired on drop unless kept.
/// Retired, not freed: a staged write is readable by its transaction, so a reader may still be
/// streaming it when the transaction rolls back, re-stages the key or expires.
#[derive(Debug)]
pub(crate) struct Reservation {
    space: Arc<Space>,
    runs: Vec<Run>,
}

impl Reservation {
    pub(crate) fn new(space: Arc<Space>) -> Reservation {
        Reservation {
            space,
            runs: Vec::new(),
        }
    }

    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }

    pub(crate) fn runs_mut(&mut self) -> &mut Vec<Run> {
        &mut self.runs
    }

    /// The runs now belong to a committed record (or must stay used): stop guarding them.
    pub(crate) fn keep(mut self) -> Vec<Run> {
        std::mem::take(&mut self.runs)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.runs.is_empty() {
            self.space.retire(std::mem::take(&mut self.runs));
        }
    }
}

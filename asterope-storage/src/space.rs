//! Blob space: the extents, the allocator over them, and the rule that keeps freed space out of
//! reach of writers while a reader may still be streaming it.
//!
//! A reader takes a [`ReadPin`] before it looks up a record and holds it (through every chunk it
//! hands out) until it is done. Space retired by a delete or overwrite at epoch `r`, or by a
//! dropped [`Reservation`] (a staged write rolled back or replaced, an upload that failed), goes
//! back to the allocator only once no pin taken at an epoch `<= r` is alive.
//!
//! Extents grow with what is written: the allocator knows each extent up to the length its
//! file has been grown to, all of it backed by disk blocks. When no free run is useful, the
//! newest extent with room is grown at its end (by a step that doubles with the file, from
//! [`FIRST_LENGTH`] up to [`MAX_GROWTH_STEP`]) before any of the new space is handed out, and
//! only when none can grow is a new extent created at [`FIRST_LENGTH`]. So the disk holds what
//! is stored plus at most one step, and a full disk or the capacity limit (the total length of
//! the extent files) fails an allocation, never a write. Freed runs of 1 MiB or more give their
//! disk blocks back at once (a punched hole, allocated again before reuse), so deleted,
//! overwritten and deduplicated large blobs stop taking disk without waiting for compaction.
//!
//! The space also owns the directory's write budget ([`WRITE_BUDGET_UNITS`] of
//! [`WRITE_BUDGET_UNIT`] bytes): the writer takes units for the body bytes it buffers, so all
//! uploads together never buffer more.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use asterope_core::{Error, Result};

use crate::alloc::{round_up, Allocator, MarkError, Run, UNIT};
use crate::extent::{Extent, ExtentId, ExtentSet};
use crate::lock::DirLock;

/// Space handed to one writer smaller than this is not worth taking while a new extent can still
/// be created; fragments are used only when the capacity is exhausted.
const MIN_USEFUL_RUN: u64 = 1 << 20;
/// Freed runs at least this large give their disk blocks back at once (see [`Space::free`]).
const GIVE_BACK_FROM: u64 = 1 << 20;
/// Length of a new extent file, and the smallest step an extent grows by.
const FIRST_LENGTH: u64 = 1 << 20;
/// The largest step an extent grows by: the most disk a data directory holds beyond its blobs
/// (plus what compaction has not given back yet).
const MAX_GROWTH_STEP: u64 = 16 << 20;

#[derive(Debug, Default)]
struct Pins {
    epoch: u64,
    /// Live pins per epoch.
    active: BTreeMap<u64, usize>,
    /// Runs retired at an epoch, waiting for older pins to go.
    pending: Vec<(u64, Vec<Run>)>,
}

/// Granularity of the write budget.
pub(crate) const WRITE_BUDGET_UNIT: usize = 64 * 1024;
/// Body bytes buffered for writing and hashing across all uploads to one data directory, in units:
/// the bound that keeps memory flat under many concurrent uploads (each one alone could buffer a
/// few pieces); a full budget makes uploads wait, which HTTP/2 flow control passes back to the
/// clients.
pub(crate) const WRITE_BUDGET_UNITS: u32 = 512; // 32 MiB

/// The blob space of one data directory.
#[derive(Debug)]
pub(crate) struct Space {
    pub(crate) extents: ExtentSet,
    allocator: Mutex<Allocator>,
    pins: Mutex<Pins>,
    extent_size: u64,
    capacity_limit: Option<u64>,
    /// Body bytes buffered by uploads to this directory (see [`WRITE_BUDGET_UNITS`]).
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
    /// The space of `extents`, each known to the allocator up to its file's length; new extents
    /// may grow to `extent_size`.
    pub(crate) fn new(
        lock: DirLock,
        extents: ExtentSet,
        extent_size: u64,
        capacity_limit: Option<u64>,
    ) -> Result<Space> {
        let mut allocator = Allocator::default();
        for extent in extents.all() {
            allocator.add_extent(extent.id, extent.file_len()?);
        }
        Ok(Space {
            extents,
            allocator: Mutex::new(allocator),
            pins: Mutex::new(Pins::default()),
            extent_size: extent_size / UNIT * UNIT,
            capacity_limit,
            write_budget: Arc::new(tokio::sync::Semaphore::new(WRITE_BUDGET_UNITS as usize)),
            _lock: lock,
        })
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
                if let Ok(extent) = self.extents.get(run.extent) {
                    // The allocator now knows bytes the file lacks: allocate before use.
                    extent.mark_sparse();
                    extent.raise_max_size(end);
                }
                outcome = allocator.mark_used(*run);
            }
            outcome.map_err(|e| format!("run {run:?} is unusable: {e:?}"))?;
        }
        Ok(())
    }

    /// Hands out space for up to `want` bytes; may return less. Grows an extent, or creates a
    /// new one, when no free run is useful and the capacity limit allows.
    pub(crate) fn allocate(&self, want: u64) -> Result<(Run, Arc<Extent>)> {
        self.allocate_with(want, want.min(MIN_USEFUL_RUN), true)
    }

    /// Hands out up to `want` bytes from existing extents only, growing them if need be
    /// (compaction never adds an extent).
    pub(crate) fn allocate_existing(&self, want: u64) -> Result<(Run, Arc<Extent>)> {
        self.allocate_with(want, UNIT, false)
    }

    /// Free runs of at least `min_useful` bytes first, then the space of a grown extent, then
    /// (if `may_create`) a new extent, and last any free fragment.
    fn allocate_with(
        &self,
        want: u64,
        min_useful: u64,
        may_create: bool,
    ) -> Result<(Run, Arc<Extent>)> {
        let mut allocator = self.allocator();
        let mut run = allocator.allocate(want, min_useful);
        let mut failure = None;
        if run.is_none() {
            match self.grow_an_extent(&mut allocator, want, may_create) {
                Ok(true) => run = allocator.allocate(want, UNIT),
                Ok(false) => {}
                Err(e) => failure = Some(e),
            }
        }
        let run = match run.or_else(|| allocator.allocate(want, UNIT)) {
            Some(run) => run,
            None => {
                return Err(failure.unwrap_or_else(|| {
                    let reason = match (self.capacity_limit, may_create) {
                        (_, false) => "no free space in other extents to compact into".into(),
                        (Some(limit), true) => {
                            format!("the capacity limit of {limit} bytes is reached")
                        }
                        (None, true) => "no space left for a new extent".to_string(),
                    };
                    Error::StorageFull { reason }
                }))
            }
        };
        drop(allocator);
        self.claim(run)
    }

    /// Grows the newest extent that has room, or else (if `may_create`) creates one, so that
    /// the allocator has a free run at least the size of a growth step. Returns `false` when
    /// the extents are at their maximum and the capacity limit leaves no room.
    fn grow_an_extent(
        &self,
        allocator: &mut Allocator,
        want: u64,
        may_create: bool,
    ) -> Result<bool> {
        let draining = allocator.draining();
        let room = self.capacity_room(allocator);
        for (id, len, _) in allocator.extent_usage().into_iter().rev() {
            if draining.contains(&id) {
                continue;
            }
            let extent = self.extents.get(id)?;
            let by = growth_step(len, want)
                .min(extent.max_size().saturating_sub(len))
                .min(room)
                / UNIT
                * UNIT;
            if by == 0 {
                continue;
            }
            let by = or_just_the_request(by, want, |by| extent.grow(len, len + by))?.1;
            allocator.grow_extent(id, len + by);
            return Ok(true);
        }
        let first = growth_step(0, want).min(self.extent_size).min(room) / UNIT * UNIT;
        if !may_create || first == 0 {
            return Ok(false);
        }
        let (extent, first) = or_just_the_request(first, want, |len| self.extents.create(len))?;
        allocator.add_extent(extent.id, first);
        Ok(true)
    }

    /// Bytes the extent files may still grow by under the capacity limit.
    fn capacity_room(&self, allocator: &Allocator) -> u64 {
        self.capacity_limit.map_or(u64::MAX, |limit| {
            limit.saturating_sub(allocator.total_bytes())
        })
    }

    /// Bytes the extents other than `except` (and those being drained) may still grow by.
    pub(crate) fn growth_room_except(&self, except: ExtentId) -> u64 {
        let allocator = self.allocator();
        let draining = allocator.draining();
        let growable: u64 = allocator
            .extent_usage()
            .into_iter()
            .filter(|(id, _, _)| *id != except && !draining.contains(id))
            .filter_map(|(id, len, _)| {
                let extent = self.extents.get(id).ok()?;
                Some(extent.max_size().saturating_sub(len) / UNIT * UNIT)
            })
            .sum();
        growable.min(self.capacity_room(&allocator))
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
                self.return_to_allocator(&[run]);
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
                self.return_to_allocator(&[run]);
                Err(e)
            }
        }
    }

    /// Returns space immediately (never-committed runs, and retired runs once no reader can
    /// see them). Runs of [`GIVE_BACK_FROM`] bytes or more first give their disk blocks back to
    /// the filesystem (a punched hole), so that a deleted, overwritten or deduplicated large
    /// blob stops taking disk at once, without waiting for a compaction that short-lived
    /// processes never run; the space is allocated again before it is handed out.
    pub(crate) fn free(&self, runs: &[Run]) {
        for run in runs.iter().filter(|run| run.allocated() >= GIVE_BACK_FROM) {
            let punched = self
                .extents
                .get(run.extent)
                .and_then(|extent| extent.punch_hole(run.offset, run.allocated()));
            if let Err(e) = punched {
                // The space stays allocated on disk; it is free all the same.
                tracing::warn!("giving back the disk blocks of {run:?}: {e}");
            }
        }
        self.return_to_allocator(runs);
    }

    /// Makes runs allocatable again.
    fn return_to_allocator(&self, runs: &[Run]) {
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

/// How much an extent of `len` bytes grows by to serve a request for `want` bytes: as much as it
/// has (doubling it), at least [`FIRST_LENGTH`], at most [`MAX_GROWTH_STEP`], and the request
/// itself when that is larger and within the step.
fn growth_step(len: u64, want: u64) -> u64 {
    len.clamp(FIRST_LENGTH, MAX_GROWTH_STEP)
        .max(round_up(want).min(MAX_GROWTH_STEP))
}

/// Runs `attempt` with `len` bytes; if the disk is too full for that many, with only the bytes
/// `want` needs (a nearly full disk still takes what fits). Returns the outcome and the length
/// that succeeded.
fn or_just_the_request<T>(
    len: u64,
    want: u64,
    attempt: impl Fn(u64) -> Result<T>,
) -> Result<(T, u64)> {
    match attempt(len) {
        Err(Error::StorageFull { .. }) if round_up(want.max(1)) < len => {
            let len = round_up(want.max(1));
            attempt(len).map(|done| (done, len))
        }
        outcome => outcome.map(|done| (done, len)),
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

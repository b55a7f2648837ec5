//! Online compaction: moving live blobs out of sparse extents, deleting extents left empty, and
//! giving free ranges back to the filesystem.
//!
//! An extent is evacuated when the free space of the other extents can take its live bytes.
//! While it drains, the allocator hands out nothing from it. Blobs in it are copied (under a
//! read pin, so bytes freed meanwhile cannot be reused under the copy) into free space of other
//! extents, made durable, and switched over by rewriting their blob entries in one metadata
//! batch, provided the entry still has the runs that were copied; a blob deleted or moved
//! meanwhile keeps what it has and the copy is freed. The old runs are then retired like any
//! overwritten blob's: readers streaming them keep them until they finish, so no blob is ever
//! unreadable. A crash at any point leaves each blob entry naming either its old runs or its new
//! ones, both durable; the space of the other is free again on open.
//!
//! Compaction sees the database only through [`Compaction`]: the metadata store (blob
//! entries), the space, and the commit lock a switch holds so that no commit changes an entry
//! between the check and the apply.

use std::sync::{Arc, Weak};
use std::time::Duration;

use asterope_core::{CompactionReport, Error, Result};

use crate::alloc::Run;
use crate::blob::{BlobEntry, BlobId};
use crate::engine::{CommitLock, Engine};
use crate::extent::{Extent, ExtentId};
use crate::keys::{blob_id_of, blob_key, BLOB_PREFIX};
use crate::meta::{BatchOp, MetaStore};
use crate::space::{Reservation, Space};

/// An extent is worth evacuating when at most this share of it is in use.
const SPARSE_PERCENT: u64 = 50;
/// Live bytes copied between two metadata commits.
const MOVE_BATCH_BYTES: u64 = 64 << 20;
/// Bytes copied per positioned read and write while moving a run.
const COPY_PIECE: u64 = 4 << 20;
/// Free runs shorter than this are not worth a hole.
const MIN_HOLE: u64 = 64 << 10;

/// When and how much background compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionSchedule {
    /// Time between passes.
    pub interval: Duration,
    /// Live bytes one pass may move at most (deleting empty extents and punching holes in free
    /// ranges cost no copying and are not limited).
    pub budget_bytes: u64,
}

impl Default for CompactionSchedule {
    fn default() -> Self {
        CompactionSchedule {
            interval: Duration::from_secs(60),
            budget_bytes: 256 << 20,
        }
    }
}

/// One blob's copy, waiting to be switched over.
struct Move {
    id: BlobId,
    /// The runs the copy was made from: the switch happens only if the entry still has them.
    from: Vec<Run>,
    /// The entry's runs after the switch.
    to: Vec<Run>,
    /// The new space, freed if the switch does not happen.
    reservation: Reservation,
}

/// One compaction pass moving at most `budget` live bytes (one pass at a time).
pub(crate) fn compact(engine: &Engine, budget: u64) -> Result<CompactionReport> {
    let _one_pass = engine
        .compaction_lock
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Compaction {
        meta: &engine.meta,
        space: &engine.space,
        commit_lock: &engine.commit_lock,
    }
    .pass(budget)
}

/// What compaction works on: the blob table, the space, and the commit lock its switches take.
struct Compaction<'a> {
    meta: &'a MetaStore,
    space: &'a Arc<Space>,
    commit_lock: &'a CommitLock,
}

impl Compaction<'_> {
    /// Empties sparse extents (moving at most `budget` live bytes), removes empty ones and
    /// punches holes in free ranges.
    fn pass(&self, budget: u64) -> Result<CompactionReport> {
        let disk_before = self.space.disk_bytes()?;
        let mut report = CompactionReport::default();
        // Extents evacuated by an earlier pass stay draining until the readers of their old
        // bytes finish: remove those that are empty now.
        for extent in self.space.draining_extents() {
            if self.space.remove_extent_if_empty(extent)? {
                report.extents_removed += 1;
            }
        }
        let mut usage = self.space.extent_usage();
        usage.sort_by_key(|&(_, size, free)| size - free);
        for (extent, size, free) in usage {
            let used = size - free;
            if used * 100 > size * SPARSE_PERCENT {
                break; // sorted: every later extent is fuller
            }
            let draining = self.space.draining_extents();
            let free_elsewhere: u64 = self
                .space
                .extent_usage()
                .iter()
                .filter(|(id, _, _)| *id != extent && !draining.contains(id))
                .map(|(_, _, free)| free)
                .sum::<u64>()
                + self.space.growth_room_except(extent);
            if used > 0
                && (used > free_elsewhere || used > budget.saturating_sub(report.moved_bytes))
            {
                continue;
            }
            self.space.set_draining(extent, true);
            match self.evacuate(extent, &mut report) {
                Ok(true) => {}
                Ok(false) => {
                    // Writers took the room meanwhile: what moved stays moved; try later.
                    self.space.set_draining(extent, false);
                    continue;
                }
                Err(e) => {
                    self.space.set_draining(extent, false);
                    return Err(e);
                }
            }
            // Readers still streaming moved bytes keep the extent (draining) until a later pass.
            if self.space.remove_extent_if_empty(extent)? {
                report.extents_removed += 1;
            }
        }
        self.space.punch_free_space(MIN_HOLE)?;
        report.disk_bytes_released = disk_before.saturating_sub(self.space.disk_bytes()?);
        Ok(report)
    }

    /// Moves every blob with bytes in `extent` elsewhere. Returns `false` if the other extents
    /// ran out of room first (concurrent writers may take it); blobs copied by then are moved.
    fn evacuate(&self, extent: ExtentId, report: &mut CompactionReport) -> Result<bool> {
        let mut residents = Vec::new();
        for entry in self.meta.scan_prefix(BLOB_PREFIX) {
            let (tree_key, value) = entry?;
            let blob = BlobEntry::decode(&value)?;
            if blob.layout.runs.iter().any(|run| run.extent == extent) {
                let id =
                    blob_id_of(&tree_key).ok_or_else(|| Error::internal("malformed blob key"))?;
                residents.push(id);
            }
        }
        let mut residents = residents.into_iter().peekable();
        let mut room = true;
        while room && residents.peek().is_some() {
            // The pin keeps runs freed during the copy from being reused under it.
            let pin = self.space.pin();
            let mut moves = Vec::new();
            let mut batch_bytes = 0;
            let mut touched: Vec<Arc<Extent>> = Vec::new();
            while batch_bytes < MOVE_BATCH_BYTES {
                let Some(id) = residents.next() else { break };
                let Some(bytes) = self.meta.get(&blob_key(&id))? else {
                    continue; // deleted since the listing
                };
                let from = BlobEntry::decode(&bytes)?.layout.runs;
                let mut reservation = Reservation::new(Arc::clone(self.space));
                let mut to = Vec::with_capacity(from.len());
                for run in &from {
                    if run.extent != extent {
                        to.push(*run);
                        continue;
                    }
                    match self.copy_run(run, &mut reservation, &mut touched) {
                        Ok(copied) => to.extend(copied),
                        Err(Error::StorageFull { .. }) => {
                            room = false;
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                    batch_bytes += run.len;
                }
                if !room {
                    break; // this blob's partial copy is freed with its reservation
                }
                moves.push(Move {
                    id,
                    from,
                    to,
                    reservation,
                });
            }
            for destination in &touched {
                destination.sync()?;
            }
            self.switch(moves, extent, report)?;
            drop(pin);
        }
        Ok(room)
    }

    /// Copies one run into free space of other extents; returns the new runs.
    fn copy_run(
        &self,
        run: &Run,
        reservation: &mut Reservation,
        touched: &mut Vec<Arc<Extent>>,
    ) -> Result<Vec<Run>> {
        let source = self.space.extents.get(run.extent)?;
        let mut buffer = Vec::new();
        let mut done = 0u64;
        let mut copied = Vec::new();
        while done < run.len {
            let (mut new, destination) = self.space.allocate_existing(run.len - done)?;
            new.len = new.len.min(run.len - done);
            reservation.runs_mut().push(new);
            // Copied in bounded pieces with positioned reads (a truncated source extent is an
            // error here, not a crash).
            let mut at = 0u64;
            while at < new.len {
                let piece = (new.len - at).min(COPY_PIECE);
                buffer.resize(
                    usize::try_from(piece).map_err(|_| Error::internal("piece"))?,
                    0,
                );
                source.read_at(&mut buffer, run.offset + done + at)?;
                destination.write_at(&buffer, new.offset + at)?;
                at += piece;
            }
            if !touched.iter().any(|t| t.id == destination.id) {
                touched.push(destination);
            }
            copied.push(new);
            done += new.len;
        }
        Ok(copied)
    }

    /// Points the moved blobs at their copies in one durable batch, then retires the old runs.
    fn switch(
        &self,
        moves: Vec<Move>,
        extent: ExtentId,
        report: &mut CompactionReport,
    ) -> Result<()> {
        // No commit may change a blob entry between the check below and the apply.
        let commits_paused = self.commit_lock.lock();
        let mut ops: Vec<BatchOp> = Vec::new();
        let mut switched = Vec::new();
        let mut retired = Vec::new();
        for Move {
            id,
            from,
            to,
            reservation,
        } in moves
        {
            let Some(bytes) = self.meta.get(&blob_key(&id))? else {
                continue; // deleted meanwhile: the copy is freed with its reservation
            };
            let mut entry = BlobEntry::decode(&bytes)?;
            if entry.layout.runs != from {
                continue;
            }
            let old: Vec<Run> = from.into_iter().filter(|r| r.extent == extent).collect();
            report.moved_bytes += old.iter().map(|r| r.len).sum::<u64>();
            report.moved_blobs += 1;
            entry.layout.runs = to;
            ops.push((blob_key(&id), Some(entry.encode()?)));
            switched.push(reservation);
            retired.push(old);
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.meta.apply(ops)?;
        drop(commits_paused);
        // Committed entries now name the copies: never free them, even if the flush fails.
        for reservation in switched {
            reservation.keep();
        }
        self.meta.flush()?;
        for runs in retired {
            self.space.retire(runs);
        }
        Ok(())
    }
}

/// Runs a compaction pass every `schedule.interval` for as long as the database is open. The
/// thread holds the database only during a pass.
pub(crate) fn start_background(engine: &Arc<Engine>, schedule: CompactionSchedule) -> Result<()> {
    let weak: Weak<Engine> = Arc::downgrade(engine);
    std::thread::Builder::new()
        .name("compaction".into())
        .spawn(move || loop {
            let step = Duration::from_millis(200);
            let mut waited = Duration::ZERO;
            while waited < schedule.interval {
                std::thread::sleep(step.min(schedule.interval - waited));
                waited += step;
                if weak.strong_count() == 0 {
                    return;
                }
            }
            let Some(engine) = weak.upgrade() else {
                return;
            };
            if let Err(e) = compact(&engine, schedule.budget_bytes) {
                tracing::warn!("background compaction: {e}");
            }
        })
        .map_err(|e| Error::io("starting background compaction", e))?;
    Ok(())
}

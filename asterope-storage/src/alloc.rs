//! The space allocator: which bytes of which extent are free.
//!
//! Space is handed out in units of [`UNIT`] (512) bytes, so small objects pack densely (a
//! 1000-byte object takes 1024 bytes, not a 4 KiB page); requests of at least [`ALIGN_FROM`]
//! bytes start on a page boundary, so the writes and mapped reads of large blobs cover whole
//! pages (the bytes skipped stay free for small objects). Free space is kept twice: per extent by offset
//! (to merge neighbours on free) and globally by size (best fit in `O(log n)`). Nothing here is
//! persisted: on open the free map is rebuilt from the committed records, which is also what
//! reclaims space written by puts that never committed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::extent::ExtentId;

/// Allocation granularity (one disk sector). Runs recorded by versions that allocated whole
/// pages are multiples of it too.
pub(crate) const UNIT: u64 = 512;
/// A memory page: where requests of at least [`ALIGN_FROM`] bytes start.
const PAGE: u64 = 4096;
/// Requests at least this large start on a page boundary.
pub(crate) const ALIGN_FROM: u64 = 1 << 20;

/// Rounds a byte count up to whole units.
pub(crate) fn round_up(len: u64) -> u64 {
    len.div_ceil(UNIT) * UNIT
}

/// A contiguous piece of a blob: `len` bytes at `offset` of extent `extent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) extent: ExtentId,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl Run {
    /// The space the run occupies: its length rounded up to whole units.
    pub(crate) fn allocated(&self) -> u64 {
        round_up(self.len)
    }
}

/// Why [`Allocator::mark_used`] refused a run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MarkError {
    UnknownExtent,
    OutOfBounds,
    Overlap,
}

#[derive(Debug, Default)]
pub(crate) struct Allocator {
    /// Per extent: its size and its free runs (offset -> length).
    extents: BTreeMap<ExtentId, (u64, BTreeMap<u64, u64>)>,
    /// Every free run as (length, extent, offset), except those of draining extents.
    by_size: BTreeSet<(u64, ExtentId, u64)>,
    /// Extents being emptied by compaction: nothing new is allocated in them.
    draining: BTreeSet<ExtentId>,
    total_bytes: u64,
    free_bytes: u64,
}

impl Allocator {
    /// Adds an extent, entirely free.
    pub(crate) fn add_extent(&mut self, id: ExtentId, size: u64) {
        let size = size / UNIT * UNIT;
        self.extents.insert(id, (size, BTreeMap::new()));
        self.total_bytes += size;
        if size > 0 {
            self.insert_free(id, 0, size);
        }
    }

    /// Extends an extent to `size` bytes (no-op if it is that large already), the new space
    /// free: for recovery, when a file turns out shorter than the blobs recorded in it.
    pub(crate) fn grow_extent(&mut self, id: ExtentId, size: u64) {
        let size = round_up(size);
        let Some((current, _)) = self.extents.get_mut(&id) else {
            return;
        };
        let old = *current;
        if size <= old {
            return;
        }
        *current = size;
        self.total_bytes += size - old;
        self.free(Run {
            extent: id,
            offset: old,
            len: size - old,
        });
    }

    /// Total bytes of all extents.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Free bytes.
    pub(crate) fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    /// Number of extents.
    pub(crate) fn extent_count(&self) -> usize {
        self.extents.len()
    }

    /// Size and free bytes of each extent.
    pub(crate) fn extent_usage(&self) -> Vec<(ExtentId, u64, u64)> {
        self.extents
            .iter()
            .map(|(&id, (size, free))| (id, *size, free.values().sum()))
            .collect()
    }

    /// The free runs of one extent.
    pub(crate) fn free_runs(&self, extent: ExtentId) -> Vec<Run> {
        self.extents
            .get(&extent)
            .map_or_else(Vec::new, |(_, free)| {
                free.iter()
                    .map(|(&offset, &len)| Run {
                        extent,
                        offset,
                        len,
                    })
                    .collect()
            })
    }

    /// Extents nothing is allocated from.
    pub(crate) fn draining(&self) -> Vec<ExtentId> {
        self.draining.iter().copied().collect()
    }

    /// Stops (`true`) or resumes (`false`) allocation from an extent.
    pub(crate) fn set_draining(&mut self, extent: ExtentId, draining: bool) {
        let Some((_, free)) = self.extents.get(&extent) else {
            return;
        };
        let runs: Vec<(u64, ExtentId, u64)> = free.iter().map(|(&o, &l)| (l, extent, o)).collect();
        if draining {
            self.draining.insert(extent);
            for run in runs {
                self.by_size.remove(&run);
            }
        } else {
            self.draining.remove(&extent);
            self.by_size.extend(runs);
        }
    }

    /// Removes an extent if nothing in it is used; returns whether it did.
    pub(crate) fn remove_extent_if_empty(&mut self, extent: ExtentId) -> bool {
        let Some((size, free)) = self.extents.get(&extent) else {
            return false;
        };
        let size = *size;
        if free.values().sum::<u64>() != size {
            return false;
        }
        for (offset, len) in free.clone() {
            self.remove_free(extent, offset, len);
        }
        self.extents.remove(&extent);
        self.draining.remove(&extent);
        self.total_bytes -= size;
        true
    }

    /// Hands out up to `want` bytes (rounded up to units): the smallest free run that holds all
    /// of it, or else the largest free run if that is at least `min_useful` bytes. A request of
    /// [`ALIGN_FROM`] bytes or more starts on a page boundary when the run allows.
    pub(crate) fn allocate(&mut self, want: u64, min_useful: u64) -> Option<Run> {
        let want = round_up(want.max(1));
        let align = if want >= ALIGN_FROM { PAGE } else { UNIT };
        let fit = self
            .by_size
            .range((want + (align - UNIT), 0, 0)..)
            .next()
            .copied();
        let needed = if fit.is_some() {
            want
        } else {
            min_useful.max(UNIT)
        };
        let (len, extent, offset) = match fit {
            Some(found) => found,
            None => {
                let largest = self.by_size.last().copied()?;
                if largest.0 < needed {
                    return None;
                }
                largest
            }
        };
        let gap = (align - offset % align) % align;
        // Skip to the page only if the run still holds what it would have served unaligned.
        let target = if len >= want { want } else { needed };
        let gap = if len >= gap + target { gap } else { 0 };
        self.remove_free(extent, offset, len);
        if gap > 0 {
            self.insert_free(extent, offset, gap);
        }
        let (start, available) = (offset + gap, len - gap);
        let take = available.min(want);
        if take < available {
            self.insert_free(extent, start + take, available - take);
        }
        Some(Run {
            extent,
            offset: start,
            len: take,
        })
    }

    /// Returns a run's space, merging it with free neighbours.
    pub(crate) fn free(&mut self, run: Run) {
        let mut offset = run.offset;
        let mut len = run.allocated();
        if len == 0 {
            return;
        }
        let Some((_, free)) = self.extents.get(&run.extent) else {
            return;
        };
        let before = free
            .range(..offset)
            .next_back()
            .map(|(&o, &l)| (o, l))
            .filter(|(o, l)| o + l == offset);
        let after = free.get(&(offset + len)).map(|&l| (offset + len, l));
        if let Some((o, l)) = before {
            self.remove_free(run.extent, o, l);
            offset = o;
            len += l;
        }
        if let Some((o, l)) = after {
            self.remove_free(run.extent, o, l);
            len += l;
        }
        self.insert_free(run.extent, offset, len);
    }

    /// Marks a committed run as used (recovery). Refuses runs outside known extents or overlapping
    /// space already used, which would mean two records claim the same bytes.
    pub(crate) fn mark_used(&mut self, run: Run) -> Result<(), MarkError> {
        let len = run.allocated();
        if len == 0 {
            return Ok(());
        }
        let (size, free) = self
            .extents
            .get(&run.extent)
            .ok_or(MarkError::UnknownExtent)?;
        let end = run.offset.checked_add(len).ok_or(MarkError::OutOfBounds)?;
        if end > *size || run.offset % UNIT != 0 {
            return Err(MarkError::OutOfBounds);
        }
        let (free_offset, free_len) = free
            .range(..=run.offset)
            .next_back()
            .map(|(&o, &l)| (o, l))
            .filter(|(o, l)| o + l >= end)
            .ok_or(MarkError::Overlap)?;
        self.remove_free(run.extent, free_offset, free_len);
        if free_offset < run.offset {
            self.insert_free(run.extent, free_offset, run.offset - free_offset);
        }
        if end < free_offset + free_len {
            self.insert_free(run.extent, end, free_offset + free_len - end);
        }
        Ok(())
    }

    fn insert_free(&mut self, extent: ExtentId, offset: u64, len: u64) {
        if let Some((_, free)) = self.extents.get_mut(&extent) {
            free.insert(offset, len);
            if !self.draining.contains(&extent) {
                self.by_size.insert((len, extent, offset));
            }
            self.free_bytes += len;
        }
    }

    fn remove_free(&mut self, extent: ExtentId, offset: u64, len: u64) {
        if let Some((_, free)) = self.extents.get_mut(&extent) {
            free.remove(&offset);
            self.by_size.remove(&(len, extent, offset));
            self.free_bytes -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(extent: ExtentId, offset: u64, len: u64) -> Run {
        Run {
            extent,
            offset,
            len,
        }
    }

    #[test]
    fn best_fit_split_and_merge() {
        let mut a = Allocator::default();
        a.add_extent(0, 16 * UNIT);
        let x = a.allocate(3 * UNIT, UNIT).unwrap();
        let y = a.allocate(1, UNIT).unwrap();
        assert_eq!(x, run(0, 0, 3 * UNIT));
        assert_eq!(y, run(0, 3 * UNIT, UNIT));
        assert_eq!(a.free_bytes(), 12 * UNIT);
        a.free(x);
        // Best fit picks the 3-unit hole for a 2-unit request, not the 12-unit tail.
        assert_eq!(a.allocate(2 * UNIT, UNIT).unwrap(), run(0, 0, 2 * UNIT));
        a.free(run(0, 0, 2 * UNIT));
        a.free(y);
        assert_eq!(a.free_bytes(), 16 * UNIT);
        // Everything merged back into one run.
        assert_eq!(a.allocate(16 * UNIT, UNIT).unwrap(), run(0, 0, 16 * UNIT));
        assert_eq!(a.allocate(1, UNIT), None);
    }

    #[test]
    fn falls_back_to_largest_only_when_useful() {
        let mut a = Allocator::default();
        a.add_extent(0, 4 * UNIT);
        a.add_extent(1, 8 * UNIT);
        assert_eq!(a.allocate(100 * UNIT, 16 * UNIT), None);
        assert_eq!(
            a.allocate(100 * UNIT, 2 * UNIT).unwrap(),
            run(1, 0, 8 * UNIT)
        );
    }

    #[test]
    fn draining_extents_hand_out_nothing_and_empty_ones_can_go() {
        let mut a = Allocator::default();
        a.add_extent(0, 4 * UNIT);
        a.add_extent(1, 4 * UNIT);
        let used = a.allocate(UNIT, UNIT).unwrap();
        assert_eq!(used.extent, 0);
        a.set_draining(0, true);
        // Only extent 1 serves now, even for a request extent 0 fits best.
        assert_eq!(a.allocate(3 * UNIT, UNIT).unwrap().extent, 1);
        assert_eq!(a.allocate(UNIT, UNIT).unwrap().extent, 1);
        assert_eq!(a.allocate(UNIT, UNIT), None);
        assert!(!a.remove_extent_if_empty(0));
        a.free(used);
        assert!(a.remove_extent_if_empty(0));
        assert_eq!(
            (a.extent_count(), a.total_bytes(), a.free_bytes()),
            (1, 4 * UNIT, 0)
        );
    }

    #[test]
    fn small_requests_pack_and_large_ones_start_on_a_page() {
        let mut a = Allocator::default();
        a.add_extent(0, 4 << 20);
        assert_eq!(a.allocate(1000, UNIT).unwrap(), run(0, 0, 1024));
        assert_eq!(a.allocate(100, UNIT).unwrap(), run(0, 1024, UNIT));
        // The large request skips to the next page; the bytes skipped serve small ones.
        assert_eq!(
            a.allocate(ALIGN_FROM, UNIT).unwrap(),
            run(0, PAGE, ALIGN_FROM)
        );
        assert_eq!(a.allocate(2000, UNIT).unwrap(), run(0, 1536, 2048));
        assert_eq!(a.free_bytes(), (4 << 20) - ALIGN_FROM - 1024 - UNIT - 2048);
        // A large request that only an unaligned run can hold still gets it.
        let mut a = Allocator::default();
        a.add_extent(0, ALIGN_FROM + UNIT);
        a.allocate(1, UNIT).unwrap();
        assert_eq!(
            a.allocate(ALIGN_FROM, UNIT).unwrap(),
            run(0, UNIT, ALIGN_FROM)
        );
    }

    #[test]
    fn mark_used_carves_and_detects_overlap() {
        let mut a = Allocator::default();
        a.add_extent(0, 8 * UNIT);
        assert_eq!(a.mark_used(run(0, 2 * UNIT, 10)), Ok(()));
        assert_eq!(a.free_bytes(), 7 * UNIT);
        assert_eq!(a.mark_used(run(0, 2 * UNIT, 10)), Err(MarkError::Overlap));
        assert_eq!(
            a.mark_used(run(0, 8 * UNIT, 1)),
            Err(MarkError::OutOfBounds)
        );
        assert_eq!(a.mark_used(run(5, 0, 1)), Err(MarkError::UnknownExtent));
        assert_eq!(a.mark_used(run(0, 0, 0)), Ok(()));
    }
}

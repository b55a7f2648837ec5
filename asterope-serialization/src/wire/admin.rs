//! Bodies of the routes that act on the whole store: `GET /v1/stats`, `POST /v1/compact` and
//! `GET /v1/health`.

use asterope_core::{CompactionReport, StoreStats};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The reply of `GET /v1/stats` (and `asterope stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatsReply {
    /// Bytes not stored thanks to content deduplication.
    pub dedup_saved_bytes: u64,
    /// Bytes the extent files occupy on disk.
    pub disk_bytes: u64,
    /// Extent files.
    pub extents: u64,
    /// Extent bytes free for new blobs.
    pub free_bytes: u64,
    /// Bytes of deleted or overwritten blobs waiting for running readers before reuse.
    pub garbage_bytes: u64,
    /// Sum of the sizes of the objects visible now.
    pub logical_bytes: u64,
    /// Objects visible now.
    pub objects: u64,
    /// Bytes of extent space in use; a blob shared by several keys counts once.
    pub physical_bytes: u64,
}

impl From<StoreStats> for StatsReply {
    fn from(stats: StoreStats) -> StatsReply {
        StatsReply {
            dedup_saved_bytes: stats.dedup_saved_bytes,
            disk_bytes: stats.disk_bytes,
            extents: stats.extents,
            free_bytes: stats.free_bytes,
            garbage_bytes: stats.garbage_bytes,
            logical_bytes: stats.logical_bytes,
            objects: stats.objects,
            physical_bytes: stats.physical_bytes,
        }
    }
}

impl From<StatsReply> for StoreStats {
    fn from(reply: StatsReply) -> StoreStats {
        StoreStats {
            objects: reply.objects,
            logical_bytes: reply.logical_bytes,
            physical_bytes: reply.physical_bytes,
            free_bytes: reply.free_bytes,
            disk_bytes: reply.disk_bytes,
            dedup_saved_bytes: reply.dedup_saved_bytes,
            extents: reply.extents,
            garbage_bytes: reply.garbage_bytes,
        }
    }
}

/// The reply of `POST /v1/compact` (and `asterope compact`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompactReply {
    /// Disk space given back to the filesystem.
    pub disk_bytes_released: u64,
    /// Extent files removed.
    pub extents_removed: u64,
    /// Blobs moved.
    pub moved_blobs: u64,
    /// Live bytes moved.
    pub moved_bytes: u64,
}

impl From<CompactionReport> for CompactReply {
    fn from(report: CompactionReport) -> CompactReply {
        CompactReply {
            disk_bytes_released: report.disk_bytes_released,
            extents_removed: report.extents_removed,
            moved_blobs: report.moved_blobs,
            moved_bytes: report.moved_bytes,
        }
    }
}

impl From<CompactReply> for CompactionReport {
    fn from(reply: CompactReply) -> CompactionReport {
        CompactionReport {
            moved_bytes: reply.moved_bytes,
            moved_blobs: reply.moved_blobs,
            extents_removed: reply.extents_removed,
            disk_bytes_released: reply.disk_bytes_released,
        }
    }
}

/// The reply of `GET /v1/health`: `{"status": "ok"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthReply {
    /// Always `ok`.
    pub status: String,
}

impl HealthReply {
    /// The one reply a live server gives.
    pub fn ok() -> HealthReply {
        HealthReply {
            status: "ok".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_keep_the_text_they_always_had() {
        let stats = StoreStats {
            objects: 1,
            logical_bytes: 2,
            physical_bytes: 3,
            free_bytes: 4,
            disk_bytes: 5,
            dedup_saved_bytes: 6,
            extents: 7,
            garbage_bytes: 8,
        };
        let text = serde_json::to_string(&StatsReply::from(stats)).unwrap();
        assert_eq!(text, serde_json::to_value(stats).unwrap().to_string());
        let back: StatsReply = serde_json::from_str(&text).unwrap();
        assert_eq!(StoreStats::from(back), stats);
        let report = CompactionReport {
            moved_bytes: 1,
            moved_blobs: 2,
            extents_removed: 3,
            disk_bytes_released: 4,
        };
        let text = serde_json::to_string(&CompactReply::from(report)).unwrap();
        assert_eq!(text, serde_json::to_value(report).unwrap().to_string());
    }
}

//! The stored versions of an object: MessagePack, behind a format-version byte.

use asterope_core::{Key, Metadata, ObjectInfo, Result, Sha256Digest, Timestamp};
use asterope_serialization::{decode_versioned, encode_versioned};
use serde::{Deserialize, Serialize};

use crate::blob::BlobId;

/// Format version of [`VersionRecord`] encodings.
const RECORD_FORMAT: u8 = 3;

/// One version of one key in the metadata tree.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum VersionRecord {
    /// The object as of this version.
    Object(ObjectRecord),
    /// The key was deleted at this version.
    Tombstone,
}

/// An object's state at one version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ObjectRecord {
    pub(crate) version: u64,
    pub(crate) size: u64,
    pub(crate) sha256: Sha256Digest,
    pub(crate) created: Timestamp,
    pub(crate) updated: Timestamp,
    pub(crate) metadata: Metadata,
    /// The blob holding the bytes (none for an empty object, or while staged in a
    /// transaction).
    pub(crate) blob: Option<BlobId>,
}

impl VersionRecord {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        encode_versioned(RECORD_FORMAT, self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<VersionRecord> {
        decode_versioned(RECORD_FORMAT, bytes, "object record")
    }

    pub(crate) fn object(&self) -> Option<&ObjectRecord> {
        match self {
            VersionRecord::Object(record) => Some(record),
            VersionRecord::Tombstone => None,
        }
    }

    pub(crate) fn into_object(self) -> Option<ObjectRecord> {
        match self {
            VersionRecord::Object(record) => Some(record),
            VersionRecord::Tombstone => None,
        }
    }
}

impl ObjectRecord {
    /// The object's description, consuming the record (no copy of the metadata).
    pub(crate) fn into_info(self, key: Key) -> ObjectInfo {
        ObjectInfo {
            key,
            size: self.size,
            sha256: self.sha256,
            version: self.version,
            created: self.created,
            updated: self.updated,
            metadata: self.metadata,
        }
    }

    pub(crate) fn info(&self, key: Key) -> ObjectInfo {
        self.clone().into_info(key)
    }
}

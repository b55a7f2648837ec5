//! What a caller sees of a stored object, and the option structs of the [`Store`](crate::Store)
//! operations.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::{Error, Key, Metadata, Result, Sha256Digest, Timestamp};

/// The description of one stored object.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: Key,
    /// Blob size in bytes.
    pub size: u64,
    /// SHA-256 of the whole blob.
    pub sha256: Sha256Digest,
    /// Commit version of this state of the object; strictly increases with every write to the
    /// store, so it also orders writes to one key. Never 0 for a stored object.
    pub version: u64,
    /// When the key was first written (kept across overwrites).
    pub created: Timestamp,
    /// When the blob or metadata last changed.
    pub updated: Timestamp,
    /// The metadata document.
    pub metadata: Metadata,
}

/// A byte range of a blob, with HTTP `Range` semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `first..=last` (both inclusive); `last` past the end is clamped, as in HTTP.
    Inclusive {
        /// First byte offset.
        first: u64,
        /// Last byte offset, inclusive.
        last: u64,
    },
    /// From `first` to the end.
    From(u64),
    /// The final `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves against an object size into a half-open range, or [`Error::InvalidRange`] if it
    /// selects no byte of the object. An empty object has no satisfiable range, not even a
    /// suffix: no byte range can describe what such a reply would carry.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let unsatisfiable = |what: String| Error::InvalidRange {
            reason: format!("{what} for an object of {size} bytes"),
        };
        match self {
            ByteRange::Inclusive { first, last } if first > last => Err(Error::InvalidRange {
                reason: format!("range start {first} is after its end {last}"),
            }),
            ByteRange::Inclusive { first, .. } | ByteRange::From(first) if first >= size => {
                Err(unsatisfiable(format!("range starts at {first}")))
            }
            ByteRange::Inclusive { first, last } => Ok(first..last.saturating_add(1).min(size)),
            ByteRange::From(first) => Ok(first..size),
            ByteRange::Suffix(0) => Err(unsatisfiable("empty suffix range".into())),
            ByteRange::Suffix(n) if size == 0 => {
                Err(unsatisfiable(format!("suffix range of {n} bytes")))
            }
            ByteRange::Suffix(n) => Ok(size.saturating_sub(n)..size),
        }
    }

    /// Parses `START-END` (inclusive), `START-` or `-SUFFIX`, the forms of an HTTP byte range.
    /// Positions are ASCII digits only: a sign or a space makes the range unparseable.
    pub fn parse(text: &str) -> Result<ByteRange> {
        let invalid = || Error::InvalidRange {
            reason: format!("cannot parse range {text:?}; expected START-END, START- or -SUFFIX"),
        };
        let (first, last) = text.split_once('-').ok_or_else(invalid)?;
        let number = |s: &str| crate::protocol::parse_decimal(s).ok_or_else(invalid);
        match (first.is_empty(), last.is_empty()) {
            (false, false) => Ok(ByteRange::Inclusive {
                first: number(first)?,
                last: number(last)?,
            }),
            (false, true) => Ok(ByteRange::From(number(first)?)),
            (true, false) => Ok(ByteRange::Suffix(number(last)?)),
            (true, true) => Err(invalid()),
        }
    }
}

/// A version requirement for conditional writes (optimistic concurrency).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// Write only if the current version is this one; `Some(0)` means "only if absent".
    pub if_version: Option<u64>,
}

impl Condition {
    /// Requires the object's current version to be `version` (0: the key must not exist).
    pub fn if_version(version: u64) -> Condition {
        Condition {
            if_version: Some(version),
        }
    }

    /// Checks the requirement against the current version (0 when absent).
    pub fn check(&self, key: &Key, current: u64) -> Result<()> {
        match self.if_version {
            Some(required) if required != current => Err(Error::PreconditionFailed {
                key: key.to_string(),
                required,
                current,
            }),
            _ => Ok(()),
        }
    }
}

/// Options of [`ObjectOps::put`](crate::ObjectOps::put).
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// The metadata document stored with the blob.
    pub metadata: Metadata,
    /// If set, the upload is refused (nothing stored) unless the bytes hash to this.
    pub sha256: Option<Sha256Digest>,
    /// If set, the upload is refused (nothing stored) unless exactly this many bytes arrive.
    /// Also lets the store allocate the blob's space in one piece.
    pub size: Option<u64>,
    /// Optimistic-concurrency requirement.
    pub condition: Condition,
    /// A SHA-256 that arrives only after the body (an HTTP/2 trailer): whatever the slot holds
    /// when the body ends is checked like [`PutOptions::sha256`].
    pub sha256_after_body: Option<Arc<OnceLock<Sha256Digest>>>,
}

impl PutOptions {
    /// Sets the metadata document.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
    /// Requires the body to hash to `sha256`.
    pub fn with_sha256(mut self, sha256: Sha256Digest) -> Self {
        self.sha256 = Some(sha256);
        self
    }
    /// Requires the body to be exactly `size` bytes.
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }
    /// Requires the current version to be `version` (0: key must be absent).
    pub fn with_if_version(mut self, version: u64) -> Self {
        self.condition = Condition::if_version(version);
        self
    }
}

/// Options of [`ObjectOps::get`](crate::ObjectOps::get).
#[derive(Clone, Debug)]
pub struct GetOptions {
    /// Only these bytes.
    pub range: Option<ByteRange>,
    /// Check the bytes as they stream and end the stream with [`Error::Corrupt`] instead of
    /// handing out damaged bytes or ending cleanly. The embedded database checks the CRC-32 of
    /// every 1 MiB block before any byte of it is handed out (ranges included); the network
    /// client checks the SHA-256 of whole-object downloads end to end.
    pub verify: bool,
}

impl Default for GetOptions {
    fn default() -> Self {
        GetOptions {
            range: None,
            verify: true,
        }
    }
}

impl GetOptions {
    /// Reads only `range`.
    pub fn with_range(mut self, range: ByteRange) -> Self {
        self.range = Some(range);
        self
    }
    /// Turns end-of-stream verification on or off (on by default).
    pub fn with_verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }
}

/// Default page size of [`ObjectOps::list`](crate::ObjectOps::list).
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// Largest page size of [`ObjectOps::list`](crate::ObjectOps::list).
pub const MAX_LIST_LIMIT: usize = 10_000;

/// Options of [`ObjectOps::list`](crate::ObjectOps::list).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: String,
    /// Resume after this cursor (the `next` of the previous page).
    pub cursor: Option<String>,
    /// Page size; 0 means [`DEFAULT_LIST_LIMIT`]; at most [`MAX_LIST_LIMIT`].
    pub limit: usize,
}

impl ListOptions {
    /// Lists keys under `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Resumes after a cursor.
    pub fn with_cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
    /// Sets the page size.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    /// The effective page size, or an error if above the maximum.
    pub fn effective_limit(&self) -> Result<usize> {
        match self.limit {
            0 => Ok(DEFAULT_LIST_LIMIT),
            n if n > MAX_LIST_LIMIT => Err(Error::InvalidArgument {
                reason: format!("list limit {n} is above the maximum {MAX_LIST_LIMIT}"),
            }),
            n => Ok(n),
        }
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// Objects in key order.
    pub objects: Vec<ObjectInfo>,
    /// Cursor of the next page, `None` at the end.
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_http() {
        let r = |s: &str| ByteRange::parse(s).unwrap();
        assert_eq!(r("0-9").resolve(100).unwrap(), 0..10);
        assert_eq!(r("90-200").resolve(100).unwrap(), 90..100);
        assert_eq!(r("10-").resolve(100).unwrap(), 10..100);
        assert_eq!(r("-5").resolve(100).unwrap(), 95..100);
        assert_eq!(r("-500").resolve(100).unwrap(), 0..100);
        assert_eq!(r("100-").resolve(100).unwrap_err().code(), "invalid_range");
        assert_eq!(r("5-4").resolve(100).unwrap_err().code(), "invalid_range");
        assert_eq!(r("0-0").resolve(0).unwrap_err().code(), "invalid_range");
        assert_eq!(r("-5").resolve(0).unwrap_err().code(), "invalid_range");
        assert_eq!(r("0-").resolve(0).unwrap_err().code(), "invalid_range");
        for bad in [
            "", "-", "a-b", "1", "1-2-3", "+5-+9", "+5-", "-+5", " 5-9", "5 -9", "5-9 ", "--5",
            "0x5-9",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn condition_checks_version() {
        let key = Key::new("k").unwrap();
        assert!(Condition::default().check(&key, 7).is_ok());
        assert!(Condition::if_version(7).check(&key, 7).is_ok());
        assert!(Condition::if_version(0).check(&key, 0).is_ok());
        assert_eq!(
            Condition::if_version(0).check(&key, 3).unwrap_err().code(),
            "precondition_failed"
        );
    }
}

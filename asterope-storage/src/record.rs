//! The stored versions of an object: MessagePack, behind a format-version byte.
//!
//! Records are written by serde; they are read by a direct decoder of the same layout (every row
//! a query returns is one decode), falling back to serde for anything it does not expect.

use asterope_core::{Key, Metadata, ObjectInfo, Result, Sha256Digest, Timestamp};
use asterope_serialization::{decode_versioned, encode_versioned, MsgpackReader};
use serde::{Deserialize, Serialize};

use crate::blob::BlobId;

/// Format version of [`VersionRecord`] encodings.
pub(crate) const RECORD_FORMAT: u8 = 3;

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
        match read_direct(bytes, read_version) {
            Some(record) => Ok(record),
            None => decode_versioned(RECORD_FORMAT, bytes, "object record"),
        }
    }

    /// The metadata fields of a stored version that `wanted` accepts (`None`: a tombstone),
    /// the rest of the record stepped over undecoded: what a filter needs to test a row.
    pub(crate) fn decode_fields(
        bytes: &[u8],
        wanted: impl Fn(&[u8]) -> bool + Copy,
    ) -> Result<Option<Metadata>> {
        if let Some(found) = read_direct(bytes, |reader| read_fields(reader, wanted)) {
            return Ok(found);
        }
        Ok(VersionRecord::decode(bytes)?.into_object().map(|record| {
            let mut metadata = record.metadata;
            metadata.retain(|name, _| wanted(name.as_bytes()));
            metadata
        }))
    }

    /// What a stored version occupies (`None`: a tombstone), the rest of the record, its
    /// metadata above all, stepped over undecoded.
    pub(crate) fn decode_footprint(bytes: &[u8]) -> Result<Option<Footprint>> {
        if let Some(found) = read_direct(bytes, read_footprint) {
            return Ok(found);
        }
        Ok(VersionRecord::decode(bytes)?
            .into_object()
            .map(|r| Footprint {
                size: r.size,
                blob: r.blob,
            }))
    }

    /// Whether `bytes` is the encoding of a tombstone.
    pub(crate) fn is_tombstone(bytes: &[u8]) -> bool {
        bytes.split_first().is_some_and(|(&format, body)| {
            format == RECORD_FORMAT && MsgpackReader::new(body).str_bytes() == Some(b"Tombstone")
        })
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

/// Reads a whole encoding of the current format with `read`; `None` sends the caller to serde.
fn read_direct<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut MsgpackReader<'_>) -> Option<T>,
) -> Option<T> {
    let (&RECORD_FORMAT, body) = bytes.split_first()? else {
        return None;
    };
    let mut reader = MsgpackReader::new(body);
    read(&mut reader).filter(|_| reader.is_at_end())
}

/// Walks the layout serde writes for [`VersionRecord`]: `{"Object": {field: value, ...}}` or
/// `"Tombstone"`. Calls `field` with each field's name, the reader positioned at its value
/// (which `field` must consume). `Some(false)` for a tombstone, `Some(true)` for an object,
/// `None` for anything else.
fn read_object(
    reader: &mut MsgpackReader<'_>,
    mut field: impl FnMut(&[u8], &mut MsgpackReader<'_>) -> Option<()>,
) -> Option<bool> {
    if reader.clone().str_bytes() == Some(b"Tombstone") {
        reader.str_bytes();
        return Some(false);
    }
    if reader.map_len()? != 1 || reader.str_bytes()? != b"Object" {
        return None;
    }
    for _ in 0..reader.map_len()? {
        let name = reader.str_bytes()?;
        field(name, reader)?;
    }
    Some(true)
}

/// A `blob` field: nil or a 16-byte id.
fn read_blob(reader: &mut MsgpackReader<'_>) -> Option<Option<BlobId>> {
    if reader.nil() {
        return Some(None);
    }
    Some(Some(BlobId(reader.bin()?.try_into().ok()?)))
}

/// A whole record (`None` also for an unknown field: serde decides what to make of it).
fn read_version(reader: &mut MsgpackReader<'_>) -> Option<VersionRecord> {
    let (mut version, mut size, mut sha256, mut created, mut updated) =
        (None, None, None, None, None);
    let (mut metadata, mut blob) = (None, None);
    let is_object = read_object(reader, |name, reader| {
        match name {
            b"version" => version = Some(reader.u64()?),
            b"size" => size = Some(reader.u64()?),
            b"sha256" => sha256 = Some(Sha256Digest(reader.bin()?.try_into().ok()?)),
            b"created" => created = Some(reader.timestamp_struct()?),
            b"updated" => updated = Some(reader.timestamp_struct()?),
            b"metadata" => metadata = Some(reader.metadata()?),
            b"blob" => blob = Some(read_blob(reader)?),
            _ => return None,
        }
        Some(())
    })?;
    if !is_object {
        return Some(VersionRecord::Tombstone);
    }
    Some(VersionRecord::Object(ObjectRecord {
        version: version?,
        size: size?,
        sha256: sha256?,
        created: created?,
        updated: updated?,
        metadata: metadata?,
        blob: blob?,
    }))
}

/// The `metadata` fields `wanted` accepts (`Some(None)`: a tombstone).
fn read_fields(
    reader: &mut MsgpackReader<'_>,
    wanted: impl Fn(&[u8]) -> bool,
) -> Option<Option<Metadata>> {
    let mut metadata = None;
    let is_object = read_object(reader, |name, reader| {
        if name == b"metadata" {
            metadata = Some(reader.metadata_fields(&wanted)?);
            Some(())
        } else {
            reader.skip_value()
        }
    })?;
    if !is_object {
        return Some(None);
    }
    metadata.map(Some)
}

/// An object version's size and blob: what space accounting needs of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub(crate) size: u64,
    pub(crate) blob: Option<BlobId>,
}

/// The footprint of a record (`Some(None)`: a tombstone).
fn read_footprint(reader: &mut MsgpackReader<'_>) -> Option<Option<Footprint>> {
    let (mut size, mut blob) = (None, None);
    let is_object = read_object(reader, |name, reader| match name {
        b"size" => {
            size = Some(reader.u64()?);
            Some(())
        }
        b"blob" => {
            blob = Some(read_blob(reader)?);
            Some(())
        }
        _ => reader.skip_value(),
    })?;
    if !is_object {
        return Some(None);
    }
    Some(Some(Footprint {
        size: size?,
        blob: blob?,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use asterope_core::Value;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            ".{0,20}".prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Binary),
            (any::<i64>(), 0u32..1_000_000_000)
                .prop_map(|(secs, nanos)| Value::Timestamp(Timestamp { secs, nanos })),
        ];
        scalar.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Map(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
            ]
        })
    }

    fn record() -> impl Strategy<Value = VersionRecord> {
        let object = (
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            (any::<i64>(), 0u32..1_000_000_000),
            proptest::collection::btree_map(".{1,12}", value(), 0..8),
            proptest::option::of(any::<[u8; 16]>()),
        )
            .prop_map(|(version, size, sha, (secs, nanos), metadata, blob)| {
                VersionRecord::Object(ObjectRecord {
                    version,
                    size,
                    sha256: Sha256Digest(sha),
                    created: Timestamp { secs, nanos },
                    updated: Timestamp {
                        secs: secs.wrapping_add(1),
                        nanos,
                    },
                    metadata: metadata.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                    blob: blob.map(BlobId),
                })
            });
        prop_oneof![Just(VersionRecord::Tombstone), object]
    }

    proptest! {
        #[test]
        fn the_direct_decoder_reads_what_serde_reads(record in record()) {
            let bytes = record.encode().unwrap();
            let mut reader = MsgpackReader::new(&bytes[1..]);
            let direct = read_version(&mut reader).expect("the direct decoder reads every record");
            prop_assert!(reader.is_at_end());
            let serde: VersionRecord = decode_versioned(RECORD_FORMAT, &bytes, "record").unwrap();
            // Debug output compares NaN floats as equal, unlike `==`.
            prop_assert_eq!(format!("{direct:?}"), format!("{serde:?}"));
            prop_assert_eq!(format!("{:?}", VersionRecord::decode(&bytes).unwrap()), format!("{serde:?}"));
        }
    }

    proptest! {
        #[test]
        fn selected_fields_are_those_of_the_full_record(record in record(), keep in ".{0,6}") {
            let bytes = record.encode().unwrap();
            let record_footprint = record.object().map(|r| Footprint { size: r.size, blob: r.blob });
            let wanted = |name: &[u8]| name < keep.as_bytes();
            let selected = VersionRecord::decode_fields(&bytes, wanted).unwrap();
            let expected = record.into_object().map(|r| {
                let mut metadata = r.metadata;
                metadata.retain(|name, _| wanted(name.as_bytes()));
                metadata
            });
            prop_assert_eq!(format!("{selected:?}"), format!("{expected:?}"));
            prop_assert_eq!(VersionRecord::is_tombstone(&bytes), expected.is_none());
            let footprint = VersionRecord::decode_footprint(&bytes).unwrap();
            prop_assert_eq!(footprint, record_footprint);
        }
    }

    #[test]
    fn damaged_records_still_fail_with_serde_errors() {
        let record = VersionRecord::Object(ObjectRecord {
            version: 7,
            size: 3,
            sha256: Sha256Digest([1; 32]),
            created: Timestamp { secs: 1, nanos: 2 },
            updated: Timestamp { secs: 3, nanos: 4 },
            metadata: Metadata::from([("a".into(), Value::Int(1))]),
            blob: None,
        });
        let bytes = record.encode().unwrap();
        for cut in 1..bytes.len() {
            assert!(
                VersionRecord::decode(&bytes[..cut]).is_err(),
                "a record cut at {cut} bytes must not decode"
            );
            assert!(
                VersionRecord::decode_fields(&bytes[..cut], |_| true).is_err(),
                "a record cut at {cut} bytes must not yield fields"
            );
            assert!(
                VersionRecord::decode_footprint(&bytes[..cut]).is_err(),
                "a record cut at {cut} bytes must not yield a footprint"
            );
        }
        let mut unknown_format = bytes.clone();
        unknown_format[0] = RECORD_FORMAT + 1;
        assert_eq!(
            VersionRecord::decode(&unknown_format).unwrap_err().code(),
            "unsupported_format"
        );
    }
}

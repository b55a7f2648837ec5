//! Layout of the metadata tree's keys.
//!
//! One ordered tree holds everything:
//!
//! ```text
//! <user key> 0x00 <!commit_ts, 8 bytes BE>           a version of an object (or a tombstone)
//! 0x00 "oracle"                                       the last commit version handed out
//! 0x00 "latest" 0x00 <user key>                       commit_ts of the key's newest version
//! 0x00 "def" 0x00 <field>                             a secondary-index definition
//! 0x00 "idx" 0x00 <field> 0x00 <value> <user key> 0x00 <!commit_ts>   an index entry
//! 0x00 "post" 0x00 <field> 0x00 <value>              the posting list of one indexed value
//! 0x00 "blob" 0x00 <blob id, 16 bytes>                a stored blob: runs, checksums, refs
//! 0x00 "content" 0x00 <sha256, 32 bytes> <size, 8 bytes BE>   the blob holding that content
//! ```
//!
//! User keys never contain NUL, so `key 0x00` separates a key from its version suffix without
//! disturbing key order, and nothing a user can name starts with `0x00`. The commit timestamp is
//! stored inverted so that a key's newest version comes first: a snapshot read at `ts` is one
//! seek to `key 0x00 !ts`.

/// Tree key of the persisted commit-version oracle.
pub(crate) const ORACLE_KEY: &[u8] = b"\0oracle";
/// The format of every version record in the store, once known (absent: not checked yet).
pub(crate) const FORMAT_KEY: &[u8] = b"\0format";
/// Prefix of index definitions.
pub(crate) const INDEX_DEF_PREFIX: &[u8] = b"\0def\0";
/// Prefix of index entries.
pub(crate) const INDEX_ENTRY_PREFIX: &[u8] = b"\0idx\0";
/// Prefix of posting lists.
pub(crate) const POSTING_PREFIX: &[u8] = b"\0post\0";
/// Prefix of the newest-version pointers.
pub(crate) const LATEST_PREFIX: &[u8] = b"\0latest\0";
/// Prefix of the blob table.
pub(crate) const BLOB_PREFIX: &[u8] = b"\0blob\0";
/// Prefix of the content table (deduplication).
pub(crate) const CONTENT_PREFIX: &[u8] = b"\0content\0";
/// Smallest tree key of the user region.
pub(crate) const USER_REGION_START: &[u8] = &[1];

/// Bytes after the user key in a version key: the separator and the inverted timestamp.
const VERSION_SUFFIX: usize = 9;

/// `key 0x00 !ts`.
pub(crate) fn version_key(key: &[u8], ts: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + VERSION_SUFFIX);
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(&(!ts).to_be_bytes());
    out
}

/// Splits a version key into user key and commit timestamp.
pub(crate) fn split_version_key(tree_key: &[u8]) -> Option<(&[u8], u64)> {
    let split = tree_key.len().checked_sub(VERSION_SUFFIX)?;
    let (key, suffix) = tree_key.split_at(split);
    let (separator, inverted) = suffix.split_first()?;
    if *separator != 0 || key.is_empty() {
        return None;
    }
    Some((key, !u64::from_be_bytes(inverted.try_into().ok()?)))
}

/// The first tree key after every version of `key`.
pub(crate) fn after_all_versions(key: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    out.push(1);
    out
}

/// `0x00 "latest" 0x00 key`: where the commit version of the key's newest version is kept, so
/// that a snapshot read at or after it is two point lookups instead of a range seek.
pub(crate) fn latest_key(key: &[u8]) -> Vec<u8> {
    [LATEST_PREFIX, key].concat()
}

/// `0x00 "blob" 0x00 id`.
pub(crate) fn blob_key(id: &crate::blob::BlobId) -> Vec<u8> {
    [BLOB_PREFIX, &id.0].concat()
}

/// The blob id of a blob-table key.
pub(crate) fn blob_id_of(tree_key: &[u8]) -> Option<crate::blob::BlobId> {
    let id = tree_key.strip_prefix(BLOB_PREFIX)?;
    <[u8; 16]>::try_from(id).ok().map(crate::blob::BlobId)
}

/// `0x00 "content" 0x00 sha256 size`.
pub(crate) fn content_key(sha256: &asterope_core::Sha256Digest, size: u64) -> Vec<u8> {
    [CONTENT_PREFIX, &sha256.0, &size.to_be_bytes()].concat()
}

/// `0x00 "def" 0x00 field`.
pub(crate) fn index_def_key(field: &str) -> Vec<u8> {
    [INDEX_DEF_PREFIX, field.as_bytes()].concat()
}

/// `0x00 "idx" 0x00 field 0x00`: the prefix of every entry of one index.
pub(crate) fn index_prefix(field: &str) -> Vec<u8> {
    [INDEX_ENTRY_PREFIX, field.as_bytes(), &[0]].concat()
}

/// `0x00 "post" 0x00 field 0x00`: the prefix of every posting list of one index.
pub(crate) fn posting_prefix(field: &str) -> Vec<u8> {
    [POSTING_PREFIX, field.as_bytes(), &[0]].concat()
}

/// One index entry: prefix, encoded value, user key, version suffix.
pub(crate) fn index_entry_key(prefix: &[u8], value: &[u8], key: &[u8], ts: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + value.len() + key.len() + VERSION_SUFFIX);
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.extend_from_slice(&version_key(key, ts));
    out
}

/// Splits an index entry (after its index's prefix) into encoded value, user key and commit
/// timestamp.
pub(crate) fn split_index_entry(after_prefix: &[u8]) -> Option<(&[u8], &[u8], u64)> {
    let value_len = asterope_serialization::ordered_len(after_prefix)?;
    let (value, version_key) = after_prefix.split_at_checked(value_len)?;
    let (key, ts) = split_version_key(version_key)?;
    Some((value, key, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_order_newest_first_and_split_back() {
        let older = version_key(b"a/b", 5);
        let newer = version_key(b"a/b", 9);
        assert!(newer < older);
        assert!(older < version_key(b"a/c", 1));
        assert!(older < after_all_versions(b"a/b"));
        assert!(after_all_versions(b"a/b") < version_key(b"a/b/c", 1));
        assert_eq!(split_version_key(&newer), Some((&b"a/b"[..], 9)));
        assert_eq!(split_version_key(b"short"), None);
    }
}

//! Layout of the metadata tree's keys.
//!
//! One ordered tree holds everything:
//!
//! ```text
//! <user key> 0x00 <!commit_ts, 8 bytes BE>           a version of an object (or a tombstone)
//! 0x00 "oracle"                                       the last commit version handed out
//! 0x00 "latest" 0x00 <user key>                       commit_ts of the key's newest version
//! 0x00 "def" 0x00 <field>                             a secondary-index definition
//! 0x00 "ixgen"                                        the last index generation handed out
//! 0x00 "ixg" 0x00 <generation, 8 bytes BE> <value> <user key> 0x00 <!commit_ts>   an index entry
//! 0x00 "pxg" 0x00 <generation, 8 bytes BE> <value>   the posting list of one indexed value
//! 0x00 "idx" 0x00 <field> 0x00 ...                    an entry of an index declared before
//!                                                     generations (legacy)
//! 0x00 "post" 0x00 <field> 0x00 <value>              a legacy index's posting list
//! 0x00 "blob" 0x00 <blob id, 16 bytes>                a stored blob: runs, checksums, refs
//! 0x00 "content" 0x00 <sha256, 32 bytes> <size, 8 bytes BE>   the blob holding that content
//! ```
//!
//! User keys never contain NUL, so `key 0x00` separates a key from its version suffix without
//! disturbing key order, and nothing a user can name starts with `0x00`. The commit version is
//! stored inverted so that a key's newest version comes first: a snapshot read at version `v` is
//! one seek to `key 0x00 !v`.
//!
//! Every index declared gets a new *generation*, and its entries and posting lists live under
//! prefixes made of that number alone: fixed-length, so no index's prefix is a prefix of
//! another's (as `"a" 0x00` was of `"a" 0x00 "b" 0x00` under the legacy field-named prefixes),
//! and an index dropped and declared again never shares keys with its previous incarnation,
//! whose cleanup may still be running.

/// Tree key of the persisted commit-version oracle.
pub(crate) const ORACLE_KEY: &[u8] = b"\0oracle";
/// The format of every version record in the store, once known (absent: not checked yet).
pub(crate) const FORMAT_KEY: &[u8] = b"\0format";
/// Prefix of index definitions.
pub(crate) const INDEX_DEF_PREFIX: &[u8] = b"\0def\0";
/// Prefix of the entries of legacy (generation-less) indexes.
pub(crate) const INDEX_ENTRY_PREFIX: &[u8] = b"\0idx\0";
/// Prefix of the posting lists of legacy (generation-less) indexes.
pub(crate) const POSTING_PREFIX: &[u8] = b"\0post\0";
/// Tree key of the last index generation handed out.
pub(crate) const INDEX_GENERATION_KEY: &[u8] = b"\0ixgen";
/// Prefix of the entries of every index with a generation.
pub(crate) const GENERATION_ENTRY_PREFIX: &[u8] = b"\0ixg\0";
/// Prefix of the posting lists of every index with a generation.
pub(crate) const GENERATION_POSTING_PREFIX: &[u8] = b"\0pxg\0";
/// Prefix of the newest-version pointers.
pub(crate) const LATEST_PREFIX: &[u8] = b"\0latest\0";
/// Prefix of the blob table.
pub(crate) const BLOB_PREFIX: &[u8] = b"\0blob\0";
/// Prefix of the content table (deduplication).
pub(crate) const CONTENT_PREFIX: &[u8] = b"\0content\0";
/// Smallest tree key of the user region.
pub(crate) const USER_REGION_START: &[u8] = &[1];

/// Bytes after the user key in a version key: the separator and the inverted version.
const VERSION_SUFFIX: usize = 9;

/// `key 0x00 !version`.
pub(crate) fn version_key(key: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + VERSION_SUFFIX);
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(&(!version).to_be_bytes());
    out
}

/// Splits a version key into user key and commit version.
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

/// The prefix of every entry of one index: `0x00 "ixg" 0x00 generation`, or for a legacy index
/// `0x00 "idx" 0x00 field 0x00`.
pub(crate) fn index_prefix(field: &str, generation: Option<u64>) -> Vec<u8> {
    match generation {
        Some(generation) => [GENERATION_ENTRY_PREFIX, &generation.to_be_bytes()].concat(),
        None => [INDEX_ENTRY_PREFIX, field.as_bytes(), &[0]].concat(),
    }
}

/// The prefix of every posting list of one index: `0x00 "pxg" 0x00 generation`, or for a
/// legacy index `0x00 "post" 0x00 field 0x00`.
pub(crate) fn posting_prefix(field: &str, generation: Option<u64>) -> Vec<u8> {
    match generation {
        Some(generation) => [GENERATION_POSTING_PREFIX, &generation.to_be_bytes()].concat(),
        None => [POSTING_PREFIX, field.as_bytes(), &[0]].concat(),
    }
}

/// The generation of a key under [`GENERATION_ENTRY_PREFIX`] or [`GENERATION_POSTING_PREFIX`].
pub(crate) fn generation_of(tree_key: &[u8], region: &[u8]) -> Option<u64> {
    let bytes = tree_key.strip_prefix(region)?.first_chunk::<8>()?;
    Some(u64::from_be_bytes(*bytes))
}

/// One index entry: prefix, encoded value, user key, version suffix.
pub(crate) fn index_entry_key(prefix: &[u8], value: &[u8], key: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + value.len() + key.len() + VERSION_SUFFIX);
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.extend_from_slice(&version_key(key, version));
    out
}

/// Splits an index entry (after its index's prefix) into encoded value, user key and commit
/// version.
pub(crate) fn split_index_entry(after_prefix: &[u8]) -> Option<(&[u8], &[u8], u64)> {
    let value_len = asterope_serialization::ordered_len(after_prefix)?;
    let (value, version_key) = after_prefix.split_at_checked(value_len)?;
    let (key, version) = split_version_key(version_key)?;
    Some((value, key, version))
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

    #[test]
    fn no_index_prefix_is_a_prefix_of_another() {
        let prefixes: Vec<Vec<u8>> = [0u64, 1, 0x100, u64::MAX]
            .iter()
            .flat_map(|&g| [index_prefix("a", Some(g)), posting_prefix("a", Some(g))])
            .chain([index_prefix("a\0b", Some(7)), index_prefix("a", Some(7))])
            .collect();
        for (i, a) in prefixes.iter().enumerate() {
            for (j, b) in prefixes.iter().enumerate() {
                if a != b {
                    assert!(!b.starts_with(a), "prefix {i} is a prefix of prefix {j}");
                }
            }
        }
        let key = index_entry_key(&index_prefix("a", Some(9)), b"\x01", b"k", 3);
        assert_eq!(generation_of(&key, GENERATION_ENTRY_PREFIX), Some(9));
    }
}

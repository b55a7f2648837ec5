//! Object keys: validated UTF-8 names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result, Text};

/// A validated object key: UTF-8, 1 to [`Key::MAX_LEN`] bytes, no NUL byte. `/` is allowed and
/// has no special meaning beyond prefix listing.
///
/// NUL is reserved because the metadata tree separates keys from their suffixes with it, which
/// keeps byte order equal to key order. Keys never become file paths.
///
/// Keys of up to 24 bytes are kept inline, without an allocation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Text);

impl Key {
    /// Longest key accepted, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validates and wraps a key.
    pub fn new(key: impl Into<Text>) -> Result<Key> {
        let key = key.into();
        Self::validate(&key)?;
        Ok(Key(key))
    }

    /// Checks a candidate key without allocating.
    pub fn validate(key: &str) -> Result<()> {
        let reason = if key.is_empty() {
            "key is empty".to_string()
        } else if key.len() > Self::MAX_LEN {
            format!(
                "key is {} bytes long; the limit is {}",
                key.len(),
                Self::MAX_LEN
            )
        } else if let Some(position) = key.bytes().position(|b| b == 0) {
            format!("key contains a NUL byte at offset {position}")
        } else {
            return Ok(());
        };
        Err(Error::InvalidKey { reason })
    }

    /// Validates a key given as raw bytes (e.g. decoded from a URL path).
    pub fn from_bytes(bytes: &[u8]) -> Result<Key> {
        let key = std::str::from_utf8(bytes).map_err(|e| Error::InvalidKey {
            reason: format!("key is not valid UTF-8: {e}"),
        })?;
        Key::new(key)
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

impl FromStr for Key {
    type Err = Error;
    fn from_str(s: &str) -> Result<Key> {
        Key::new(s)
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(s: &str) -> Result<Key> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = Error;
    fn try_from(s: String) -> Result<Key> {
        Key::new(s)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Key, D::Error> {
        let s = Text::deserialize(deserializer)?;
        Key::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        assert!(Key::new("a").is_ok());
        assert!(Key::new("studies/1.2.840/series/7.dcm").is_ok());
        assert!(Key::new("ünïcødé/キー").is_ok());
        assert!(Key::new("x".repeat(1024)).is_ok());
        for bad in ["", "a\0b"] {
            assert_eq!(Key::new(bad).unwrap_err().code(), "invalid_key");
        }
        assert_eq!(
            Key::new("x".repeat(1025)).unwrap_err().code(),
            "invalid_key"
        );
        assert_eq!(
            Key::from_bytes(&[0xff, 0xfe]).unwrap_err().code(),
            "invalid_key"
        );
    }
}

//! [`FieldPath`]: a dotted path into a metadata document, how it is parsed and checked, and how
//! it reaches values, fanning out through arrays for filters ([`FieldPath::resolve`]) or
//! descending maps only for sorting ([`FieldPath::lookup`]).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Metadata, Result, Value};

/// A dotted path into a metadata document: `study.series.count` is the segments `study`,
/// `series`, `count`.
///
/// Segments are map keys; there is no array-index syntax (arrays are searched element by element,
/// see [`Filter`](crate::Filter) and docs/QUERY.md). A key that itself contains a dot cannot be
/// addressed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Splits a dotted path without checking it; empty segments are kept and look up the key `""`.
    /// Used by the builder, where a typo cannot be reported; [`FieldPath::parse`] refuses them.
    pub fn new(dotted: &str) -> FieldPath {
        FieldPath {
            segments: dotted.split('.').map(str::to_string).collect(),
        }
    }

    /// Parses a dotted path, refusing with [`Error::InvalidQuery`] an empty path, an empty
    /// segment (`a..b`, `.a`, `a.`), and control characters (NUL included): a path names index
    /// keys, threads and log lines, where such characters are ambiguous or refused.
    pub fn parse(dotted: &str) -> Result<FieldPath> {
        if dotted.is_empty() {
            return Err(Error::InvalidQuery {
                reason: "empty field path".to_string(),
            });
        }
        if dotted.chars().any(char::is_control) {
            return Err(Error::InvalidQuery {
                reason: format!("field path {dotted:?} contains a control character"),
            });
        }
        let path = FieldPath::new(dotted);
        if path.segments.iter().any(String::is_empty) {
            return Err(Error::InvalidQuery {
                reason: format!("field path {dotted:?} has an empty segment"),
            });
        }
        Ok(path)
    }

    /// The path's segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Every value the path reaches in `metadata`, fanning out through arrays along the way (an
    /// array met before the last segment is searched in each of its map elements). The result is
    /// empty when the field is missing. An array at the end of the path is returned as one value;
    /// predicates look at it and at each of its elements.
    pub fn resolve<'a>(&self, metadata: &'a Metadata) -> Vec<&'a Value> {
        let Some((first, rest)) = self.segments.split_first() else {
            return Vec::new();
        };
        let mut reached: Vec<&'a Value> = metadata.get(first.as_str()).into_iter().collect();
        for segment in rest {
            let mut next = Vec::new();
            for value in reached {
                match value {
                    Value::Map(map) => next.extend(map.get(segment.as_str())),
                    Value::Array(items) => {
                        for item in items {
                            if let Value::Map(map) = item {
                                next.extend(map.get(segment.as_str()));
                            }
                        }
                    }
                    _ => {}
                }
            }
            reached = next;
        }
        reached
    }

    /// The single value at the path, descending through maps only (no array fan-out); `None`
    /// when any step is missing or not a map. This is the sort key of
    /// [`SortSpec`](crate::SortSpec).
    pub fn lookup<'a>(&self, metadata: &'a Metadata) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = metadata.get(first.as_str())?;
        for segment in rest {
            match value {
                Value::Map(map) => value = map.get(segment.as_str())?,
                _ => return None,
            }
        }
        Some(value)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("."))
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({:?})", self.to_string())
    }
}

impl FromStr for FieldPath {
    type Err = Error;

    fn from_str(dotted: &str) -> Result<FieldPath> {
        FieldPath::parse(dotted)
    }
}

impl From<&str> for FieldPath {
    fn from(dotted: &str) -> FieldPath {
        FieldPath::new(dotted)
    }
}

impl From<String> for FieldPath {
    fn from(dotted: String) -> FieldPath {
        FieldPath::new(&dotted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_fixtures::sample;

    #[test]
    fn field_paths() {
        assert_eq!(
            FieldPath::parse("study.series.count").unwrap().segments(),
            ["study", "series", "count"]
        );
        assert_eq!(FieldPath::parse("a.b").unwrap().to_string(), "a.b");
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a\0b",
            "a\nb",
            "\u{7f}",
            "x.\u{1b}[2J",
        ] {
            assert_eq!(FieldPath::parse(bad).unwrap_err().code(), "invalid_query");
        }
        assert_eq!("x.y".parse::<FieldPath>().unwrap(), FieldPath::new("x.y"));
        let m = sample();
        assert_eq!(
            FieldPath::new("study.series.count").resolve(&m),
            [&Value::Int(10), &Value::Int(3)]
        );
        assert_eq!(FieldPath::new("study.series.count").lookup(&m), None);
        assert_eq!(FieldPath::new("slices").lookup(&m), Some(&Value::Int(120)));
    }
}

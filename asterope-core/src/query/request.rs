//! The [`Query`] request (filter, key prefix, sort, limit, cursor) and its result order
//! [`SortSpec`], with the request form of a sort (`"field.path"`, `"-field.path"`).

use std::cmp::Ordering;
use std::fmt;

use crate::{compare_values, Error, FieldPath, Filter, Metadata, Result, Value};

/// Order of query results by one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortSpec {
    /// The field sorted on; its value is taken with [`FieldPath::lookup`] (maps only, a missing
    /// field sorts as null).
    pub path: FieldPath,
    /// Largest first when `true`.
    pub descending: bool,
}

impl SortSpec {
    /// Smallest first by `path`.
    pub fn ascending_by(path: impl Into<FieldPath>) -> SortSpec {
        SortSpec {
            path: path.into(),
            descending: false,
        }
    }

    /// Largest first by `path`.
    pub fn descending_by(path: impl Into<FieldPath>) -> SortSpec {
        SortSpec {
            path: path.into(),
            descending: true,
        }
    }

    /// Parses the request form: `"field.path"` (ascending) or `"-field.path"` (descending).
    pub fn parse(text: &str) -> Result<SortSpec> {
        let (descending, dotted) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let path = FieldPath::parse(dotted).map_err(|e| Error::InvalidQuery {
            reason: format!("invalid sort {text:?}: {}", query_reason(e)),
        })?;
        Ok(SortSpec { path, descending })
    }

    /// Orders two documents by this spec, with [`compare_values`] (a missing field is null).
    /// Ties are left to the caller, which breaks them by key.
    pub fn compare(&self, a: &Metadata, b: &Metadata) -> Ordering {
        let key = |m| self.path.lookup(m).unwrap_or(&Value::Nil);
        let order = compare_values(key(a), key(b));
        if self.descending {
            order.reverse()
        } else {
            order
        }
    }
}

impl fmt::Display for SortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.descending { "-" } else { "" };
        write!(f, "{sign}{}", self.path)
    }
}

fn query_reason(error: Error) -> String {
    match error {
        Error::InvalidQuery { reason } => reason,
        other => other.to_string(),
    }
}

/// A metadata query: which objects (filter and key prefix), in what order, and which page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Condition on the metadata; [`Filter::True`] selects everything.
    pub filter: Filter,
    /// Only keys starting with this prefix.
    pub key_prefix: Option<String>,
    /// Result order; by key when `None`.
    pub sort: Option<SortSpec>,
    /// Most results in one page; the store's default when `None`.
    pub limit: Option<usize>,
    /// Opaque continuation token from the previous page.
    pub cursor: Option<String>,
}

impl Query {
    /// A query with this filter and every other setting at its default.
    pub fn new(filter: Filter) -> Query {
        Query {
            filter,
            ..Query::default()
        }
    }

    /// Replaces the filter.
    pub fn with_filter(mut self, filter: Filter) -> Query {
        self.filter = filter;
        self
    }

    /// Restricts to keys starting with `prefix`.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Query {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Sets the result order.
    pub fn with_sort(mut self, sort: SortSpec) -> Query {
        self.sort = Some(sort);
        self
    }

    /// Sets the page size.
    pub fn with_limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// Continues after a previous page.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Query {
        self.cursor = Some(cursor.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field;
    use crate::query::test_fixtures::doc;

    #[test]
    fn sort_specs() {
        assert_eq!(
            SortSpec::parse("-study.date").unwrap(),
            SortSpec::descending_by("study.date")
        );
        assert_eq!(SortSpec::parse("a").unwrap(), SortSpec::ascending_by("a"));
        assert_eq!(SortSpec::descending_by("a.b").to_string(), "-a.b");
        for bad in ["", "-", "a..b"] {
            assert_eq!(SortSpec::parse(bad).unwrap_err().code(), "invalid_query");
        }
        let small = doc(&[("n", 1.into())]);
        let big = doc(&[("n", 2.5.into())]);
        let missing = Metadata::new();
        let up = SortSpec::ascending_by("n");
        assert_eq!(up.compare(&small, &big), Ordering::Less);
        assert_eq!(up.compare(&missing, &small), Ordering::Less);
        let down = SortSpec::descending_by("n");
        assert_eq!(down.compare(&small, &big), Ordering::Greater);
    }

    #[test]
    fn query_builder() {
        let q = Query::new(field("a").eq(1))
            .with_key_prefix("scans/")
            .with_sort(SortSpec::descending_by("date"))
            .with_limit(10)
            .with_cursor("abc");
        assert_eq!(q.filter, field("a").eq(1));
        assert_eq!(q.key_prefix.as_deref(), Some("scans/"));
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        assert_eq!(q.sort, Some(SortSpec::descending_by("date")));
        let q = Query::default().with_filter(Filter::True);
        assert_eq!(q, Query::default());
    }
}

//! The typed filter builder: [`field`] starts a [`FieldCondition`] whose methods yield a
//! [`Filter`] (`field("study.date").gt(timestamp)`), and [`and`], [`or`], [`not`] combine filters.

use crate::{FieldPath, Filter, Predicate, Value};

/// Starts a condition on a field: `field("study.date").gt(timestamp)`.
pub fn field(path: impl Into<FieldPath>) -> FieldCondition {
    FieldCondition { path: path.into() }
}

/// All of the filters (`{"$and": [...]}`).
pub fn and(filters: impl IntoIterator<Item = Filter>) -> Filter {
    Filter::And(filters.into_iter().collect())
}

/// Any of the filters (`{"$or": [...]}`).
pub fn or(filters: impl IntoIterator<Item = Filter>) -> Filter {
    Filter::Or(filters.into_iter().collect())
}

/// The negation of a filter (`{"$not": ...}`).
pub fn not(filter: Filter) -> Filter {
    Filter::Not(Box::new(filter))
}

/// A field named by [`field`], waiting for its operator; each method yields a [`Filter`].
#[derive(Clone, Debug, PartialEq)]
pub struct FieldCondition {
    path: FieldPath,
}

impl FieldCondition {
    /// The field satisfies any predicate (for example [`Predicate::All`]).
    pub fn matching(self, predicate: Predicate) -> Filter {
        Filter::Field {
            path: self.path,
            predicate,
        }
    }

    /// Equal to `value` (`$eq`).
    pub fn eq(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Eq(value.into()))
    }

    /// Not equal to `value`, or missing (`$ne`).
    pub fn ne(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Ne(value.into()))
    }

    /// Greater than `value` (`$gt`).
    pub fn gt(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Gt(value.into()))
    }

    /// Greater than or equal to `value` (`$gte`).
    pub fn gte(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Gte(value.into()))
    }

    /// Less than `value` (`$lt`).
    pub fn lt(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Lt(value.into()))
    }

    /// Less than or equal to `value` (`$lte`).
    pub fn lte(self, value: impl Into<Value>) -> Filter {
        self.matching(Predicate::Lte(value.into()))
    }

    /// Equal to any of `values` (`$in`).
    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.matching(Predicate::In(values.into_iter().map(Into::into).collect()))
    }

    /// Equal to none of `values`, or missing (`$nin`).
    pub fn not_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.matching(Predicate::Nin(values.into_iter().map(Into::into).collect()))
    }

    /// Present (`true`) or absent (`false`) (`$exists`).
    pub fn exists(self, present: bool) -> Filter {
        self.matching(Predicate::Exists(present))
    }

    /// A string starting with `prefix` (`$prefix`).
    pub fn prefix(self, prefix: impl Into<String>) -> Filter {
        self.matching(Predicate::Prefix(prefix.into()))
    }
}

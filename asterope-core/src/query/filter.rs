//! The [`Filter`] AST over metadata documents, its combinators ([`Filter::and`],
//! [`Filter::or`]), its size measures, and the limits every filter must respect
//! ([`MAX_FILTER_DEPTH`], [`MAX_FILTER_NODES`], [`MAX_IN_LIST_LEN`]), measured without
//! recursion. How a filter is evaluated lives in `eval`.

use crate::{Error, FieldPath, Predicate, Result};

/// Deepest nesting of a filter, counting every [`Filter`] and [`Predicate`] node on the longest
/// path from the root (so `{"a": 1}` is 2 deep: the field node and its `$eq`).
pub const MAX_FILTER_DEPTH: usize = 32;
/// Longest operand list of one `$in` or `$nin`.
pub const MAX_IN_LIST_LEN: usize = 10_000;
/// Most [`Filter`] plus [`Predicate`] nodes in one filter (list operands do not count).
pub const MAX_FILTER_NODES: usize = 10_000;

/// A filter over metadata documents (JSON syntax and full reference: docs/QUERY.md).
///
/// Semantics follow MongoDB: a [`FieldPath`] descends nested maps and fans out through arrays;
/// a predicate matches when **any** value reached matches (or, for equality, a whole array);
/// numbers compare across int and float exactly; range operators only match values of the
/// operand's class (a type mismatch is no match, never an error); `$eq: null` also matches a
/// missing field, and `$ne`, `$nin` and field-level `Not` match missing fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Filter {
    /// Matches every document (the empty filter `{}`).
    #[default]
    True,
    /// Every filter matches (an empty list matches everything).
    And(Vec<Filter>),
    /// At least one filter matches (an empty list matches nothing).
    Or(Vec<Filter>),
    /// The filter does not match.
    Not(Box<Filter>),
    /// The values at a path satisfy a predicate.
    Field {
        /// Where in the document to look.
        path: FieldPath,
        /// What the values there must satisfy.
        predicate: Predicate,
    },
}

/// Size measures of a filter, gathered without recursion.
struct FilterShape {
    depth: usize,
    nodes: usize,
    longest_list: usize,
}

impl Filter {
    /// The top-level fields the filter looks at (the first segment of each path): a document
    /// cut down to these fields matches exactly when the whole document does.
    pub fn top_level_fields(&self) -> std::collections::BTreeSet<&str> {
        let mut fields = std::collections::BTreeSet::new();
        let mut pending = vec![self];
        while let Some(filter) = pending.pop() {
            match filter {
                Filter::True => {}
                Filter::And(parts) | Filter::Or(parts) => pending.extend(parts),
                Filter::Not(inner) => pending.push(inner),
                Filter::Field { path, .. } => {
                    fields.extend(path.segments().first().map(String::as_str));
                }
            }
        }
        fields
    }

    /// Both this filter and `other`; chains flatten (`a.and(b).and(c)` is `And([a, b, c])`, the
    /// same AST as the JSON `{"a": .., "b": .., "c": ..}`).
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut filters) => {
                filters.push(other);
                Filter::And(filters)
            }
            first => Filter::And(vec![first, other]),
        }
    }

    /// This filter or `other`; chains flatten like [`Filter::and`].
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut filters) => {
                filters.push(other);
                Filter::Or(filters)
            }
            first => Filter::Or(vec![first, other]),
        }
    }

    /// Nesting depth: the number of [`Filter`] and [`Predicate`] nodes on the longest path from
    /// the root (`True` is 1, a field with a plain predicate 2).
    pub fn depth(&self) -> usize {
        self.shape().depth
    }

    /// Number of [`Filter`] and [`Predicate`] nodes.
    pub fn node_count(&self) -> usize {
        self.shape().nodes
    }

    /// Checks [`MAX_FILTER_DEPTH`], [`MAX_FILTER_NODES`] and [`MAX_IN_LIST_LEN`], with
    /// [`Error::InvalidQuery`]. The JSON parser enforces them as it goes; call this for filters
    /// built in code before handing them to a store. Runs without recursion, so even an absurdly
    /// deep filter is measured safely.
    pub fn check_limits(&self) -> Result<()> {
        let shape = self.shape();
        let refuse = |reason: String| Err(Error::InvalidQuery { reason });
        if shape.depth > MAX_FILTER_DEPTH {
            return refuse(format!(
                "filter is nested {} levels deep, more than the limit of {MAX_FILTER_DEPTH}",
                shape.depth
            ));
        }
        if shape.nodes > MAX_FILTER_NODES {
            return refuse(format!(
                "filter has {} nodes, more than the limit of {MAX_FILTER_NODES}",
                shape.nodes
            ));
        }
        if shape.longest_list > MAX_IN_LIST_LEN {
            return refuse(format!(
                "an $in/$nin list has {} values, more than the limit of {MAX_IN_LIST_LEN}",
                shape.longest_list
            ));
        }
        Ok(())
    }

    fn shape(&self) -> FilterShape {
        enum Node<'a> {
            Filter(&'a Filter),
            Predicate(&'a Predicate),
        }
        let mut shape = FilterShape {
            depth: 0,
            nodes: 0,
            longest_list: 0,
        };
        let mut pending = vec![(Node::Filter(self), 1usize)];
        while let Some((node, depth)) = pending.pop() {
            shape.nodes += 1;
            shape.depth = shape.depth.max(depth);
            match node {
                Node::Filter(Filter::True) => {}
                Node::Filter(Filter::And(filters) | Filter::Or(filters)) => {
                    pending.extend(filters.iter().map(|f| (Node::Filter(f), depth + 1)));
                }
                Node::Filter(Filter::Not(inner)) => pending.push((Node::Filter(inner), depth + 1)),
                Node::Filter(Filter::Field { predicate, .. }) => {
                    pending.push((Node::Predicate(predicate), depth + 1));
                }
                Node::Predicate(Predicate::Not(inner)) => {
                    pending.push((Node::Predicate(inner), depth + 1));
                }
                Node::Predicate(Predicate::All(predicates)) => {
                    pending.extend(predicates.iter().map(|p| (Node::Predicate(p), depth + 1)));
                }
                Node::Predicate(Predicate::In(list) | Predicate::Nin(list)) => {
                    shape.longest_list = shape.longest_list.max(list.len());
                }
                Node::Predicate(_) => {}
            }
        }
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{and, field, not};

    #[test]
    fn limits_are_checked_without_recursion() {
        let mut deep = Filter::True;
        for _ in 0..100_000 {
            deep = not(deep);
        }
        assert_eq!(deep.depth(), 100_001);
        let err = deep.check_limits().unwrap_err();
        assert_eq!(err.code(), "invalid_query");
        assert!(err.to_string().contains("100001 levels"), "{err}");
        // Dropping the deep chain recurses; unwind it by hand.
        while let Filter::Not(inner) = deep {
            deep = *inner;
        }

        let mut ok = field("a").eq(1);
        for _ in 0..MAX_FILTER_DEPTH - 2 {
            ok = not(ok);
        }
        assert_eq!(ok.depth(), MAX_FILTER_DEPTH);
        ok.check_limits().unwrap();

        let wide = and((0..MAX_FILTER_NODES).map(|i| field("a").eq(i64::try_from(i).unwrap())));
        assert_eq!(wide.node_count(), 2 * MAX_FILTER_NODES + 1);
        assert!(wide
            .check_limits()
            .unwrap_err()
            .to_string()
            .contains("nodes"));

        let long = field("a").is_in(0..=i64::try_from(MAX_IN_LIST_LEN).unwrap());
        assert!(long.check_limits().unwrap_err().to_string().contains("$in"));
        field("a")
            .is_in(1..=i64::try_from(MAX_IN_LIST_LEN).unwrap())
            .check_limits()
            .unwrap();
    }
}

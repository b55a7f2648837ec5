//! The best rows of a sorted page, kept while the matches are walked: at most the page's row
//! limit, and no more than its byte budget can use, whatever the number of matches.
//!
//! A max-heap by position keeps the worst row kept on top, the first to give way. A row gives
//! way when the heap is over the limit, or when the rows better than it already fill the byte
//! budget: a page takes rows in order until their bytes reach the budget, so such a row could
//! never be returned (and rows arriving later only push it further back).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use asterope_core::{compare_values, Key, Value};

/// A row's position in a sorted result: its sort value, then its key.
#[derive(Debug)]
pub(crate) struct Ranked {
    pub(crate) value: Value,
    pub(crate) key: Key,
    descending: bool,
}

impl Ranked {
    pub(crate) fn new(value: Value, key: Key, descending: bool) -> Ranked {
        Ranked {
            value,
            key,
            descending,
        }
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_value = compare_values(&self.value, &other.value);
        let by_value = if self.descending {
            by_value.reverse()
        } else {
            by_value
        };
        by_value.then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// A kept row: ordered by its position alone.
struct Kept<T> {
    ranked: Ranked,
    row: T,
    len: usize,
}

impl<T> Ord for Kept<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ranked.cmp(&other.ranked)
    }
}

impl<T> PartialOrd for Kept<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Kept<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ranked == other.ranked
    }
}

impl<T> Eq for Kept<T> {}

/// The best rows seen so far, bounded by a row limit and a byte budget.
pub(crate) struct TopK<T> {
    kept: BinaryHeap<Kept<T>>,
    bytes: usize,
    limit: usize,
    budget: usize,
    /// Whether a row was left out (the page has a next one).
    more: bool,
}

impl<T> TopK<T> {
    pub(crate) fn new(limit: usize, budget: usize) -> TopK<T> {
        TopK {
            kept: BinaryHeap::new(),
            bytes: 0,
            limit: limit.max(1),
            budget,
            more: false,
        }
    }

    /// Offers a row of `len` bytes at position `ranked`.
    pub(crate) fn push(&mut self, ranked: Ranked, row: T, len: usize) {
        self.bytes += len;
        self.kept.push(Kept { ranked, row, len });
        while let Some(worst) = self.kept.peek() {
            let over_limit = self.kept.len() > self.limit;
            let over_budget = self.bytes.saturating_sub(worst.len) >= self.budget;
            if !(over_limit || over_budget) {
                break;
            }
            if let Some(worst) = self.kept.pop() {
                self.bytes -= worst.len;
            }
            self.more = true;
        }
    }

    /// The page, best first: rows in order until their bytes reach the budget (at least one),
    /// and whether rows were left out.
    pub(crate) fn into_page(self) -> (Vec<(Ranked, T)>, bool) {
        let mut more = self.more;
        let mut page = Vec::with_capacity(self.kept.len());
        let mut bytes = 0;
        for kept in self.kept.into_sorted_vec() {
            if bytes >= self.budget {
                more = true;
                break;
            }
            bytes += kept.len;
            page.push((kept.ranked, kept.row));
        }
        (page, more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(value: i64, key: &str) -> Ranked {
        Ranked::new(Value::Int(value), Key::new(key).unwrap(), false)
    }

    /// Offers rows `(value, key, len)` and returns the page's keys and whether there is more.
    fn page(rows: &[(i64, &str, usize)], limit: usize, budget: usize) -> (Vec<String>, bool) {
        let mut top = TopK::new(limit, budget);
        for (value, key, len) in rows {
            top.push(ranked(*value, key), (), *len);
        }
        let (page, more) = top.into_page();
        (
            page.into_iter().map(|(r, ())| r.key.to_string()).collect(),
            more,
        )
    }

    #[test]
    fn keeps_the_best_rows_up_to_the_limit_ties_by_key() {
        let rows = [
            (5, "e", 1),
            (1, "b", 1),
            (3, "c", 1),
            (1, "a", 1),
            (9, "z", 1),
        ];
        assert_eq!(
            page(&rows, 3, 1000),
            (vec!["a".into(), "b".into(), "c".into()], true)
        );
        assert!(!page(&rows, 5, 1000).1);
    }

    #[test]
    fn a_page_ends_once_its_bytes_reach_the_budget() {
        let rows = [(4, "d", 40), (1, "a", 40), (3, "c", 40), (2, "b", 40)];
        // 40 + 40 reach 70: the third row does not fit, whatever the order rows came in.
        assert_eq!(page(&rows, 10, 70), (vec!["a".into(), "b".into()], true));
        // One row larger than the budget is still a page.
        assert_eq!(page(&[(1, "a", 500)], 10, 70), (vec!["a".into()], false));
    }
}

//! [`Predicate`]: the condition on one field's values (the right-hand side of
//! `{"field": ...}`) and its operator names in the JSON syntax. How a predicate is evaluated
//! lives in `eval`.

use crate::Value;

/// A condition on one field's values (the right-hand side of `{"field": ...}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// Equal to the operand (numbers across int/float; an array field also matches when any
    /// element is equal). `Eq(Nil)` also matches a missing field.
    Eq(Value),
    /// Not [`Predicate::Eq`]: matches a missing field.
    Ne(Value),
    /// Greater than the operand, within the operand's comparable class.
    Gt(Value),
    /// Greater than or equal to the operand, within the operand's comparable class.
    Gte(Value),
    /// Less than the operand, within the operand's comparable class.
    Lt(Value),
    /// Less than or equal to the operand, within the operand's comparable class.
    Lte(Value),
    /// Equal to any of the operands.
    In(Vec<Value>),
    /// Not [`Predicate::In`]: matches a missing field.
    Nin(Vec<Value>),
    /// `true`: the path reaches at least one value (null included); `false`: it reaches none.
    Exists(bool),
    /// A string value starting with the given prefix (bytewise); non-strings never match.
    Prefix(String),
    /// The inner predicate does not match (a missing field therefore matches `Not(Gt(..))`).
    Not(Box<Predicate>),
    /// Every predicate matches, each on its own (`{"$gt": 1, "$lt": 5}`); on an array field each
    /// may be satisfied by a different element, as in MongoDB.
    All(Vec<Predicate>),
}

impl Predicate {
    /// The operator name of this predicate in the JSON syntax (`"$eq"`, `"$gt"`, ...); `All` has
    /// none of its own and answers `"$all"`.
    pub fn operator_name(&self) -> &'static str {
        match self {
            Predicate::Eq(_) => "$eq",
            Predicate::Ne(_) => "$ne",
            Predicate::Gt(_) => "$gt",
            Predicate::Gte(_) => "$gte",
            Predicate::Lt(_) => "$lt",
            Predicate::Lte(_) => "$lte",
            Predicate::In(_) => "$in",
            Predicate::Nin(_) => "$nin",
            Predicate::Exists(_) => "$exists",
            Predicate::Prefix(_) => "$prefix",
            Predicate::Not(_) => "$not",
            Predicate::All(_) => "$all",
        }
    }
}

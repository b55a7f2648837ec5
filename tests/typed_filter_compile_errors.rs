//! The typed filters of `#[derive(asterope::Metadata)]` refuse at compile time what the JSON
//! syntax can only refuse (or silently match nothing) at run time: a field the struct does not
//! have, and an operand of another type than the field's. The expected compiler messages are
//! pinned in `tests/compile_fail/*.stderr`.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

#[test]
fn typed_filters_refuse_unknown_fields_and_mistyped_values() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}

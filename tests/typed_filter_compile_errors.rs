//! The typed filters of `#[derive(asterope::Metadata)]` refuse at compile time what the JSON
//! syntax can only refuse (or silently match nothing) at run time: a field the struct does not
//! have, and an operand of another type than the field's. The expected compiler messages are
//! pinned in `tests/compile_fail/*.stderr`.

#[test]
fn typed_filters_refuse_unknown_fields_and_mistyped_values() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}

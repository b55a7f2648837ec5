//! The JSON filter parser and query request parser: any input is a filter or an error, and a
//! parsed filter prints back to JSON that parses to the same filter.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = asterope_serialization::parse_filter(text) {
        let printed = asterope_serialization::filter_to_json(&filter);
        let again = asterope_serialization::filter_from_json(printed.clone())
            .expect("a printed filter parses");
        assert_eq!(asterope_serialization::filter_to_json(&again), printed);
        let _ = filter.matches(&asterope_core::Metadata::new());
    }
    if let Ok(json) = serde_json::from_str(text) {
        let _ = asterope_serialization::query_from_json(json);
    }
});

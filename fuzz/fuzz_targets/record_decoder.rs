//! The decoder of the metadata tree's version records: malformed bytes are an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asterope_storage::decode_record_for_fuzzing(data);
});

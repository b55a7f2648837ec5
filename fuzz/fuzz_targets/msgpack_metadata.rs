//! MessagePack metadata decoding: any bytes decode to a document or fail cleanly; a decoded
//! document that passes the limits re-encodes and decodes to itself.
#![no_main]
use asterope_core::Metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(metadata) = asterope_serialization::decode::<Metadata>(data, "metadata") {
        if let Ok(encoded) = asterope_serialization::validate_metadata(&metadata) {
            let back: Metadata =
                asterope_serialization::decode(&encoded, "metadata").expect("round trip");
            // NaN floats are not equal to themselves; compare the encodings instead.
            assert_eq!(
                asterope_serialization::encode(&back).expect("encode"),
                encoded
            );
        }
        let _ = asterope_serialization::metadata_to_json(&metadata);
    }
});

//! Request target and header parsing of the HTTP/2 server: path, query string, range,
//! version condition, digest and metadata headers. Nothing may panic.
#![no_main]
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xff: path, query, then header values in a fixed order.
    let mut parts = data.split(|&b| b == 0xff);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut headers = HeaderMap::new();
    for name in ["range", "x-asterope-if-version", "x-asterope-sha256", "x-asterope-meta"] {
        if let Some(Ok(value)) = parts.next().map(HeaderValue::from_bytes) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    asterope_network::parse_request_parts(&format!("/{path}"), &query, &headers);
});

//! Numbers as the protocol writes them (query parameters, headers, byte positions). The names
//! and bodies of the protocol are `asterope_serialization::wire`.

/// Parses a number of the protocol (a query parameter, a header, a byte position): ASCII
/// digits only. A sign, a space or anything else makes it `None`, so `+5` or ` 5` is never
/// read as 5.
pub fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

//! HTTP/2 client for an Asterope server, speaking the same `Store` API as the embedded database.
#![forbid(unsafe_code)]

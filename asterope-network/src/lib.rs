//! HTTP/2 server exposing an Asterope database (built on `asterope-storage`).
#![forbid(unsafe_code)]

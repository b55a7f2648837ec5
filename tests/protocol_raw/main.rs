//! The wire protocol seen by an independent HTTP/2 client (the `h2` crate directly, and curl
//! where installed): trailers, ranges, bad keys, truncated bodies, oversize metadata, wrong
//! checksums, auth, and the exact error replies.
//!
//! `client` is the raw HTTP/2 client and the server set-ups the tests share; each other module
//! holds the tests of one part of the protocol.
// Tests and benches may unwrap, index and cast freely: a panic there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/server.rs"]
mod server;

mod auth;
mod bodies;
mod client;
mod headers;
mod reads;
mod requests;
mod service;
mod uploads;

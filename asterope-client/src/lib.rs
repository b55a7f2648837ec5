//! The Asterope HTTP/2 client: the same [`Store`] API as the embedded database, over one
//! multiplexed HTTP/2 connection (cleartext with prior knowledge, or TLS with ALPN `h2`).
//!
//! Uploads stream from the caller's [`ByteStream`]; the client hashes them on the way and sends
//! the SHA-256 as an HTTP/2 trailer, which the server checks before it commits, so a body damaged
//! in transit is never stored. Downloads stream back and are verified against the recorded
//! SHA-256 at the end (whole-object reads, unless turned off): a mismatch ends the stream with
//! `corrupt`. Errors come back as the same [`Error`] variants and codes the server produced.
//!
//! ```no_run
//! # async fn demo() -> asterope_core::Result<()> {
//! use asterope_client::Client;
//! use asterope_core::{Key, StoreExt};
//!
//! let client = Client::builder("http://127.0.0.1:7878").token("secret").connect().await?;
//! let (info, bytes) = client.get_bytes(&Key::new("scans/ct-0001.dcm")?).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod connection;
mod reply;
mod streams;
mod transaction;

pub use client::{Client, ClientBuilder};

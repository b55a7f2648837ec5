//! The Asterope HTTP/2 server: an embedded [`Database`](asterope_storage::Database) served over
//! cleartext HTTP/2 with prior knowledge (h2c) or HTTP/2 over TLS (ALPN `h2`).
//!
//! Layers, from the socket up: [`serve`] accepts connections and owns shutdown; hyper owns
//! HTTP/2 framing and flow control; `routes` turns requests into `Store` calls; `body` adapts
//! request and response bodies to chunk streams; `status` maps error codes to HTTP statuses in
//! one place. Bodies stream in both directions with bounded buffers: a request body is written
//! to disk as it arrives (flow-control credit is released only as the store consumes chunks)
//! and a response streams zero-copy from the extent mapping.
//!
//! The wire protocol is documented in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod auth;
mod blocking;
mod body;
mod metrics;
mod request;
mod routes;
mod server;
mod status;
mod tls;
mod transactions;

pub use auth::{Access, Tokens};
#[doc(hidden)]
pub use routes::parse_request_parts;
pub use server::{serve, ServerConfig};
pub use status::http_status;
pub use tls::load_tls_config;

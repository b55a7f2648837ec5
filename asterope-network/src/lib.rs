//! The Asterope HTTP server: any [`Store`](asterope_core::Store) (the embedded database, in the
//! product) served over HTTP/2 and HTTP/1.1 on one port, cleartext (HTTP/2 with prior
//! knowledge) or over TLS (ALPN `h2` or `http/1.1`); the protocol is told from a connection's
//! first bytes.
//!
//! Layers, from the socket up: [`serve`] accepts connections and owns shutdown; hyper owns
//! HTTP/2 framing and flow control and HTTP/1.1 message framing; `routes` turns requests into
//! `ObjectOps` and `Store` calls; `body` adapts request and response bodies to chunk streams;
//! replies take their status from `Error::http_status`, the one table of the protocol;
//! [`openapi`] describes every route for clients. Bodies stream in both directions
//! with bounded buffers: a request body is written to disk as it arrives (flow-control credit
//! is released only as the store consumes chunks) and a response streams zero-copy from the
//! extent mapping.
//!
//! The wire protocol is documented in `docs/PROTOCOL.md` and, for its shapes, in the OpenAPI
//! document served at `GET /v1/openapi.json`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod auth;
mod blocking;
mod body;
mod cors;
mod linger;
mod metrics;
pub mod openapi;
mod request;
mod routes;
mod server;
mod tls;
mod transactions;

pub use auth::{Access, Tokens};
pub use cors::Cors;
#[doc(hidden)]
pub use routes::parse_request_parts;
pub use server::{serve, ServerConfig};
pub use tls::load_tls_config;

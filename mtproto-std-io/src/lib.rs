//! std drivers for [`mtproto_core`]: they own the sockets, the clock and the random source, and
//! hold no protocol rule: every MTProto decision is made by the core's state machines.
//!
//! - [`client::Client`]: a blocking client over [`std::net::TcpStream`];
//! - [`tokio_client`] (feature `tokio`): the same driver as one tokio task;
//! - [`ws`] (feature `websocket`; `wss://` with feature `tls`, see [`tls`]): both clients over
//!   `ws://…/apiws` URLs, and the server's `/apiws` endpoint;
//! - [`http`] (feature `http`; `https://` with feature `tls`): both clients over
//!   `http://…/api` URLs (long poll plus request lanes), and the server's `POST /api` endpoint;
//! - [`keyfile::KeyFile`]: the auth key persisted atomically, 0600, single-owner;
//! - [`limiter::AttemptLimiter`]: tdlib's connection-attempt limits with backoff and jitter.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use mtproto_core as core;

pub mod client;
pub mod clock;
pub mod driver;
pub mod keyfile;
pub mod limiter;
#[cfg(feature = "tokio")]
pub mod tokio_client;

pub use driver::{CallError, ClientConfig, ClientError, State};
#[cfg(feature = "cli")]
pub mod cli;
pub mod echo;
#[cfg(feature = "http")]
pub mod http;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
mod url;
mod wire;
#[cfg(feature = "websocket")]
pub mod ws;

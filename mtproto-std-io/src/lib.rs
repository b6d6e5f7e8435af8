//! std drivers for [`mtproto_core`]: they own the sockets, the clock and the random source, and
//! hold no protocol rule: every MTProto decision is made by the core's state machines.
//!
//! - [`client::Client`]: a blocking client over [`std::net::TcpStream`];
//! - [`tokio_client`] (feature `tokio`): the same driver as one tokio task;
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
pub mod server;

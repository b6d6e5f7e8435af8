//! The connection: one client and one server state machine stacking every layer — transport,
//! handshake, message encryption and the session — behind one sans-IO loop:
//!
//! ```text
//! bytes in  ─► handle_input(now, &[u8])           commands: invoke / cancel / ping / reconnect
//! bytes out ◄─ poll_transmit(now, &mut Vec<u8>)   events:   poll_event()
//! timers    ◄─ poll_timeout() ─► handle_timeout(now)
//! ```
//!
//! Time and randomness are inputs: each connection owns the caller's seeded
//! [`rand_core::CryptoRng`], and every call takes a [`Now`](crate::time::Now). Same seed, same
//! clock, same input bytes: same output bytes.
//!
//! # Example: a client and a server, in memory
//!
//! ```
//! use std::{cell::RefCell, rc::Rc};
//! use mtproto_core::connection::server::{MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent};
//! use mtproto_core::connection::{Connection, ConnectionConfig, Event, TransportConfig};
//! use mtproto_core::handshake::{RsaKeySet, RsaPrivateKey, ServerConfig};
//! use mtproto_core::time::{Instant, Now, UnixTime};
//! use mtproto_core::transport::Framing;
//! # use rand_core::SeedableRng;
//! let rng = |seed| rand_chacha::ChaCha20Rng::seed_from_u64(seed); // use OS-seeded CSPRNGs
//! let now = Now { mono: Instant::from_micros(0), unix: UnixTime::from_secs(1_700_000_000) };
//! let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
//! let config = ConnectionConfig::new(2, TransportConfig::plain(Framing::Intermediate), keys);
//! let mut client = Connection::new(config, rng(1), now);
//! let store = Rc::new(RefCell::new(MemoryKeyStore::default())); // keys outlive connections
//! let mut server = ServerConnection::new(ServerConnectionConfig::new(ServerConfig::demo()), store, rng(2));
//!
//! let request = client.invoke_raw(&[0x01, 0x00, 0xde, 0xc0, 42, 0, 0, 0]).unwrap(); // queued until the key exists
//! let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
//! let answer = 'run: loop {
//!     while client.poll_transmit(now, &mut c2s) {}                 // client -> wire
//!     server.handle_input(now, &c2s);
//!     c2s.clear();
//!     while let Some(ServerEvent::Request { id, body }) = server.poll_event() {
//!         server.respond(now, id, &body).unwrap();                 // an echo service
//!     }
//!     while server.poll_transmit(now, &mut s2c) {}                 // server -> wire
//!     client.handle_input(now, &s2c);
//!     s2c.clear();
//!     while let Some(event) = client.poll_event() {
//!         if let Event::RpcResult { id, body } = event {
//!             assert_eq!(id, request);
//!             break 'run body;
//!         }
//!     }
//! };
//! assert_eq!(answer, [0x01, 0x00, 0xde, 0xc0, 42, 0, 0, 0]);
//! ```
//!
//! - [`client::Connection`]: the client, with PFS, reconnects and resumable state.
//! - [`server::ServerConnection`] (feature `server`): the server end of one TCP connection, with
//!   a [`server::KeyStore`] that outlives connections.
//!
//! Both have an HTTP mode ([`TransportConfig::http`], `ServerConnection::new_http`): no byte
//! stream, one MTProto packet per HTTP body, requests and responses named by
//! [`HttpRequestId`](crate::transport::HttpRequestId); see
//! [`Connection::poll_http_request`] and [`crate::transport::http`].

pub mod client;
#[cfg(feature = "server")]
pub mod server;

pub use crate::session::{CloseReason, Event, InvokeError, RequestId};
pub use client::{Connection, ConnectionConfig, PfsConfig, ResumeState, TransportConfig};

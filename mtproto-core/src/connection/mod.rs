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

pub mod client;

pub use crate::session::{CloseReason, Event, InvokeError, RequestId};
pub use client::{Connection, ConnectionConfig, ResumeState, TransportConfig};

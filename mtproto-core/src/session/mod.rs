//! The session layer (`mtproto_description.md`, `mtproto_service_messages.md`,
//! `mtproto_service_messages_about_messages.md`): msg_ids and seq_nos from one server clock,
//! containers, acknowledgements, salts, the replay and time windows, resends and every service
//! message — as plaintext-level state machines with no crypto, transport or I/O of their own.
//!
//! [`crate::connection`] stacks them with the transport, the handshake and message encryption.

pub mod client;
pub mod container;
pub mod gzip;
pub mod msgid;
pub mod replay;
pub mod rpc_error;
#[cfg(feature = "server")]
pub mod server;

pub use client::{
    ClientSession, CloseReason, Event, Incoming, InvokeError, OutHeader, RequestId, SavedSession,
    SessionConfig, SessionStats,
};
pub use msgid::{MsgIdGen, SeqNo, ServerClock};
pub use replay::{Replay, ReplayWindow};
pub use rpc_error::RpcError;

#[cfg(test)]
mod client_tests;

//! std drivers for [`mtproto_core`]: they own the sockets and the clock, and hold no protocol logic.
//!
//! This crate is a placeholder until the session layer exists; it only re-exports the core so the
//! workspace layout is in place.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use mtproto_core as core;

//! Connections: every layer stacked (transport, handshake, message encryption, session) into
//! one sans-IO state machine per TCP connection. Bytes in with `handle_input`, bytes out with
//! `poll_transmit`, events with `poll_event`, timers with `poll_timeout` / `handle_timeout`.
#[cfg(feature = "server")]
pub mod server;

//! # mtproto-core
//!
//! Telegram's MTProto 2.0 as pure functions and state machines: `#![no_std]` + `alloc`, no clock,
//! no random source and no I/O inside. Time is passed in as [`time::Now`] values and randomness as a
//! caller's [`rand_core::CryptoRng`]; given the same seed and clock every machine here behaves
//! identically.
//!
//! Layers (imports only point down):
//! - [`crypto`]: AES-256-IGE, the MTProto 2.0 (and 1.0) KDFs, message encryption/decryption,
//!   handshake key derivations, key material types.
//! - [`tl`]: TL binary serialization and every type of the MTProto schema.
//! - [`transport`]: abridged, intermediate, padded, full, obfuscated2/MTProxy framings.
//! - [`handshake`]: auth key creation, client and server side, with PFS temporary keys.
//! - [`session`]: msg_id/seq_no, containers, acks, salts, replay window, service messages.
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// No panics from the wire: outside tests, nothing may unwrap, index, overflow or truncate
// silently. Every such operation is checked, saturating or wrapping by intent (see each module).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod connection;
pub mod crypto;
pub mod handshake;
pub mod session;
pub mod time;
pub mod tl;
pub mod transport;

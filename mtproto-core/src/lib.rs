//! # mtproto-core
//!
//! Telegram's MTProto 2.0 as pure functions and state machines: `#![no_std]` + `alloc`, no clock,
//! no random source and no I/O inside. Time is passed in as [`time::Now`] values and randomness as a
//! caller's [`rand_core::CryptoRng`]; given the same seed and clock every machine here behaves
//! identically.
//!
//! # Randomness
//!
//! Every function that needs randomness takes `rng: &mut R` with
//! `R: rand_core::CryptoRng + ?Sized`, so a concrete generator and a `&mut dyn CryptoRng` both
//! fit everywhere. The crate uses (and re-exports, as [`rand_core`]) the `rand_core` of today's
//! `rand` (0.10), so its OS-seeded generators plug in directly:
//!
//! ```
//! use mtproto_core::handshake::{ClientConfig, ClientHandshake, RsaKeySet};
//! use mtproto_core::rand_core::CryptoRng;
//! use mtproto_core::transport::{Codec, Framing, Role, Transport};
//!
//! // rand 0.10: a thread-local CSPRNG seeded from the OS (or `rand::make_rng::<StdRng>()`).
//! let mut rng = rand::rng();
//! let mut client = ClientHandshake::new(ClientConfig::new(RsaKeySet::telegram_production(), 2));
//! let req_pq = client.start(&mut rng).expect("fresh machine");
//! let wire_body = mtproto_core::plain::wrap(0x1234_5678_0000_0004, &req_pq);
//!
//! // The same generator behind `dyn`, for the transport as for the handshake.
//! let dyn_rng: &mut dyn CryptoRng = &mut rng;
//! let mut transport = Transport::Plain(Codec::new(Framing::PaddedIntermediate, Role::Client));
//! let mut wire = Vec::new();
//! transport.encode(&wire_body, false, dyn_rng, &mut wire).expect("small body");
//! assert!(wire.len() > wire_body.len());
//! ```
//!
//! Layers (imports only point down):
//! - [`crypto`]: AES-256-IGE, the MTProto 2.0 (and 1.0) KDFs, message encryption/decryption,
//!   the key derivations used while creating an auth key ([`crypto::handshake_kdf`]), key
//!   material types.
//! - [`tl`]: TL binary serialization and every type of the MTProto schema.
//! - [`transport`]: abridged, intermediate, padded, full, obfuscated2/MTProxy framings.
//! - [`plain`]: the unencrypted message envelope (`auth_key_id = 0`), used by the handshake and
//!   the session layer.
//! - [`handshake`]: auth key creation, client and server side, with PFS temporary keys.
//! - [`session`]: msg_id/seq_no, containers, acks, salts, replay window, service messages.
//! - [`connection`]: the client (and server) state machines stacking every layer.
#![no_std]
#![deny(missing_docs)]
// `unsafe` is allowed in one module only: `crypto::x86`, the AES-NI/SHA-NI message kernel (CPU
// intrinsics behind run-time feature detection). Everything else is safe Rust.
#![deny(unsafe_code)]
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

/// The big integer type of the RSA and DH signatures ([`handshake::rsa`], [`handshake::dh`]).
pub use num_bigint_dig::BigUint;
/// The RNG traits of this crate's signatures (the `rand_core` of `rand` 0.10).
pub use rand_core;

pub mod connection;
pub mod crypto;
pub mod handshake;
pub mod plain;
pub mod session;
pub mod time;
pub mod tl;
pub mod transport;

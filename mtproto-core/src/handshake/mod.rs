//! Auth key creation (`mtproto_auth_key.md`) as client and server state machines, with PFS
//! temporary keys (`api_pfs.md`).
//!
//! Both machines are sans-IO: they take the peer's TL body in and hand the next TL body out. The
//! caller owns the transport, the clock (a [`UnixTime`](crate::time::UnixTime) per call) and the
//! random source (a [`rand_core::CryptoRng`] per call). Same RNG stream and same inputs give the
//! same bytes.
//!
//! # The client loop
//!
//! A driver sends each body in an unencrypted message ([`plain::wrap`](crate::plain::wrap)), unwraps the answer and
//! feeds it back until [`ClientStep::Done`]. Here our own server (with its demo key) stands in
//! for the network:
//!
//! ```
//! use mtproto_core::handshake::{
//!     ClientConfig, ClientHandshake, ClientStep, HandshakeError, RsaKeySet, ServerConfig,
//!     ServerHandshake, ServerStep,
//! };
//! use mtproto_core::plain;
//! use mtproto_core::time::UnixTime;
//! # use rand_core::SeedableRng;
//! # fn main() -> Result<(), HandshakeError> {
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1); // use an OS-seeded CSPRNG
//! let now = UnixTime::from_secs(1_700_000_000); // read your clock at each step
//!
//! let server_config = ServerConfig::demo();
//! let demo_key = server_config.keys[0].public_key().clone();
//! let mut server = ServerHandshake::new(server_config);
//! // Telegram's production key plus ours; DC 2; permanent key (`.temporary(secs)` for PFS).
//! let keys = RsaKeySet::telegram_production().with(demo_key);
//! let mut client = ClientHandshake::new(ClientConfig::new(keys, 2));
//!
//! let mut out = client.start(&mut rng)?; // req_pq_multi
//! let result = loop {
//!     let wire = plain::wrap(plain::msg_id_from_time(now), &out); // send this...
//!     let (_, body) = plain::unwrap(&wire).expect("well-formed");
//!     let answer = match server.handle(now, body, &mut rng)? {
//!         ServerStep::Send(a) | ServerStep::Done { reply: a, .. } => a,
//!     }; // ...and this is what comes back
//!     match client.handle(now, &answer, &mut rng)? {
//!         ClientStep::Send(next) => out = next, // req_DH_params, set_client_DH_params
//!         ClientStep::Done(result) => break result,
//!     }
//! };
//! assert_eq!(result.time_offset, 0);
//! let _salt = result.server_salt; // first server salt for the new session
//! # Ok(()) }
//! ```
//!
//! Any error is final for the machine (state becomes failed; later calls return
//! [`HandshakeError::InvalidState`]): per `mtproto_security_guidelines.md` ("Behavior in case
//! of mismatch") the message is discarded and the whole key generation restarted on a new
//! connection.
//!
//! The server ([`server::ServerHandshake`], feature `server`) is driven the same way with the
//! client's messages.
//!
//! # Secrets, wiping and side channels
//!
//! The DH secrets `a`/`b` are kept as zeroized byte arrays; every big-integer form of them, the
//! shared `g_ab`, the RSA private components (`p`, `q`, CRT exponents, `q^-1`) and the RSA
//! plaintexts (`key_aes_encrypted`, the decrypted block) are held in
//! [`zeroize::Zeroizing<BigUint>`](zeroize::Zeroizing) (num-bigint-dig's `zeroize` feature)
//! and wiped on drop, as are the byte vectors they are serialized through.
//!
//! Known limitations (not fixed here):
//! - **`modpow` is not constant time.** num-bigint-dig's modular exponentiation (used for
//!   `g^x`, `g_ab` and RSA decryption) has secret-dependent timing and memory access. The
//!   exposure is one exponentiation per handshake with a fresh exponent on the client. The
//!   server's RSA decryption of attacker-chosen ciphertexts with its long-lived key is
//!   blinded with a fresh random factor per call ([`RsaPrivateKey`]), which hides the input
//!   from the exponentiation but does not make the exponentiation itself constant time.
//! - **Library temporaries are not wiped.** Intermediates allocated inside num-bigint-dig
//!   (Montgomery buffers and products in `modpow`, the remainder/multiplication results of the
//!   CRT before we wrap them, old buffers freed when a `BigUint` grows) are released without
//!   being zeroized; the crate offers no hook for that. Values copied by move (e.g. the 256-byte
//!   key handed to [`AuthKey`](crate::crypto::AuthKey)) may leave stack copies behind.
//!
//! # No panics from the wire
//!
//! This module denies `clippy::indexing_slicing`, `clippy::arithmetic_side_effects` and the
//! truncating / sign-changing `as` casts outside tests. Big-integer arithmetic goes through a
//! small internal helper whose subtraction, remainder and `modpow` return `None` instead of
//! panicking (num-bigint-dig panics on underflow and on a zero modulus). TL `long` ids, salts
//! and fingerprints are `i64` throughout, as on the wire (no reinterpreting casts).
//!
//! Modules: [`pq`] (factorization), [`prime`] (Miller–Rabin), [`dh`] (DH parameter checks),
//! [`rsa`] (keys, RSA_PAD), [`client`], [`server`], [`pfs`] (binding a temporary key to a permanent one).

use core::fmt;

use crate::tl::TlError;

mod bn;
pub mod client;
pub mod dh;
pub mod pfs;
pub mod pq;
pub mod prime;
pub mod rsa;
#[cfg(feature = "server")]
pub mod server;
#[cfg(all(test, feature = "server"))]
mod tests;

pub use client::{AuthKeyResult, ClientConfig, ClientHandshake, ClientStep};
pub use dh::DhError;
pub use pq::PqError;
pub use rsa::{RsaError, RsaKeySet, RsaPrivateKey, RsaPublicKey};
#[cfg(feature = "server")]
pub use server::{ServerAuthKey, ServerConfig, ServerHandshake, ServerStep};

/// Which kind of key to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A permanent key (`p_q_inner_data_dc`).
    Permanent,
    /// A temporary key for PFS (`p_q_inner_data_temp_dc`), valid for `expires_in` seconds.
    Temporary {
        /// Lifetime in seconds requested from the server.
        expires_in: u32,
    },
}

/// RSA key fingerprints (TL `long`s) carried by [`HandshakeError::UnknownFingerprint`]: the
/// first [`Fingerprints::CAPACITY`] of a list and the length of the whole list. Inline and
/// `Copy`, so the error stays `Copy`.
///
/// `Display` lists each as the signed decimal `long` (the form `rsa_keys_and_dh_prime.md`,
/// tdlib and grammers use) with its 64 bits in hex, e.g.
/// `-3414540481677951611 (0xd09d1d85de64fd85)`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fingerprints {
    first: [i64; Fingerprints::CAPACITY],
    /// Entries of `first` in use (at most `CAPACITY`).
    kept: usize,
    /// Length of the list they came from.
    total: usize,
}

impl Fingerprints {
    /// How many fingerprints are kept (Telegram's `resPQ` lists three).
    pub const CAPACITY: usize = 4;

    /// The first [`Self::CAPACITY`] of `all`, remembering `all.len()`.
    pub fn from_slice(all: &[i64]) -> Self {
        let mut first = [0i64; Self::CAPACITY];
        let mut kept = 0usize;
        for (d, s) in first.iter_mut().zip(all) {
            *d = *s;
            kept = kept.saturating_add(1);
        }
        Self {
            first,
            kept,
            total: all.len(),
        }
    }

    /// The kept fingerprints, in the order offered.
    pub fn as_slice(&self) -> &[i64] {
        self.first.get(..self.kept).unwrap_or(&[])
    }

    /// How many fingerprints were offered in all (may exceed [`Self::CAPACITY`]).
    pub fn total(&self) -> usize {
        self.total
    }
}

impl fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprints({self})")
    }
}

impl fmt::Display for Fingerprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total == 0 {
            return f.write_str("none");
        }
        for (i, fp) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{fp} ({:#018x})", fp.cast_unsigned())?;
        }
        let more = self.total.saturating_sub(self.kept);
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        Ok(())
    }
}

/// Why a handshake step failed. Each key-exchange check of `mtproto_auth_key.md` and
/// `mtproto_security_guidelines.md` has its own variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The message is not valid TL for what this step expects.
    Tl(TlError),
    /// A well-formed message of the wrong kind for this step.
    UnexpectedMessage,
    /// The machine is finished or failed, or `start` was not called / called twice.
    InvalidState,
    /// `nonce` differs from the one chosen by the client.
    NonceMismatch,
    /// `server_nonce` differs from the one in `resPQ`.
    ServerNonceMismatch,
    /// The `new_nonce_hash` of `server_DH_params_fail` is not the low 128 bits of
    /// SHA1(new_nonce).
    NewNonceMismatch,
    /// `new_nonce_hash1/2/3` in `dh_gen_*` is wrong.
    NewNonceHashMismatch,
    /// None of the offered RSA key fingerprints is one we know. Client: `offered` are the
    /// fingerprints the server listed in `resPQ` and none is in [`ClientConfig::keys`] (e.g. a
    /// test DC, which needs [`RsaPublicKey::telegram_test`]). Server: `offered` is the one the
    /// client named in `req_DH_params`.
    UnknownFingerprint {
        /// The fingerprints offered (the first [`Fingerprints::CAPACITY`] of them).
        offered: Fingerprints,
    },
    /// `pq` could not be decomposed.
    Pq(PqError),
    /// Server: `p`, `q` or `pq` sent by the client are not the ones from `resPQ`.
    PqMismatch,
    /// RSA_PAD encryption or decryption failed.
    Rsa(RsaError),
    /// The encrypted answer/data is not a positive multiple of 16 bytes.
    EncryptedLength,
    /// SHA-1 in `answer_with_hash` / `data_with_hash` does not match.
    AnswerHashMismatch,
    /// More than 15 padding bytes after the hashed answer/data.
    AnswerPaddingTooLong,
    /// A Diffie–Hellman parameter check failed.
    Dh(DhError),
    /// The server answered `server_DH_params_fail`.
    ServerDhParamsFail,
    /// The server answered `dh_gen_fail` (with a correct `new_nonce_hash3`).
    DhGenFail,
    /// More `dh_gen_retry` answers than the configured bound.
    TooManyRetries,
    /// Server: `retry_id` is neither 0 (first attempt) nor the previous key's `aux_hash`.
    RetryIdMismatch,
    /// Server: the `dc` in the inner data is not the expected one.
    DcMismatch,
    /// Server: a temporary key with `expires_in <= 0` or above the server's maximum.
    BadExpiresIn,
    /// Server: could not produce a DH key (`g_a` out of range too often, or key-id collisions).
    KeyGeneration,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tl(e) => write!(f, "malformed handshake message: {e}"),
            Self::UnexpectedMessage => f.write_str("unexpected handshake message"),
            Self::InvalidState => f.write_str("handshake is not in a state to accept this"),
            Self::NonceMismatch => f.write_str("nonce mismatch"),
            Self::ServerNonceMismatch => f.write_str("server_nonce mismatch"),
            Self::NewNonceMismatch => f.write_str("new_nonce mismatch"),
            Self::NewNonceHashMismatch => f.write_str("new_nonce_hash mismatch"),
            Self::UnknownFingerprint { offered } => {
                write!(
                    f,
                    "no known RSA key among the offered fingerprints: {offered}"
                )
            }
            Self::Pq(e) => write!(f, "pq: {e}"),
            Self::PqMismatch => f.write_str("p, q or pq do not match resPQ"),
            Self::Rsa(e) => write!(f, "RSA: {e}"),
            Self::EncryptedLength => f.write_str("encrypted part is not a multiple of 16 bytes"),
            Self::AnswerHashMismatch => f.write_str("SHA-1 of the decrypted answer mismatches"),
            Self::AnswerPaddingTooLong => {
                f.write_str("decrypted answer has 16 or more padding bytes")
            }
            Self::Dh(e) => write!(f, "DH: {e}"),
            Self::ServerDhParamsFail => f.write_str("server answered server_DH_params_fail"),
            Self::DhGenFail => f.write_str("server answered dh_gen_fail"),
            Self::TooManyRetries => f.write_str("too many dh_gen_retry answers"),
            Self::RetryIdMismatch => f.write_str("retry_id mismatch"),
            Self::DcMismatch => f.write_str("unexpected dc id"),
            Self::BadExpiresIn => f.write_str("invalid expires_in for a temporary key"),
            Self::KeyGeneration => f.write_str("could not generate a DH key"),
        }
    }
}

impl core::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Tl(e) => Some(e),
            Self::Pq(e) => Some(e),
            Self::Rsa(e) => Some(e),
            Self::Dh(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TlError> for HandshakeError {
    fn from(e: TlError) -> Self {
        Self::Tl(e)
    }
}
impl From<PqError> for HandshakeError {
    fn from(e: PqError) -> Self {
        Self::Pq(e)
    }
}
impl From<RsaError> for HandshakeError {
    fn from(e: RsaError) -> Self {
        Self::Rsa(e)
    }
}
impl From<DhError> for HandshakeError {
    fn from(e: DhError) -> Self {
        Self::Dh(e)
    }
}

/// Shared helpers of the two machines.
pub(crate) mod common {
    use alloc::vec::Vec;
    use num_bigint_dig::BigUint;
    use rand_core::CryptoRng;
    use zeroize::Zeroizing;

    use super::dh::{check_public_value, to_256_be};
    use super::{HandshakeError, bn};
    use crate::crypto::{ct_eq, ige, sha1};
    use crate::tl::{Deserialize, Reader, TlError};

    /// How many times a side redraws its DH secret when `g^x` falls out of range (probability
    /// about 2^-63 each; only a broken RNG gets near the bound).
    pub(crate) const MAX_SECRET_DRAWS: usize = 8;

    /// Draws a 2048-bit secret `x` and returns `(x, g^x mod p)` with `g^x` in the allowed range.
    /// `p` must be a checked 2048-bit prime (a zero or short `p` only ever gives
    /// [`HandshakeError::KeyGeneration`]).
    pub(crate) fn dh_keypair<R: CryptoRng + ?Sized>(
        g: u32,
        p: &BigUint,
        rng: &mut R,
    ) -> Result<(Zeroizing<[u8; 256]>, BigUint), HandshakeError> {
        let g = BigUint::from(g);
        for _ in 0..MAX_SECRET_DRAWS {
            let mut x = Zeroizing::new([0u8; 256]);
            rng.fill_bytes(x.as_mut());
            let exp = Zeroizing::new(BigUint::from_bytes_be(x.as_ref()));
            let gx = bn::modpow(&g, &exp, p).ok_or(HandshakeError::KeyGeneration)?;
            if check_public_value(&gx, p).is_ok() {
                return Ok((x, gx));
            }
        }
        Err(HandshakeError::KeyGeneration)
    }

    /// `peer^x mod p` as 256 bytes (`p` nonzero: checked by the caller's `check_public_value`).
    pub(crate) fn dh_shared(
        peer: &BigUint,
        x: &[u8; 256],
        p: &BigUint,
    ) -> Result<Zeroizing<[u8; 256]>, HandshakeError> {
        let exp = Zeroizing::new(BigUint::from_bytes_be(x));
        let shared =
            Zeroizing::new(bn::modpow(peer, &exp, p).ok_or(HandshakeError::KeyGeneration)?);
        Ok(Zeroizing::new(to_256_be(&shared)))
    }

    /// `SHA1(data) + data + (0..15 random bytes)` to a multiple of 16, AES-256-IGE encrypted.
    pub(crate) fn encrypt_with_hash<R: CryptoRng + ?Sized>(
        data: &[u8],
        key: &[u8; 32],
        iv: &[u8; 32],
        rng: &mut R,
    ) -> Result<Vec<u8>, HandshakeError> {
        // Only our own TL bodies come here (a few hundred bytes); the checks keep an absurd length
        // an error rather than a wrapped size.
        let len = data
            .len()
            .checked_add(20)
            .ok_or(HandshakeError::EncryptedLength)?;
        let padded = len
            .checked_next_multiple_of(16)
            .ok_or(HandshakeError::EncryptedLength)?;
        let mut buf = Vec::with_capacity(padded);
        buf.extend_from_slice(&sha1(&[data]));
        buf.extend_from_slice(data);
        buf.resize(padded, 0);
        if let Some(pad) = buf.get_mut(len..) {
            rng.fill_bytes(pad);
        }
        ige::aes256_ige_encrypt(key, iv, &mut buf).map_err(|_| HandshakeError::EncryptedLength)?;
        Ok(buf)
    }

    /// Decrypts `encrypted` (AES-256-IGE) into `SHA1(data) + data + padding`, finds where
    /// `data` ends with `measure` (a TL parse of the expected type returning the bytes used),
    /// checks the SHA-1 over exactly those bytes (constant time) and that at most 15 padding
    /// bytes follow (`mtproto_security_guidelines.md`, "Checking SHA1 hash values"). Returns
    /// `data`, ready for `from_bytes`.
    pub(crate) fn decrypt_with_hash(
        encrypted: &[u8],
        key: &[u8; 32],
        iv: &[u8; 32],
        measure: impl FnOnce(&[u8]) -> Result<usize, TlError>,
    ) -> Result<SecretVec, HandshakeError> {
        if encrypted.is_empty() || !encrypted.len().is_multiple_of(16) {
            return Err(HandshakeError::EncryptedLength);
        }
        let mut buf = SecretVec(encrypted.to_vec());
        ige::aes256_ige_decrypt(key, iv, &mut buf).map_err(|_| HandshakeError::EncryptedLength)?;
        let (hash, rest) = buf
            .split_at_checked(20)
            .ok_or(HandshakeError::EncryptedLength)?;
        let used = measure(rest)?;
        let body = rest.get(..used).ok_or(HandshakeError::EncryptedLength)?;
        if !ct_eq(&sha1(&[body]), hash) {
            return Err(HandshakeError::AnswerHashMismatch);
        }
        if rest.len().saturating_sub(used) >= 16 {
            return Err(HandshakeError::AnswerPaddingTooLong);
        }
        Ok(SecretVec(body.to_vec()))
    }

    /// `measure` for [`decrypt_with_hash`]: how many bytes one `T` occupies at the start of `buf`.
    pub(crate) fn tl_len<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<usize, TlError> {
        let mut r = Reader::new(buf)?;
        T::deserialize(&mut r)?;
        Ok(r.position())
    }

    /// A byte vector wiped on drop (zeroize's `Vec` support needs its `alloc` feature, which the
    /// workspace does not enable).
    pub(crate) struct SecretVec(pub(crate) Vec<u8>);

    impl Drop for SecretVec {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(self.0.as_mut_slice());
        }
    }

    impl core::ops::Deref for SecretVec {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            &self.0
        }
    }

    impl core::ops::DerefMut for SecretVec {
        fn deref_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
    }

    /// Constant-time comparison of a received 16-byte value with the expected one.
    pub(crate) fn same16(a: &[u8; 16], b: &[u8; 16]) -> bool {
        ct_eq(a, b)
    }

    /// Minimal big-endian bytes of a `u64` (as `p`, `q`, `pq` travel).
    pub(crate) fn u64_be_min(v: u64) -> Vec<u8> {
        let b = v.to_be_bytes();
        let start = b.iter().position(|&x| x != 0).unwrap_or(7);
        b.get(start..).unwrap_or(&[]).to_vec()
    }
}

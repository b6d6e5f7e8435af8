//! MTProto 1.0 message encryption (`mtproto_description_v1.md`). Deprecated for traffic; kept
//! only for `bind_auth_key_inner` (`method_auth.bindTempAuthKey.md`, PFS), which is encrypted
//! "in the usual way, but with MTProto v1" using the permanent key.
//!
//! ```text
//! msg_key = substr(SHA1(plaintext without padding), 4, 16)
//! sha1_a = SHA1(msg_key + substr(auth_key, x, 32))
//! sha1_b = SHA1(substr(auth_key, 32+x, 16) + msg_key + substr(auth_key, 48+x, 16))
//! sha1_c = SHA1(substr(auth_key, 64+x, 32) + msg_key)
//! sha1_d = SHA1(msg_key + substr(auth_key, 96+x, 32))
//! aes_key = substr(sha1_a, 0, 8) + substr(sha1_b, 8, 12) + substr(sha1_c, 4, 12)
//! aes_iv  = substr(sha1_a, 8, 12) + substr(sha1_b, 0, 8) + substr(sha1_c, 16, 4)
//!           + substr(sha1_d, 0, 8)
//! ```
//!
//! The plaintext is padded with 0..15 random bytes to a multiple of 16 (padding NOT hashed).

use super::message::{DecryptError, EXTERNAL_HEADER_LEN, INTERNAL_HEADER_LEN, peek_auth_key_id};
use super::{AuthKey, Side, ige, sha1};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

/// Constructor id of `bind_auth_key_inner#75a3f765`.
pub const BIND_AUTH_KEY_INNER_ID: u32 = 0x75a3_f765;
/// Serialized size of `bind_auth_key_inner` (id + nonce + 3 longs + int).
pub const BIND_AUTH_KEY_INNER_LEN: usize = 40;
/// [`BIND_AUTH_KEY_INNER_LEN`] as the `msg_len:int32` header field.
const BIND_AUTH_KEY_INNER_LEN_FIELD: u32 = 40;
const _: () = assert!(BIND_AUTH_KEY_INNER_LEN_FIELD as usize == BIND_AUTH_KEY_INNER_LEN);
/// Shortest v1 message: external header + internal header.
const MIN_LEN: usize = EXTERNAL_HEADER_LEN + INTERNAL_HEADER_LEN;

/// v1 `msg_key`: bytes 4..20 (the 128 lower-order bits) of SHA1 of the unpadded plaintext.
pub fn msg_key(plaintext: &[u8]) -> [u8; 16] {
    let h = sha1(&[plaintext]);
    *h.last_chunk::<16>().unwrap_or(&[0; 16])
}

/// Copies `src[from..from + n]` into `dst[at..at + n]` (all constant offsets inside 20/32-byte
/// arrays; out-of-range would be a bug here, and is then simply skipped).
fn put(dst: &mut [u8; 32], at: usize, src: &[u8; 20], from: usize, n: usize) {
    let d = dst.get_mut(at..).and_then(|d| d.get_mut(..n));
    let s = src.get(from..).and_then(|s| s.get(..n));
    if let (Some(d), Some(s)) = (d, s) {
        d.copy_from_slice(s);
    }
}

/// `(aes_key, aes_iv)`, wiped when dropped.
pub type KeyIv = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);

/// The MTProto 1.0 KDF: `(aes_key, aes_iv)` from `auth_key` and a v1 `msg_key`, wiped on drop.
pub fn kdf(key: &AuthKey, side: Side, msg_key: &[u8; 16]) -> KeyIv {
    let a = Zeroizing::new(sha1(&[msg_key, key.substr_x(0, side, 32)]));
    let b = Zeroizing::new(sha1(&[
        key.substr_x(32, side, 16),
        msg_key,
        key.substr_x(48, side, 16),
    ]));
    let c = Zeroizing::new(sha1(&[key.substr_x(64, side, 32), msg_key]));
    let d = Zeroizing::new(sha1(&[msg_key, key.substr_x(96, side, 32)]));
    let mut aes_key = Zeroizing::new([0u8; 32]);
    put(&mut aes_key, 0, &a, 0, 8);
    put(&mut aes_key, 8, &b, 8, 12);
    put(&mut aes_key, 20, &c, 4, 12);
    let mut aes_iv = Zeroizing::new([0u8; 32]);
    put(&mut aes_iv, 0, &a, 8, 12);
    put(&mut aes_iv, 12, &b, 0, 8);
    put(&mut aes_iv, 20, &c, 16, 4);
    put(&mut aes_iv, 24, &d, 0, 8);
    (aes_key, aes_iv)
}

/// Encrypts one v1 message: `auth_key_id ‖ msg_key ‖ AES-256-IGE(plaintext ‖ 0..15 random
/// bytes)`. `plaintext` is the complete unpadded inner message (its 32-byte header included);
/// `side` is the sender.
pub fn encrypt<R>(key: &AuthKey, side: Side, plaintext: &[u8], rng: &mut R) -> Vec<u8>
where
    R: CryptoRng + ?Sized,
{
    let mk = msg_key(plaintext);
    // 0..=15 bytes of padding up to a whole number of blocks.
    let pad_len = plaintext.len().wrapping_neg() % 16;
    // A slice holds at most isize::MAX bytes, so this sum cannot saturate.
    let total = EXTERNAL_HEADER_LEN
        .saturating_add(plaintext.len())
        .saturating_add(pad_len);
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&key.id().to_le_bytes());
    out.extend_from_slice(&mk);
    out.extend_from_slice(plaintext);
    let pad_start = out.len();
    out.resize(total, 0);
    if let Some(pad) = out.get_mut(pad_start..) {
        rng.fill_bytes(pad);
    }
    let (aes_key, aes_iv) = kdf(key, side, &mk);
    if let Some(body) = out.get_mut(EXTERNAL_HEADER_LEN..) {
        // Length is a multiple of 16 by construction.
        let _ = ige::aes256_ige_encrypt(&aes_key, &aes_iv, body);
    }
    out
}

/// Decrypts and verifies one v1 message in place; returns the unpadded plaintext (32-byte
/// header ‖ data). `side` is the sender.
///
/// v1 hashes the plaintext *without* its padding, so the hashed length comes from the decrypted
/// (secret) length field. To keep the work independent of it, every length the field could
/// validly hold is hashed — 0..=15 bytes of padding and a whole number of words leave at most
/// four, `len - 12`, `len - 8`, `len - 4`, `len`, one SHA-1 over the longest prefix finalized at
/// each — and the one the field names is selected in constant time. The work depends only on
/// the (public) buffer length; every failure after the `auth_key_id` check is the same opaque
/// [`DecryptError::Rejected`].
pub fn decrypt<'a>(key: &AuthKey, side: Side, buf: &'a mut [u8]) -> Result<&'a [u8], DecryptError> {
    use subtle::{ConditionallySelectable, ConstantTimeEq};

    if buf.len() < MIN_LEN {
        return Err(DecryptError::TooShort);
    }
    let (outer, plaintext) = buf
        .split_at_mut_checked(EXTERNAL_HEADER_LEN)
        .ok_or(DecryptError::TooShort)?;
    if !plaintext.len().is_multiple_of(16) {
        return Err(DecryptError::NotBlockAligned);
    }
    if peek_auth_key_id(outer) != Some(key.id()) {
        return Err(DecryptError::WrongAuthKeyId);
    }
    let mk: [u8; 16] = outer
        .get(8..24)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecryptError::TooShort)?;
    let (aes_key, aes_iv) = kdf(key, side, &mk);
    ige::aes256_ige_decrypt(&aes_key, &aes_iv, plaintext)
        .map_err(|_| DecryptError::NotBlockAligned)?;
    let plaintext: &'a [u8] = plaintext;

    // The `msg_len` field (secret until the msg_key matches): compared, never branched on.
    let field = plaintext
        .get(28..32)
        .and_then(|s| s.first_chunk::<4>())
        .map_or(u32::MAX, |b| u32::from_le_bytes(*b));
    let mut hasher = Sha1::new();
    let mut hashed = 0usize;
    let mut matched = subtle::Choice::from(0);
    let mut data_len = 0u32;
    for padding in [12usize, 8, 4, 0] {
        // Which candidates exist depends on the public buffer length only.
        let Some(candidate) = plaintext
            .len()
            .checked_sub(padding)
            .filter(|&n| n >= INTERNAL_HEADER_LEN)
        else {
            continue;
        };
        let more = plaintext
            .get(hashed..candidate)
            .ok_or(DecryptError::Rejected)?;
        absorb(&mut hasher, more);
        hashed = candidate;
        let digest = finalize(hasher.clone());
        let candidate_mk = digest.last_chunk::<16>().ok_or(DecryptError::Rejected)?;
        // candidate >= 32 and the plaintext is at most a slice's length: both fit a u32 unless
        // the buffer is over 4 GiB, which then simply never matches.
        let candidate_u32 = u32::try_from(candidate).unwrap_or(u32::MAX);
        let length = candidate.saturating_sub(INTERNAL_HEADER_LEN);
        let length_matches =
            u32::try_from(length).map_or(subtle::Choice::from(0), |l| field.ct_eq(&l));
        let this = length_matches & candidate_mk.ct_eq(&mk);
        data_len.conditional_assign(&candidate_u32, this);
        matched |= this;
    }
    if !bool::from(matched) {
        return Err(DecryptError::Rejected);
    }
    // Authenticated now: the length is no longer secret.
    plaintext
        .get(..usize::try_from(data_len).map_err(|_| DecryptError::Rejected)?)
        .ok_or(DecryptError::Rejected)
}

/// Feeds `data` to the SHA-1 of [`decrypt`] (counted in unit tests, see `sha1_meter`).
fn absorb(h: &mut Sha1, data: &[u8]) {
    #[cfg(test)]
    super::sha1_meter::record(data.len(), 0);
    h.update(data);
}

/// Finishes one SHA-1 of [`decrypt`] (counted in unit tests, see `sha1_meter`).
fn finalize(h: Sha1) -> [u8; 20] {
    #[cfg(test)]
    super::sha1_meter::record(0, 1);
    h.finalize().into()
}

/// Builds and v1-encrypts the `auth.bindTempAuthKey` `encrypted_message`
/// (`method_auth.bindTempAuthKey.md`): `random:int128 ‖ msg_id ‖ seqno = 0 ‖ msg_len = 40 ‖
/// bind_auth_key_inner`, encrypted client→server with the PERMANENT key. `msg_id` must be the
/// id of the request that carries it; `bind_auth_key_inner` is its 40-byte serialization.
pub fn encrypt_bind_auth_key_inner<R>(
    perm_key: &AuthKey,
    msg_id: i64,
    bind_auth_key_inner: &[u8; BIND_AUTH_KEY_INNER_LEN],
    rng: &mut R,
) -> Vec<u8>
where
    R: CryptoRng + ?Sized,
{
    let mut plaintext = [0u8; INTERNAL_HEADER_LEN + BIND_AUTH_KEY_INNER_LEN];
    let (random, rest) = plaintext.split_at_mut(16);
    rng.fill_bytes(random);
    let (id, rest) = rest.split_at_mut(8);
    id.copy_from_slice(&msg_id.to_le_bytes());
    let (seqno, rest) = rest.split_at_mut(4);
    seqno.copy_from_slice(&0i32.to_le_bytes());
    let (len, inner) = rest.split_at_mut(4);
    len.copy_from_slice(&BIND_AUTH_KEY_INNER_LEN_FIELD.to_le_bytes());
    inner.copy_from_slice(bind_auth_key_inner);
    let out = encrypt(perm_key, Side::Client, &plaintext, rng);
    zeroize::Zeroize::zeroize(&mut plaintext);
    out
}

/// A verified `auth.bindTempAuthKey` `encrypted_message` (server side).
///
/// `Debug` shows the header fields and the length of `inner`, never its decrypted bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BindMessage<'a> {
    /// The `msg_id` inside (must equal the id of the carrying request; the caller checks).
    pub msg_id: i64,
    /// The `seqno` inside (the spec says 0).
    pub seq_no: i32,
    /// The serialized `bind_auth_key_inner` (not parsed here).
    pub inner: &'a [u8],
}

impl fmt::Debug for BindMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindMessage")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .field("inner_len", &self.inner.len())
            .finish()
    }
}

/// Server side of [`encrypt_bind_auth_key_inner`]: decrypts with the permanent key (sender =
/// client) and returns the inner fields. The TL content is for the caller to parse and check.
pub fn decrypt_bind_auth_key_inner<'a>(
    perm_key: &AuthKey,
    buf: &'a mut [u8],
) -> Result<BindMessage<'a>, DecryptError> {
    let plain = decrypt(perm_key, Side::Client, buf)?;
    let (header, inner) = plain
        .split_at_checked(INTERNAL_HEADER_LEN)
        .ok_or(DecryptError::Rejected)?;
    let msg_id = header
        .get(16..24)
        .and_then(|s| s.try_into().ok())
        .map(i64::from_le_bytes)
        .ok_or(DecryptError::Rejected)?;
    let seq_no = header
        .get(24..28)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_le_bytes)
        .ok_or(DecryptError::Rejected)?;
    Ok(BindMessage {
        msg_id,
        seq_no,
        inner,
    })
}

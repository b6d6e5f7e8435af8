//! MTProto 2.0 encrypted messages (`mtproto_description.md`).
//!
//! Wire layout:
//!
//! ```text
//! auth_key_id:int64 ‖ msg_key:int128 ‖ AES-256-IGE(
//!     salt:int64 ‖ session_id:int64 ‖ msg_id:int64 ‖ seq_no:int32 ‖ length:int32 ‖ body ‖ padding)
//! ```
//!
//! - `msg_key_large = SHA256(substr(auth_key, 88+x, 32) ‖ plaintext)` (padding included),
//!   `msg_key = substr(msg_key_large, 8, 16)`;
//! - `sha256_a = SHA256(msg_key ‖ substr(auth_key, x, 36))`,
//!   `sha256_b = SHA256(substr(auth_key, 40+x, 36) ‖ msg_key)`;
//! - `aes_key = a[0..8] ‖ b[8..24] ‖ a[24..32]`, `aes_iv = b[0..8] ‖ a[8..24] ‖ b[24..32]`;
//! - `x = 0` client→server, `x = 8` server→client ([`Side`] names the SENDER).
//!
//! Encryption works in place on a caller buffer ([`encrypt_message`]); decryption works in place
//! and returns a borrowed view ([`decrypt_message`]). Neither allocates.

use super::{AuthKey, Side, ige};
use alloc::vec::Vec;
use core::fmt;
use rand_core::{CryptoRng, Rng};
use zeroize::Zeroizing;

/// Length of the external header: `auth_key_id` (8) + `msg_key` (16).
pub const EXTERNAL_HEADER_LEN: usize = 24;
/// Length of the encrypted internal header: salt, session_id, msg_id, seq_no, length.
pub const INTERNAL_HEADER_LEN: usize = 32;
/// Offset of the message body in an encrypted message buffer (external + internal header).
pub const BODY_OFFSET: usize = EXTERNAL_HEADER_LEN + INTERNAL_HEADER_LEN;
/// Least padding MTProto 2.0 allows ("12..1024 padding bytes", `mtproto_description.md`).
pub const MIN_PADDING: usize = 12;
/// Most padding MTProto 2.0 allows.
pub const MAX_PADDING: usize = 1024;
/// Shortest well-formed encrypted message: header + 32-byte internal header + 12 padding bytes,
/// rounded up to whole AES blocks (72 bytes).
pub const MIN_ENCRYPTED_LEN: usize = EXTERNAL_HEADER_LEN + 48;

/// Sizes of the encrypted part used by [`PaddingPolicy::Bucket`] (the ones tdlib pads to when
/// it does not pad randomly, `td/mtproto/Transport.cpp`, `calc_crypto_size2`).
const BUCKETS: [usize; 9] = [64, 128, 192, 256, 384, 512, 768, 1024, 1280];
/// Above the last bucket, the encrypted part is rounded up to a multiple of this. With at most
/// 12 + 15 + 496 bytes of padding this stays within [`MAX_PADDING`].
const BUCKET_STEP_ABOVE: usize = 512;

/// How much padding [`encrypt_message`] adds. The padding BYTES are always random (from the
/// caller's RNG); the policy only picks their number, which is always in
/// [`MIN_PADDING`]`..=`[`MAX_PADDING`] and makes the encrypted part a multiple of 16 bytes.
///
/// Overhead per message, beyond the 24-byte external and 32-byte internal headers:
///
/// | policy | padding bytes | hides |
/// |---|---|---|
/// | [`Bucket`](PaddingPolicy::Bucket) (the [`Default`]) | 12..=520; mean 42 for bodies under 64 B, 109 under 1248 B, 266 above; at most 72 below a 64-byte body | the size within its bucket |
/// | `Random { min: 12, max: 27 }` (least padding) | 12..=27, mean ~20 | nothing (the size to 16 bytes) |
/// | `Random { min: 12, max: 1024 }` (the whole range the spec allows) | 12..=1024, mean ~518 | size up to ~1 KiB, with random noise |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaddingPolicy {
    /// Uniformly random among the lengths in `min..=max` that align the message to 16 bytes.
    /// Needs `12 <= min`, `max <= 1024` and `max - min >= 15` (so that an aligned length always
    /// exists); otherwise encryption fails with [`EncryptError::InvalidPolicy`].
    ///
    /// `Random { min: 12, max: 1024 }` uses the whole range the spec allows: it says least
    /// about the size of a small body but costs ~518 bytes of padding per message on average
    /// (33 times a 16-byte body, in bandwidth and CPU). `Random { min: 12, max: 27 }` is the
    /// least padding the spec allows.
    Random {
        /// Least padding, at least 12.
        min: usize,
        /// Most padding, at most 1024.
        max: usize,
    },
    /// Pads the encrypted part up to the next of 64, 128, 192, 256, 384, 512, 768, 1024 or 1280
    /// bytes, and beyond that up to a multiple of 512 bytes, as tdlib does in its non-random
    /// mode. Hides the exact size of messages within a bucket while keeping the overhead
    /// bounded (at most 520 padding bytes, at most 72 for bodies under 64 bytes) and
    /// independent of the RNG. The [`Default`].
    Bucket,
}

impl Default for PaddingPolicy {
    /// [`PaddingPolicy::Bucket`]: length-hiding with bounded overhead.
    fn default() -> Self {
        PaddingPolicy::Bucket
    }
}

impl PaddingPolicy {
    /// The aligned padding range `(lo, hi)` this policy may pick for a body of `body_len` bytes,
    /// or `None` if the policy is invalid.
    fn range(&self, body_len: usize) -> Option<(usize, usize)> {
        let unpadded = INTERNAL_HEADER_LEN.checked_add(body_len)?;
        match *self {
            PaddingPolicy::Random { min, max } => {
                if min < MIN_PADDING || max > MAX_PADDING || max < min.checked_add(15)? {
                    return None;
                }
                // Work modulo 16 so a huge body_len cannot overflow.
                let r = unpadded % 16;
                // lo: the least length >= min, hi: the greatest <= max, with r + len aligned.
                // r < 16 and min, max <= 1024 here, so these checked ops never fail.
                let lo = r
                    .checked_add(min)?
                    .checked_next_multiple_of(16)?
                    .checked_sub(r)?;
                let top = r.checked_add(max)?;
                let hi = top.checked_sub(top % 16)?.checked_sub(r)?;
                Some((lo, hi))
            }
            PaddingPolicy::Bucket => {
                let least = unpadded.checked_add(MIN_PADDING + 15)? & !15;
                let target = match BUCKETS.iter().find(|&&b| b >= least) {
                    Some(&b) => b,
                    None => least.checked_next_multiple_of(BUCKET_STEP_ABOVE)?,
                };
                let pad = target.checked_sub(unpadded)?;
                Some((pad, pad))
            }
        }
    }

    /// The largest padding this policy can add to a body of `body_len` bytes (`None` if the
    /// policy is invalid).
    pub fn max_padding(&self, body_len: usize) -> Option<usize> {
        self.range(body_len).map(|(_, hi)| hi)
    }

    fn choose<R: Rng + ?Sized>(&self, body_len: usize, rng: &mut R) -> Option<usize> {
        let (lo, hi) = self.range(body_len)?;
        // (hi - lo) / 16 + 1 <= 64 choices.
        let choices = u32::try_from(hi.checked_sub(lo)? / 16)
            .ok()?
            .checked_add(1)?;
        let pick = usize::try_from(uniform_below(rng, choices)).ok()?;
        lo.checked_add(pick.checked_mul(16)?)
    }
}

/// Uniform in `0..n` (`n >= 1`) by rejection sampling, so no length is favoured. The loop is
/// bounded so a degenerate RNG (e.g. a constant test stub) cannot hang us: with a real RNG and
/// `n <= 64` the chance of 32 rejections in a row is below 2^-800.
fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    // n >= 2 from here on; the remainder is < n, so the subtraction cannot wrap.
    let zone = u32::MAX.wrapping_sub(u32::MAX.checked_rem(n).unwrap_or(0));
    let mut v = rng.next_u32();
    for _ in 0..32 {
        if v < zone {
            break;
        }
        v = rng.next_u32();
    }
    v.checked_rem(n).unwrap_or(0)
}

/// Total length of an encrypted message with a `body_len`-byte body and `padding` bytes of
/// padding (`None` on overflow). Does not check that the padding is valid.
pub fn encrypted_len(body_len: usize, padding: usize) -> Option<usize> {
    BODY_OFFSET.checked_add(body_len)?.checked_add(padding)
}

/// The buffer size [`encrypt_message`] needs for a `body_len`-byte body under `policy`: enough
/// for the largest padding the policy can pick (`None` if the policy is invalid).
pub fn max_encrypted_len(body_len: usize, policy: &PaddingPolicy) -> Option<usize> {
    encrypted_len(body_len, policy.max_padding(body_len)?)
}

/// The fields of the internal header that the caller chooses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Server salt (`long` on the wire).
    pub salt: i64,
    /// Session id.
    pub session_id: i64,
    /// Message id: even for client→server, odd for server→client.
    pub msg_id: i64,
    /// Sequence number.
    pub seq_no: i32,
}

impl fmt::Debug for MessageHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageHeader")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .finish_non_exhaustive()
    }
}

/// Why [`encrypt_message`] refused to encrypt (nothing secret; these are caller bugs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptError {
    /// The buffer cannot hold the message; `needed` bytes are required
    /// (size buffers with [`max_encrypted_len`]).
    BufferTooSmall {
        /// Bytes required for this message.
        needed: usize,
    },
    /// The body length is not a multiple of 4 (TL data always is) or does not fit the `int32`
    /// length field.
    BadBodyLength,
    /// The padding policy is out of the spec's bounds (see [`PaddingPolicy::Random`]).
    InvalidPolicy,
    /// `msg_id` parity does not match the sender: client messages need even ids, server
    /// messages odd ones (`mtproto_security_guidelines.md`, "Checking msg_id").
    MsgIdParity,
}

impl fmt::Display for EncryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptError::BufferTooSmall { needed } => {
                write!(
                    f,
                    "buffer too small for the encrypted message ({needed} bytes needed)"
                )
            }
            EncryptError::BadBodyLength => {
                f.write_str("message body length is not a multiple of 4 or is too large")
            }
            EncryptError::InvalidPolicy => f.write_str("padding policy outside 12..=1024 bytes"),
            EncryptError::MsgIdParity => f.write_str("msg_id parity does not match the sender"),
        }
    }
}

impl core::error::Error for EncryptError {}

/// What [`encrypt_message`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted {
    /// The encrypted message is `buf[..len]`.
    pub len: usize,
    /// The quick-ack token the server will echo if the transport asks for a quick ack
    /// (`mtproto_mtproto-transports.md`, "Quick ack"); see [`quick_ack_token`].
    pub quick_ack_token: u32,
}

/// Quick-ack token from `msg_key_large`: its first 32 bits as a little-endian integer with the
/// most significant bit set (`mtproto_mtproto-transports.md`, "Quick ack"). `u32`, not `i32`:
/// these are hash bits, not a TL `int`.
pub fn quick_ack_token(msg_key_large: &[u8; 32]) -> u32 {
    let [a, b, c, d, ..] = *msg_key_large;
    u32::from_le_bytes([a, b, c, d]) | 0x8000_0000
}

/// `msg_key_large = SHA256(substr(auth_key, 88+x, 32) ‖ plaintext)`.
pub fn msg_key_large(key: &AuthKey, side: Side, plaintext: &[u8]) -> [u8; 32] {
    sha256_after_prefix(msg_key_prefix(key, side), plaintext)
}

/// `msg_key = substr(msg_key_large, 8, 16)`.
#[inline(always)]
fn msg_key_of(large: &[u8; 32]) -> [u8; 16] {
    let (_, rest) = large.split_at(8);
    rest.first_chunk::<16>().copied().unwrap_or([0; 16])
}

/// A stack buffer that may hold key bytes, wiped on drop in one bulk write (`zeroize` on the
/// slice: a plain fill behind an optimisation barrier). `Zeroizing<[T; N]>` wipes element by
/// element with volatile stores, which costs more than the hashing on a small message.
struct Wiped<T: zeroize::DefaultIsZeroes, const N: usize>([T; N]);

impl<T: zeroize::DefaultIsZeroes, const N: usize> Wiped<T, N> {
    #[inline(always)]
    fn new() -> Self {
        Wiped([T::default(); N])
    }
}

impl<T: zeroize::DefaultIsZeroes, const N: usize> Drop for Wiped<T, N> {
    #[inline(always)]
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.0.as_mut_slice().zeroize();
    }
}

/// `substr(auth_key, 88 + x, 32)`, the `msg_key_large` prefix, without a copy.
#[inline(always)]
fn msg_key_prefix(key: &AuthKey, side: Side) -> &[u8; 32] {
    key.array_x::<32>(88, side)
}

/// SHA-256 initial state (FIPS 180-4, 5.3.3).
pub(super) const SHA256_H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// One SHA-256 compression of a single 64-byte block.
#[inline(always)]
fn compress1(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::block_api::compress256(state, core::slice::from_ref(block));
}

/// Finishes a SHA-256 whose state has absorbed every whole block before `rest`: compresses
/// the whole blocks of `rest`, then its tail with the FIPS 180-4 padding for a message of
/// `total_len` bytes. Writes the digest into `out`. The padding buffer is wiped (it may hold
/// key bytes).
pub(super) fn sha256_finish(
    state: &mut [u32; 8],
    rest: &[u8],
    total_len: usize,
    out: &mut [u8; 32],
) {
    let (blocks, tail) = rest.as_chunks::<64>();
    if !blocks.is_empty() {
        sha2::block_api::compress256(state, blocks);
    }
    // tail.len() < 64: it, 0x80, and the 8-byte length fit in one or two blocks.
    let mut pad = Wiped::<u8, 128>::new();
    let flat = &mut pad.0;
    if let Some(dst) = flat.get_mut(..tail.len()) {
        dst.copy_from_slice(tail);
    }
    if let Some(b) = flat.get_mut(tail.len()) {
        *b = 0x80;
    }
    let two = tail.len() >= 56;
    let bits = u64::try_from(total_len)
        .unwrap_or(u64::MAX)
        .wrapping_mul(8)
        .to_be_bytes();
    let (blocks2, _) = pad.0.as_chunks_mut::<64>();
    let used = if two {
        blocks2
    } else {
        blocks2.get_mut(..1).unwrap_or_default()
    };
    if let Some(last) = used.last_mut().and_then(|b| b.last_chunk_mut::<8>()) {
        *last = bits;
    }
    sha2::block_api::compress256(state, used);
    state_to_bytes(state, out);
}

/// The digest bytes of a SHA-256 state (its words, big-endian).
#[inline(always)]
fn state_to_bytes(state: &[u32; 8], out: &mut [u8; 32]) {
    let (chunks, _) = out.as_chunks_mut::<4>();
    for (o, w) in chunks.iter_mut().zip(state) {
        *o = w.to_be_bytes();
    }
}

/// `SHA256(prefix ‖ data)` for a 32-byte prefix, straight on the compression function: no
/// `Digest` buffering, each input byte copied at most once (the first and last block only).
///
/// (Copying a short message and its padding into one buffer for a single two-block call of the
/// compression function measured slower: the variable-length copy feeds the SHA loads through
/// store forwarding that fails.)
pub(super) fn sha256_after_prefix(prefix: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut state = SHA256_H0;
    let mut out = [0u8; 32];
    let total = data.len().saturating_add(32);
    match data.split_first_chunk::<32>() {
        Some((head, rest)) => {
            let mut first = Wiped::<u8, 64>::new();
            let (a, b) = first.0.split_at_mut(32);
            a.copy_from_slice(prefix);
            b.copy_from_slice(head);
            compress1(&mut state, &first.0);
            sha256_finish(&mut state, rest, total, &mut out);
        }
        None => {
            // Shorter than one block with the prefix: hash it as one tail.
            let mut all = Wiped::<u8, 64>::new();
            let (a, b) = all.0.split_at_mut(32);
            a.copy_from_slice(prefix);
            let n = data.len();
            if let Some(dst) = b.get_mut(..n) {
                dst.copy_from_slice(data);
            }
            sha256_finish(
                &mut state,
                all.0.get(..total).unwrap_or(&[]),
                total,
                &mut out,
            );
        }
    }
    out
}

/// SHA-256 of a 52-byte input given as `head ‖ tail` (16 + 36 or 36 + 16 bytes): one block,
/// padding precomputed. Returns the state words (the digest is their big-endian bytes).
#[inline(always)]
fn sha256_52<const H: usize, const T: usize>(head: &[u8; H], tail: &[u8; T]) -> Wiped<u32, 8> {
    const { assert!(H + T == 52) };
    let mut block = Wiped::<u8, 64>::new();
    let (h, rest) = block.0.split_at_mut(H);
    h.copy_from_slice(head);
    if let Some(t) = rest.first_chunk_mut::<T>() {
        *t = *tail;
    }
    if let Some(b) = block.0.get_mut(52) {
        *b = 0x80;
    }
    // Length in bits, 52 * 8 = 416 = 0x01a0, big-endian in the last 8 bytes.
    if let Some(l) = block.0.last_chunk_mut::<2>() {
        *l = [0x01, 0xa0];
    }
    let mut state = Wiped(SHA256_H0);
    compress1(&mut state.0, &block.0);
    state
}

/// The KDF into one bulk-wiped buffer: `aes_key ‖ aes_iv` (see [`kdf`]).
#[inline(always)]
fn kdf_wiped(key: &AuthKey, side: Side, msg_key: &[u8; 16]) -> Wiped<u8, 64> {
    // Both hashes are of 52 bytes: one compression each.
    let a = sha256_52(msg_key, key.array_x::<36>(0, side));
    let b = sha256_52(key.array_x::<36>(40, side), msg_key);
    // aes_key = a[0..8] ‖ b[8..24] ‖ a[24..32]; aes_iv = b[0..8] ‖ a[8..24] ‖ b[24..32]:
    // in 32-bit words, key = a0 a1 b2 b3 b4 b5 a6 a7 and iv = b0 b1 a2 a3 a4 a5 b6 b7.
    let [a0, a1, a2, a3, a4, a5, a6, a7] = a.0;
    let [b0, b1, b2, b3, b4, b5, b6, b7] = b.0;
    let mut out = Wiped::<u8, 64>::new();
    let words = [
        a0, a1, b2, b3, b4, b5, a6, a7, b0, b1, a2, a3, a4, a5, b6, b7,
    ];
    let (chunks, _) = out.0.as_chunks_mut::<4>();
    for (dst, w) in chunks.iter_mut().zip(words) {
        *dst = w.to_be_bytes();
    }
    out
}

/// `(aes_key, aes_iv)` halves of a [`kdf_wiped`] buffer.
#[inline(always)]
fn key_iv(k: &Wiped<u8, 64>) -> (&[u8; 32], &[u8; 32]) {
    let (a, b) = k.0.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
    (a, b.first_chunk::<32>().unwrap_or(&[0; 32]))
}

/// The MTProto 2.0 KDF: `(aes_key, aes_iv)` from `auth_key` and `msg_key`
/// (`mtproto_description.md`, "Defining AES Key and Initialization Vector"). Both are wiped
/// when dropped, as is every intermediate.
pub fn kdf(key: &AuthKey, side: Side, msg_key: &[u8; 16]) -> KeyIv {
    let k = kdf_wiped(key, side, msg_key);
    let (aes_key, aes_iv) = key_iv(&k);
    (Zeroizing::new(*aes_key), Zeroizing::new(*aes_iv))
}

/// An AES-256 key and IGE IV, wiped on drop: what [`kdf`] returns.
pub type KeyIv = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);

/// The crypto of one message, sender side: computes `msg_key_large` of `plaintext` (a whole
/// number of AES blocks), derives the key and IV from its `msg_key`, and encrypts `plaintext` in
/// place. Returns `msg_key_large`. Runs the AES-NI/SHA-NI kernel where the CPU has it, the
/// portable path otherwise; both compute the same bytes (tested against each other).
#[inline]
fn seal(key: &AuthKey, side: Side, plaintext: &mut [u8]) -> Result<[u8; 32], ige::LengthError> {
    #[cfg(target_arch = "x86_64")]
    {
        let (blocks, rest) = plaintext.as_chunks_mut::<16>();
        if !rest.is_empty() {
            return Err(ige::LengthError);
        }
        if let Some(large) = super::x86::seal(&kernel_keys(key, side), blocks) {
            return Ok(large);
        }
    }
    seal_portable(key, side, plaintext)
}

/// [`seal`] on the `aes` and `sha2` crates.
pub(super) fn seal_portable(
    key: &AuthKey,
    side: Side,
    plaintext: &mut [u8],
) -> Result<[u8; 32], ige::LengthError> {
    let large = msg_key_large(key, side, plaintext);
    let msg_key = msg_key_of(&large);
    let k = kdf_wiped(key, side, &msg_key);
    let (aes_key, aes_iv) = key_iv(&k);
    ige::aes256_ige_encrypt(aes_key, aes_iv, plaintext)?;
    Ok(large)
}

/// The crypto of one message, receiver side: derives the key and IV from `msg_key`, decrypts
/// `ciphertext` (a whole number of AES blocks) in place and returns `msg_key_large` of the
/// result, hashed in the same pass. The caller compares it with `msg_key` before trusting a
/// byte. Kernel or portable path as in [`seal`].
#[inline]
fn open(
    key: &AuthKey,
    side: Side,
    msg_key: &[u8; 16],
    ciphertext: &mut [u8],
) -> Result<[u8; 32], ige::LengthError> {
    #[cfg(target_arch = "x86_64")]
    {
        let (blocks, rest) = ciphertext.as_chunks_mut::<16>();
        if !rest.is_empty() {
            return Err(ige::LengthError);
        }
        if let Some(large) = super::x86::open(&kernel_keys(key, side), msg_key, blocks) {
            return Ok(large);
        }
    }
    open_portable(key, side, msg_key, ciphertext)
}

/// [`open`] on the `aes` and `sha2` crates.
pub(super) fn open_portable(
    key: &AuthKey,
    side: Side,
    msg_key: &[u8; 16],
    ciphertext: &mut [u8],
) -> Result<[u8; 32], ige::LengthError> {
    let k = kdf_wiped(key, side, msg_key);
    let (aes_key, aes_iv) = key_iv(&k);
    ige::aes256_ige_decrypt_sha256(aes_key, aes_iv, msg_key_prefix(key, side), ciphertext)
}

/// The auth-key slices of one direction, for the kernel.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn kernel_keys(key: &AuthKey, side: Side) -> super::x86::Keys<'_> {
    super::x86::Keys {
        prefix: msg_key_prefix(key, side),
        a: key.array_x::<36>(0, side),
        b: key.array_x::<36>(40, side),
    }
}

/// Constant-time `a == b` for two `msg_key`s: the XOR of the two 64-bit halves of each, ORed,
/// compared with zero by `subtle` (one masked comparison instead of sixteen byte steps).
#[inline]
fn msg_key_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    use subtle::ConstantTimeEq;
    let (a0, a1) = halves_u64(a);
    let (b0, b1) = halves_u64(b);
    bool::from(((a0 ^ b0) | (a1 ^ b1)).ct_eq(&0))
}

/// The two little-endian 64-bit halves of 16 bytes.
#[inline(always)]
fn halves_u64(b: &[u8; 16]) -> (u64, u64) {
    let (lo, hi) = b.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let hi = hi.first_chunk::<8>().copied().unwrap_or([0; 8]);
    (u64::from_le_bytes(*lo), u64::from_le_bytes(hi))
}

/// Client msg_ids are even, server msg_ids odd (`mtproto_security_guidelines.md`).
fn msg_id_parity_ok(sender: Side, msg_id: i64) -> bool {
    (msg_id & 1 == 1) == (sender == Side::Server)
}

/// The `length:int32` field for a `body_len`-byte body: a multiple of 4 that fits an `int32`.
fn check_body_len(body_len: usize) -> Result<u32, EncryptError> {
    if !body_len.is_multiple_of(4) || i32::try_from(body_len).is_err() {
        return Err(EncryptError::BadBodyLength);
    }
    u32::try_from(body_len).map_err(|_| EncryptError::BadBodyLength)
}

/// Encrypts one message in place.
///
/// The caller puts the body at `buf[BODY_OFFSET..BODY_OFFSET + body_len]`; `buf` must be at least
/// [`max_encrypted_len`]`(body_len, policy)` long. This writes the internal header, random
/// padding (from `rng`), then encrypts and prepends `auth_key_id ‖ msg_key`; the message is
/// `buf[..len]` of the returned [`Encrypted`]. `side` is the sender (this machine's role).
///
/// Every error is detected before anything is written: on error `buf` is untouched.
pub fn encrypt_message<R>(
    key: &AuthKey,
    side: Side,
    header: &MessageHeader,
    body_len: usize,
    buf: &mut [u8],
    policy: &PaddingPolicy,
    rng: &mut R,
) -> Result<Encrypted, EncryptError>
where
    R: CryptoRng + ?Sized,
{
    let length = check_body_len(body_len)?;
    if !msg_id_parity_ok(side, header.msg_id) {
        return Err(EncryptError::MsgIdParity);
    }
    let padding = policy
        .choose(body_len, rng)
        .ok_or(EncryptError::InvalidPolicy)?;
    let len = encrypted_len(body_len, padding).ok_or(EncryptError::BadBodyLength)?;
    let msg = buf
        .get_mut(..len)
        .ok_or(EncryptError::BufferTooSmall { needed: len })?;
    let (outer, plaintext) = msg.split_at_mut(EXTERNAL_HEADER_LEN);

    // Internal header.
    let fields = [
        header.salt.to_le_bytes(),
        header.session_id.to_le_bytes(),
        header.msg_id.to_le_bytes(),
    ];
    for (dst, src) in plaintext.chunks_exact_mut(8).zip(fields.iter()) {
        dst.copy_from_slice(src);
    }
    if let Some(dst) = plaintext.get_mut(24..32) {
        let (seq, len_field) = dst.split_at_mut(4);
        seq.copy_from_slice(&header.seq_no.to_le_bytes());
        len_field.copy_from_slice(&length.to_le_bytes());
    }
    // Random padding.
    if let Some(pad) = plaintext
        .get_mut(INTERNAL_HEADER_LEN..)
        .and_then(|p| p.get_mut(body_len..))
    {
        rng.fill_bytes(pad);
    }

    let large = seal(key, side, plaintext).map_err(|_| EncryptError::BadBodyLength)?;
    let msg_key = msg_key_of(&large);

    let (id, mk) = outer.split_at_mut(8);
    id.copy_from_slice(&key.id().to_le_bytes());
    mk.copy_from_slice(&msg_key);
    Ok(Encrypted {
        len,
        quick_ack_token: quick_ack_token(&large),
    })
}

/// An encrypted message in its own `Vec`, from [`encrypt_message_to_vec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedMessage {
    /// `auth_key_id ‖ msg_key ‖ encrypted_data`.
    pub bytes: Vec<u8>,
    /// See [`Encrypted::quick_ack_token`].
    pub quick_ack_token: u32,
}

/// Convenience over [`encrypt_message`]: copies `body` into a fresh buffer and encrypts it.
pub fn encrypt_message_to_vec<R>(
    key: &AuthKey,
    side: Side,
    header: &MessageHeader,
    body: &[u8],
    policy: &PaddingPolicy,
    rng: &mut R,
) -> Result<EncryptedMessage, EncryptError>
where
    R: CryptoRng + ?Sized,
{
    check_body_len(body.len())?;
    let cap = max_encrypted_len(body.len(), policy).ok_or(EncryptError::InvalidPolicy)?;
    let mut bytes = alloc::vec![0u8; cap];
    if let Some(dst) = bytes
        .get_mut(BODY_OFFSET..)
        .and_then(|b| b.get_mut(..body.len()))
    {
        dst.copy_from_slice(body);
    }
    let out = encrypt_message(key, side, header, body.len(), &mut bytes, policy, rng)?;
    bytes.truncate(out.len);
    Ok(EncryptedMessage {
        bytes,
        quick_ack_token: out.quick_ack_token,
    })
}

/// Why [`decrypt_message`] rejected a message.
///
/// Only the checks that happen BEFORE any key material is used get their own variant (size,
/// alignment, `auth_key_id`; `mtproto_security_guidelines.md`). Everything after — `msg_key`,
/// the length field, the padding size, `msg_id` parity — is the single opaque
/// [`DecryptError::Rejected`], so a peer learns nothing about which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptError {
    /// Shorter than the smallest well-formed message ([`MIN_ENCRYPTED_LEN`] bytes).
    TooShort,
    /// The encrypted part is not a whole number of AES blocks.
    NotBlockAligned,
    /// The `auth_key_id` is not this key's (see [`peek_auth_key_id`] to route by key).
    WrongAuthKeyId,
    /// Anything after key derivation failed. Deliberately says nothing more.
    Rejected,
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecryptError::TooShort => "encrypted message too short",
            DecryptError::NotBlockAligned => "encrypted message not a multiple of 16 bytes",
            DecryptError::WrongAuthKeyId => "encrypted message for another auth_key_id",
            DecryptError::Rejected => "encrypted message rejected",
        })
    }
}

impl core::error::Error for DecryptError {}

/// The `auth_key_id` of a message (its first 8 bytes, little-endian), to pick the key; `None`
/// if shorter than 8 bytes.
pub fn peek_auth_key_id(buf: &[u8]) -> Option<i64> {
    buf.first_chunk::<8>().map(|b| i64::from_le_bytes(*b))
}

/// A decrypted, verified message borrowing the caller's buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DecryptedMessage<'a> {
    /// Server salt.
    pub salt: i64,
    /// Session id (the caller must check it is its session's).
    pub session_id: i64,
    /// Message id (parity already checked; the replay window is the caller's job).
    pub msg_id: i64,
    /// Sequence number.
    pub seq_no: i32,
    /// The message body (`length` bytes, padding stripped).
    pub body: &'a [u8],
    /// Quick-ack token of this message (what a server echoes; see [`quick_ack_token`]).
    pub quick_ack_token: u32,
}

impl fmt::Debug for DecryptedMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptedMessage")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    b.get(at..)
        .and_then(|s| s.first_chunk::<8>())
        .map_or(0, |c| i64::from_le_bytes(*c))
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..)
        .and_then(|s| s.first_chunk::<4>())
        .map_or(0, |c| u32::from_le_bytes(*c))
}

/// Decrypts and verifies one message in place. `side` is the SENDER of the message (a client
/// decrypting server messages passes [`Side::Server`]).
///
/// Check order (security guidelines; tdlib `Transport::read_crypto_impl`): size and alignment →
/// `auth_key_id` → KDF → IGE-decrypt the whole encrypted part → SHA-256 over all of it →
/// constant-time `msg_key` comparison → only then the length field (`% 4`, `<= ` plaintext,
/// padding `12..=1024`) and `msg_id` parity. Never reads past `buf`.
///
/// On error the contents of `buf` are unspecified (possibly decrypted garbage); discard it.
pub fn decrypt_message<'a>(
    key: &AuthKey,
    side: Side,
    buf: &'a mut [u8],
) -> Result<DecryptedMessage<'a>, DecryptError> {
    if buf.len() < MIN_ENCRYPTED_LEN {
        return Err(DecryptError::TooShort);
    }
    let (outer, plaintext) = buf
        .split_at_mut_checked(EXTERNAL_HEADER_LEN)
        .ok_or(DecryptError::TooShort)?;
    if !plaintext.len().is_multiple_of(16) {
        return Err(DecryptError::NotBlockAligned);
    }
    let (id, mk) = outer.split_at(8);
    if peek_auth_key_id(id) != Some(key.id()) {
        return Err(DecryptError::WrongAuthKeyId);
    }
    let msg_key: [u8; 16] = mk.try_into().map_err(|_| DecryptError::TooShort)?;

    // IGE-decrypt the whole encrypted part and hash all of it (`msg_key_large`), in one pass.
    let large = open(key, side, &msg_key, plaintext).map_err(|_| DecryptError::NotBlockAligned)?;
    // From here on: one opaque error.
    if !msg_key_eq(&msg_key_of(&large), &msg_key) {
        return Err(DecryptError::Rejected);
    }

    let length = le_u32(plaintext, 28) as usize;
    let room = plaintext
        .len()
        .checked_sub(INTERNAL_HEADER_LEN) // >= 48 - 32 checked above
        .ok_or(DecryptError::TooShort)?;
    let padding = room.checked_sub(length).ok_or(DecryptError::Rejected)?;
    let msg_id = le_i64(plaintext, 16);
    let parity_ok = msg_id_parity_ok(side, msg_id);
    if !length.is_multiple_of(4) || !(MIN_PADDING..=MAX_PADDING).contains(&padding) || !parity_ok {
        return Err(DecryptError::Rejected);
    }
    let body = plaintext
        .get(INTERNAL_HEADER_LEN..)
        .and_then(|p| p.get(..length))
        .ok_or(DecryptError::Rejected)?;
    Ok(DecryptedMessage {
        salt: le_i64(plaintext, 0),
        session_id: le_i64(plaintext, 8),
        msg_id,
        seq_no: le_u32(plaintext, 24).cast_signed(),
        body,
        quick_ack_token: quick_ack_token(&large),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RNG stuck at one value (only for this test; not a CryptoRng).
    struct Stuck(u32);
    impl rand_core::TryRng for Stuck {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
            Ok(self.0)
        }
        fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
            Ok(u64::from(self.0))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
            dst.fill(0);
            Ok(())
        }
    }

    #[test]
    fn uniform_below_terminates_and_stays_in_range() {
        for n in 1..=64 {
            for stuck in [0, 1, u32::MAX, u32::MAX - 1, u32::MAX / 2] {
                assert!(uniform_below(&mut Stuck(stuck), n) < n);
            }
        }
    }

    #[test]
    fn policy_ranges_are_aligned_and_in_bounds() {
        for body_len in (0..4096).step_by(4) {
            for policy in [
                PaddingPolicy::Random {
                    min: MIN_PADDING,
                    max: MAX_PADDING,
                },
                PaddingPolicy::Bucket,
                PaddingPolicy::Random { min: 12, max: 27 },
                PaddingPolicy::Random {
                    min: 1009,
                    max: 1024,
                },
            ] {
                let (lo, hi) = policy.range(body_len).unwrap();
                assert!(
                    MIN_PADDING <= lo && lo <= hi && hi <= MAX_PADDING,
                    "{policy:?} {body_len}"
                );
                assert_eq!((INTERNAL_HEADER_LEN + body_len + lo) % 16, 0);
                assert_eq!((INTERNAL_HEADER_LEN + body_len + hi) % 16, 0);
            }
        }
        // Huge bodies do not overflow.
        let whole = PaddingPolicy::Random {
            min: MIN_PADDING,
            max: MAX_PADDING,
        };
        assert_eq!(whole.range(usize::MAX), None);
        assert!(whole.range(usize::MAX - 32).is_some());
        assert_eq!(PaddingPolicy::Bucket.range(usize::MAX), None);
    }

    /// The block-level SHA-256 helpers against `sha2`'s `Digest` (an independent path through
    /// its buffering and padding) at every length around the block and padding boundaries.
    #[test]
    fn sha256_after_prefix_matches_digest() {
        use sha2::{Digest, Sha256};
        let prefix: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ 0x5c);
        let data: alloc::vec::Vec<u8> = (0..700u32).map(|i| (i * 7 + 1) as u8).collect();
        for n in 0..data.len() {
            let mut h = Sha256::new();
            h.update(prefix);
            h.update(&data[..n]);
            let want: [u8; 32] = h.finalize().into();
            assert_eq!(sha256_after_prefix(&prefix, &data[..n]), want, "len {n}");
        }
    }

    /// The one-block KDF hashes against `sha2`'s `Digest`.
    #[test]
    fn sha256_52_matches_digest() {
        use sha2::{Digest, Sha256};
        let a: [u8; 16] = core::array::from_fn(|i| i as u8 ^ 0xa5);
        let b: [u8; 36] = core::array::from_fn(|i| (i as u8).wrapping_mul(13));
        let cases = [
            (sha256_52(&a, &b), [&a[..], &b[..]].concat()),
            (sha256_52(&b, &a), [&b[..], &a[..]].concat()),
        ];
        for (words, input) in cases {
            let mut got = [0u8; 32];
            for (o, w) in got.chunks_exact_mut(4).zip(words.0.iter()) {
                o.copy_from_slice(&w.to_be_bytes());
            }
            let want: [u8; 32] = Sha256::digest(&input).into();
            assert_eq!(got, want);
        }
    }

    /// The fused decrypt+hash equals the two separate passes (the plain IGE decryption and
    /// `SHA256(prefix ‖ plaintext)` through `Digest`) at every block count from 0 to 69 and a
    /// few large ones, so every remainder of the 4-block loop and every tail length is hit.
    #[test]
    fn fused_decrypt_hash_matches_two_passes() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        use sha2::{Digest, Sha256};
        let mut rng = ChaCha20Rng::seed_from_u64(0xf05e);
        for blocks in (0..70usize).chain([255, 256, 257, 1024, 4099]) {
            let mut key = [0u8; 32];
            let mut iv = [0u8; 32];
            let mut prefix = [0u8; 32];
            let mut buf = alloc::vec![0u8; blocks * 16];
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut iv);
            rng.fill_bytes(&mut prefix);
            rng.fill_bytes(&mut buf);
            let mut two_pass = buf.clone();
            ige::aes256_ige_decrypt(&key, &iv, &mut two_pass).unwrap();
            let want: [u8; 32] = Sha256::new()
                .chain_update(prefix)
                .chain_update(&two_pass)
                .finalize()
                .into();
            let got = ige::aes256_ige_decrypt_sha256(&key, &iv, &prefix, &mut buf).unwrap();
            assert_eq!(buf, two_pass, "{blocks} blocks");
            assert_eq!(got, want, "{blocks} blocks");
        }
        let mut odd = [0u8; 33];
        assert!(ige::aes256_ige_decrypt_sha256(&[0; 32], &[0; 32], &[0; 32], &mut odd).is_err());
        assert_eq!(odd, [0u8; 33]);
    }

    /// The AES-NI/SHA-NI kernel against the portable path (the `aes` and `sha2` crates, checked
    /// against the spec's and pycryptodome's vectors elsewhere): the same ciphertext and
    /// `msg_key_large` when sealing, the same plaintext and hash when opening (a real message and
    /// random bytes under a random `msg_key`), both directions, at every block count from 0 to
    /// 69 (every SHA tail and 4-block remainder) and a few large ones.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn kernel_matches_portable_path() {
        use crate::crypto::x86;
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        if !x86::available() {
            // `.ci/run` sets MTPROTO_REQUIRE_KERNEL where /proc/cpuinfo lists aes and sha_ni.
            assert!(
                std::env::var_os("MTPROTO_REQUIRE_KERNEL").is_none(),
                "MTPROTO_REQUIRE_KERNEL is set but the kernel is not available"
            );
            std::eprintln!(
                "this CPU lacks AES-NI or SHA-NI: the kernel is not used, nothing to compare"
            );
            return;
        }
        let mut rng = ChaCha20Rng::seed_from_u64(0x5ea1);
        for blocks in (0..70usize).chain([255, 256, 257, 1024, 4099]) {
            let mut raw = [0u8; 256];
            rng.fill_bytes(&mut raw);
            let key = AuthKey::from_bytes(raw);
            for side in [Side::Client, Side::Server] {
                let mut plain = alloc::vec![0u8; blocks * 16];
                rng.fill_bytes(&mut plain);
                let mut ours = plain.clone();
                let (b, _) = ours.as_chunks_mut::<16>();
                let large = x86::seal(&kernel_keys(&key, side), b).unwrap();
                let mut theirs = plain.clone();
                let want = seal_portable(&key, side, &mut theirs).unwrap();
                assert_eq!(large, want, "seal hash, {blocks} blocks, {side:?}");
                assert_eq!(ours, theirs, "seal bytes, {blocks} blocks, {side:?}");

                let msg_key = msg_key_of(&large);
                let (b, _) = ours.as_chunks_mut::<16>();
                let back = x86::open(&kernel_keys(&key, side), &msg_key, b).unwrap();
                assert_eq!(back, large, "open hash, {blocks} blocks");
                assert_eq!(ours, plain, "open bytes, {blocks} blocks");

                let mut junk_key = [0u8; 16];
                rng.fill_bytes(&mut junk_key);
                let mut junk = alloc::vec![0u8; blocks * 16];
                rng.fill_bytes(&mut junk);
                let mut theirs = junk.clone();
                let (b, _) = junk.as_chunks_mut::<16>();
                let got = x86::open(&kernel_keys(&key, side), &junk_key, b).unwrap();
                let want = open_portable(&key, side, &junk_key, &mut theirs).unwrap();
                assert_eq!(got, want, "open junk hash, {blocks} blocks");
                assert_eq!(junk, theirs, "open junk bytes, {blocks} blocks");
            }
        }
    }

    /// `msg_key_eq` is equality: equal keys, and every single-bit difference in either half.
    #[test]
    fn msg_key_eq_is_equality() {
        let a: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x6c);
        assert!(msg_key_eq(&a, &a));
        for bit in 0..128 {
            let mut b = a;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(!msg_key_eq(&a, &b), "bit {bit}");
            assert!(!msg_key_eq(&b, &a), "bit {bit}");
        }
    }

    /// `kdf` against the spec formulas written out with `sha2`'s `Digest` and byte ranges.
    #[test]
    fn kdf_matches_spec_formulas() {
        use sha2::{Digest, Sha256};
        let mut raw = [0u8; 256];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(11);
        }
        let key = AuthKey::from_bytes(raw);
        let msg_key: [u8; 16] = core::array::from_fn(|i| 0xf0 ^ i as u8);
        for (side, x) in [(Side::Client, 0usize), (Side::Server, 8)] {
            let a: [u8; 32] = Sha256::new()
                .chain_update(msg_key)
                .chain_update(&raw[x..x + 36])
                .finalize()
                .into();
            let b: [u8; 32] = Sha256::new()
                .chain_update(&raw[40 + x..76 + x])
                .chain_update(msg_key)
                .finalize()
                .into();
            let want_key = [&a[0..8], &b[8..24], &a[24..32]].concat();
            let want_iv = [&b[0..8], &a[8..24], &b[24..32]].concat();
            let (k, iv) = kdf(&key, side, &msg_key);
            assert_eq!(&k[..], &want_key[..]);
            assert_eq!(&iv[..], &want_iv[..]);
        }
    }
}

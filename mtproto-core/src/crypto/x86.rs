//! The MTProto 2.0 message crypto on x86-64 AES-NI and SHA-NI: one function per direction that
//! does the whole message (`msg_key_large`, the KDF, the AES-256 key schedule and the IGE chain)
//! inside a single `#[target_feature]` context, chosen at run time.
//!
//! Why a kernel of our own: on a 16-byte body the portable path (the `aes` and `sha2` crates)
//! pays, per message, a run-time dispatch and a broadcast of all 15 round keys to 512-bit
//! registers (the `aes` crate's VAES backend prepares for 64-block batches that a chained mode
//! never uses), an `aeskeygenassist` key schedule, and a call per SHA-256 compression. Here the
//! key schedule is computed with `aesenclast` (no `aeskeygenassist`), the KDF blocks are put
//! together in registers, and on decryption the hash of each 64 plaintext bytes starts as soon
//! as they are decrypted, overlapping the rest of the AES chain.
//!
//! Key material: the round keys are wiped on drop, and since the compiler may spill round keys,
//! KDF blocks and hash states to other stack slots, the stack area the kernel used is overwritten
//! after every message ([`scrub_stack`]). Registers are left as they are.
//!
//! The one `unsafe` of the crate lives here: calling the `#[target_feature]` functions after
//! `cpufeatures` has confirmed the CPU has every feature they enable, and unaligned 16-byte
//! loads and stores from references. Everything is checked against the portable path in tests.

#![allow(unsafe_code)]
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_aesdec_si128, _mm_aesdeclast_si128, _mm_aesenc_si128,
    _mm_aesenclast_si128, _mm_aesimc_si128, _mm_alignr_epi8, _mm_blend_epi16, _mm_cvtsi32_si128,
    _mm_loadu_si128, _mm_or_si128, _mm_set_epi32, _mm_set_epi64x, _mm_setzero_si128,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi8,
    _mm_shuffle_epi32, _mm_slli_si128, _mm_srli_si128, _mm_storeu_si128, _mm_xor_si128,
};
use zeroize::Zeroize;

cpufeatures::new!(cpu_aes_sha, "aes", "sha", "sse2", "ssse3", "sse4.1");

/// Whether this CPU runs the kernel (AES-NI, SHA-NI, SSSE3 and SSE4.1). Cached after the first
/// call.
#[inline]
pub fn available() -> bool {
    cpu_aes_sha::get()
}

/// The auth-key slices one direction of the message crypto uses (`x = 0` or `8` applied).
pub struct Keys<'a> {
    /// `substr(auth_key, 88 + x, 32)`: the prefix of `msg_key_large`.
    pub prefix: &'a [u8; 32],
    /// `substr(auth_key, x, 36)`: hashed after `msg_key` into `sha256_a`.
    pub a: &'a [u8; 36],
    /// `substr(auth_key, 40 + x, 36)`: hashed before `msg_key` into `sha256_b`.
    pub b: &'a [u8; 36],
}

/// Encrypts `plaintext` (a whole number of 16-byte blocks) in place and returns
/// `msg_key_large`; `None` (nothing touched) if the CPU lacks a feature.
#[inline]
pub fn seal(keys: &Keys<'_>, plaintext: &mut [[u8; 16]]) -> Option<[u8; 32]> {
    if !available() {
        return None;
    }
    // SAFETY: `available()` confirmed every feature `seal_ni` enables.
    let large = unsafe { seal_ni(keys, plaintext) };
    scrub_stack();
    Some(large)
}

/// Decrypts `ciphertext` (a whole number of 16-byte blocks) in place with the key and IV derived
/// from `msg_key` and returns `msg_key_large` of the result; the caller compares its bytes
/// 8..24 with `msg_key`. `None` (nothing touched) if the CPU lacks a feature.
#[inline]
pub fn open(keys: &Keys<'_>, msg_key: &[u8; 16], ciphertext: &mut [[u8; 16]]) -> Option<[u8; 32]> {
    if !available() {
        return None;
    }
    // SAFETY: `available()` confirmed every feature `open_ni` enables.
    let large = unsafe { open_ni(keys, msg_key, ciphertext) };
    scrub_stack();
    Some(large)
}

/// Bytes of stack [`scrub_stack`] overwrites: twice the deepest the kernel was measured to go
/// below its caller (`kernel_leaves_no_key_material_on_the_stack` fails with 512 in a release
/// build, passes with 768; unoptimised builds have larger frames, hence more there).
const SCRUB_BYTES: usize = if cfg!(debug_assertions) { 4096 } else { 1536 };

/// Overwrites the stack just below the caller's frame, where `seal_ni` / `open_ni` and the
/// functions they call had theirs: the compiler is free to spill round keys, KDF blocks and
/// hash states to stack slots that no `Drop` knows about (it does, in release builds), so the
/// whole area is zeroed after each message (a plain fill that `black_box` keeps). Called
/// from the same frame as the kernel, so its area covers the kernel's. Registers are not
/// cleared (as with the `aes` crate).
#[inline(never)]
fn scrub_stack() {
    // Zeros the optimiser cannot drop: `black_box` may read every byte.
    let area = [0u8; SCRUB_BYTES];
    core::hint::black_box(&area);
}

/// An unaligned 16-byte load.
#[inline(always)]
fn load(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; `loadu` has no alignment requirement, and SSE2 is part
    // of x86-64.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// An unaligned 16-byte store.
#[inline(always)]
fn store(b: &mut [u8; 16], v: __m128i) {
    // SAFETY: `b` is 16 writable bytes; `storeu` has no alignment requirement, and SSE2 is part
    // of x86-64.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
}

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4) on SHA-NI. The state is kept as the instructions want it: ABEF and CDGH.

/// SHA-256 round constants (FIPS 180-4, 4.2.2), four per row: row `r` for rounds `4r .. 4r + 4`.
const K: [[u32; 4]; 16] = [
    [0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5],
    [0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5],
    [0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3],
    [0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174],
    [0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc],
    [0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da],
    [0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7],
    [0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967],
    [0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13],
    [0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85],
    [0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3],
    [0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070],
    [0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5],
    [0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3],
    [0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208],
    [0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2],
];

/// The SHA-256 state in SHA-NI order: lanes (F, E, B, A) and (H, G, D, C), lane 0 first.
#[derive(Clone, Copy)]
struct Sha {
    abef: __m128i,
    cdgh: __m128i,
}

impl Sha {
    /// H(0) (FIPS 180-4, 5.3.3).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn new() -> Sha {
        Sha {
            abef: _mm_set_epi32(
                0x6a09_e667,
                0xbb67_ae85_u32.cast_signed(),
                0x510e_527f,
                0x9b05_688c_u32.cast_signed(),
            ),
            cdgh: _mm_set_epi32(
                0x3c6e_f372,
                0xa54f_f53a_u32.cast_signed(),
                0x1f83_d9ab,
                0x5be0_cd19,
            ),
        }
    }
}

/// The round constants of rounds `4r .. 4r + 4`.
#[inline]
#[target_feature(enable = "sse2")]
fn k4(r: usize) -> __m128i {
    let [k0, k1, k2, k3] = K.get(r).copied().unwrap_or_default();
    _mm_set_epi32(
        k3.cast_signed(),
        k2.cast_signed(),
        k1.cast_signed(),
        k0.cast_signed(),
    )
}

/// Each 32-bit lane byte-reversed: message bytes to big-endian words, and back.
#[inline]
#[target_feature(enable = "sse2")]
fn be_mask() -> __m128i {
    _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203)
}

/// Four rounds (`4r .. 4r + 4`) with the message words `w`.
#[inline]
#[target_feature(enable = "sha,sse2")]
fn rounds4(s: &mut Sha, r: usize, w: __m128i) {
    let t = _mm_add_epi32(w, k4(r));
    s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, t);
    s.abef = _mm_sha256rnds2_epu32(s.abef, s.cdgh, _mm_shuffle_epi32(t, 0x0e));
}

/// The next four message words from the previous sixteen (FIPS 180-4, 6.2.2 step 1).
#[inline]
#[target_feature(enable = "sha,ssse3")]
fn schedule(w0: __m128i, w1: __m128i, w2: __m128i, w3: __m128i) -> __m128i {
    _mm_sha256msg2_epu32(
        _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)),
        w3,
    )
}

/// One compression of the block whose four 16-byte chunks are `c` (message bytes as loaded).
#[inline]
#[target_feature(enable = "sha,ssse3")]
fn compress(s: &mut Sha, c: [__m128i; 4]) {
    let m = be_mask();
    let [mut w0, mut w1, mut w2, mut w3] = c.map(|v| _mm_shuffle_epi8(v, m));
    let save = *s;
    rounds4(s, 0, w0);
    rounds4(s, 1, w1);
    rounds4(s, 2, w2);
    rounds4(s, 3, w3);
    for [r0, r1, r2, r3] in [[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]] {
        w0 = schedule(w0, w1, w2, w3);
        rounds4(s, r0, w0);
        w1 = schedule(w1, w2, w3, w0);
        rounds4(s, r1, w1);
        w2 = schedule(w2, w3, w0, w1);
        rounds4(s, r2, w2);
        w3 = schedule(w3, w0, w1, w2);
        rounds4(s, r3, w3);
    }
    s.abef = _mm_add_epi32(s.abef, save.abef);
    s.cdgh = _mm_add_epi32(s.cdgh, save.cdgh);
}

/// The digest as two chunks of bytes: bytes 0..16 and 16..32.
#[inline]
#[target_feature(enable = "ssse3,sse4.1")]
fn digest(s: &Sha) -> (__m128i, __m128i) {
    let feba = _mm_shuffle_epi32(s.abef, 0x1b);
    let dchg = _mm_shuffle_epi32(s.cdgh, 0xb1);
    let dcba = _mm_blend_epi16(feba, dchg, 0xf0);
    let hgef = _mm_alignr_epi8(dchg, feba, 8);
    let m = be_mask();
    (_mm_shuffle_epi8(dcba, m), _mm_shuffle_epi8(hgef, m))
}

/// Ends a SHA-256 message of `total` bytes (a multiple of 16) whose last `n < 4` chunks,
/// `pending[..n]`, are not compressed yet: they, `0x80`, zeros, and the 64-bit bit length, which
/// always fits in the same block (after a 16-byte-aligned message the `0x80` chunk has 8 bytes
/// left).
#[inline]
#[target_feature(enable = "sha,ssse3")]
fn finish(s: &mut Sha, pending: [__m128i; 3], n: usize, total: usize) {
    let bits = u64::try_from(total)
        .unwrap_or(u64::MAX)
        .wrapping_mul(8)
        .swap_bytes()
        .cast_signed();
    let z = _mm_setzero_si128();
    let lead = _mm_set_epi64x(0, 0x80);
    let len = _mm_set_epi64x(bits, 0);
    let [q0, q1, q2] = pending;
    let c = match n {
        0 => [lead, z, z, len],
        1 => [q0, lead, z, len],
        2 => [q0, q1, lead, len],
        _ => [q0, q1, q2, _mm_set_epi64x(bits, 0x80)],
    };
    compress(s, c);
}

/// Up to three chunks (`tail.len() < 4`), loaded, and their number.
#[inline(always)]
fn tail3(tail: &[[u8; 16]], mut get: impl FnMut(&[u8; 16]) -> __m128i) -> ([__m128i; 3], usize) {
    // SAFETY: SSE2 is part of x86-64.
    let z = unsafe { _mm_setzero_si128() };
    match tail {
        [] => ([z, z, z], 0),
        [a] => ([get(a), z, z], 1),
        [a, b] => ([get(a), get(b), z], 2),
        [a, b, c, ..] => ([get(a), get(b), get(c)], 3),
    }
}

/// `SHA256(prefix ‖ blocks)`.
#[inline]
#[target_feature(enable = "sha,ssse3")]
fn hash_prefixed(prefix: &[u8; 32], blocks: &[[u8; 16]]) -> Sha {
    let total = blocks.len().wrapping_mul(16).wrapping_add(32);
    let (p0, p1) = halves(prefix);
    let mut s = Sha::new();
    let (pending, n) = match blocks.split_first_chunk::<2>() {
        Some(([q0, q1], rest)) => {
            compress(&mut s, [p0, p1, load(q0), load(q1)]);
            let (groups, tail) = rest.as_chunks::<4>();
            for g in groups {
                compress(&mut s, g.each_ref().map(load));
            }
            tail3(tail, load)
        }
        None => match blocks.first() {
            Some(q0) => ([p0, p1, load(q0)], 3),
            None => ([p0, p1, _mm_setzero_si128()], 2),
        },
    };
    finish(&mut s, pending, n, total);
    s
}

/// The two 16-byte halves of a 32-byte array, loaded.
#[inline(always)]
fn halves(b: &[u8; 32]) -> (__m128i, __m128i) {
    let (lo, hi) = b.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
    let hi = hi.first_chunk::<16>().unwrap_or(&[0; 16]);
    (load(lo), load(hi))
}

// ---------------------------------------------------------------------------------------------
// AES-256 (FIPS 197) on AES-NI.

/// The 15 round keys of AES-256 (FIPS 197, 5.2) from the key `k0 ‖ k1`. `aesenclast` stands in
/// for `aeskeygenassist` (slower on recent cores): on a vector whose four columns are equal,
/// ShiftRows is the identity, so `aesenclast(bcast(RotWord(w)), rcon)` is
/// `SubWord(RotWord(w)) ^ rcon` in every column.
#[inline]
#[target_feature(enable = "aes,ssse3")]
fn expand(k0: __m128i, k1: __m128i, rk: &mut [__m128i; 15]) {
    // Bytes 13, 14, 15, 12 (RotWord of the last word) in every column; 12..16 for SubWord.
    let rot = _mm_set_epi64x(0x0c0f_0e0d_0c0f_0e0d, 0x0c0f_0e0d_0c0f_0e0d);
    let sub = _mm_set_epi64x(0x0f0e_0d0c_0f0e_0d0c, 0x0f0e_0d0c_0f0e_0d0c);
    // Lane j becomes w0 ^ .. ^ wj.
    let spread = |w: __m128i| {
        let w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
        _mm_xor_si128(w, _mm_slli_si128(w, 8))
    };
    let (mut a, mut b) = (k0, k1);
    let [r0, r1, rest @ ..] = rk;
    *r0 = a;
    *r1 = b;
    let (pairs, last) = rest.as_chunks_mut::<2>();
    for (i, [even, odd]) in pairs.iter_mut().enumerate() {
        let rcon = 1i32 << i;
        let t = _mm_aesenclast_si128(
            _mm_shuffle_epi8(b, rot),
            _mm_set_epi32(rcon, rcon, rcon, rcon),
        );
        a = _mm_xor_si128(spread(a), t);
        *even = a;
        let t = _mm_aesenclast_si128(_mm_shuffle_epi8(a, sub), _mm_setzero_si128());
        b = _mm_xor_si128(spread(b), t);
        *odd = b;
    }
    if let Some(k14) = last.first_mut() {
        let t = _mm_aesenclast_si128(
            _mm_shuffle_epi8(b, rot),
            _mm_set_epi32(0x40, 0x40, 0x40, 0x40),
        );
        *k14 = _mm_xor_si128(spread(a), t);
    }
}

/// One block through AES-256 with the round keys `rk`.
#[inline]
#[target_feature(enable = "aes")]
fn aes_enc(rk: &[__m128i; 15], x: __m128i) -> __m128i {
    let [k0, mid @ .., k14] = rk;
    let mut x = _mm_xor_si128(x, *k0);
    for k in mid {
        x = _mm_aesenc_si128(x, *k);
    }
    _mm_aesenclast_si128(x, *k14)
}

/// The decryption round keys of the Equivalent Inverse Cipher (FIPS 197, 5.3.5).
#[inline]
#[target_feature(enable = "aes")]
fn invert(rk: &[__m128i; 15], dk: &mut [__m128i; 15]) {
    for (d, k) in dk.iter_mut().zip(rk.iter().rev()) {
        *d = _mm_aesimc_si128(*k);
    }
    if let (Some(d), Some(k)) = (dk.first_mut(), rk.last()) {
        *d = *k;
    }
    if let (Some(d), Some(k)) = (dk.last_mut(), rk.first()) {
        *d = *k;
    }
}

/// One block through the AES-256 inverse cipher with the round keys `dk` (see [`invert`]).
#[inline]
#[target_feature(enable = "aes")]
fn aes_dec(dk: &[__m128i; 15], x: __m128i) -> __m128i {
    let [k0, mid @ .., k14] = dk;
    let mut x = _mm_xor_si128(x, *k0);
    for k in mid {
        x = _mm_aesdec_si128(x, *k);
    }
    _mm_aesdeclast_si128(x, *k14)
}

/// Round keys on the stack, wiped when dropped (copies the compiler makes elsewhere on the stack
/// are overwritten by [`scrub_stack`]).
struct RoundKeys([__m128i; 15]);

impl RoundKeys {
    #[inline]
    #[target_feature(enable = "sse2")]
    fn new() -> RoundKeys {
        RoundKeys([_mm_setzero_si128(); 15])
    }
}

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

// ---------------------------------------------------------------------------------------------
// The message: KDF, then IGE (`iv = y0 ‖ x0`, see `ige.rs`).

/// The MTProto 2.0 KDF (`mtproto_description.md`): `sha256_a = SHA256(msg_key ‖ a)` and
/// `sha256_b = SHA256(b ‖ msg_key)`, 52 bytes and one block each;
/// `aes_key = a[0..8] ‖ b[8..24] ‖ a[24..32]`, `aes_iv = b[0..8] ‖ a[8..24] ‖ b[24..32]`.
/// Returns the key halves and the IV halves `(y0, x0)`. The blocks are put together in
/// registers (the compiler may still spill them; [`scrub_stack`] wipes the area afterwards).
#[inline]
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn kdf(keys: &Keys<'_>, msg_key: __m128i) -> [__m128i; 4] {
    /// Bytes 0..16 and 16..32 loaded, bytes 32..36 as a little-endian word.
    fn split36(b: &[u8; 36]) -> (__m128i, __m128i, u32) {
        let (head, tail) = b.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
        let (lo, hi) = halves(head);
        (
            lo,
            hi,
            tail.first_chunk::<4>()
                .map_or(0, |t| u32::from_le_bytes(*t)),
        )
    }
    let (a0, a1, a_last) = split36(keys.a);
    let (b0, b1, b_last) = split36(keys.b);
    // Bytes 48..64 of a 52-byte message: its last 4 bytes, 0x80, zeros, the bit length 416
    // big-endian.
    let len = 416u64.swap_bytes().cast_signed();
    let a3 = _mm_set_epi64x(len, i64::from(a_last) | (0x80 << 32));
    // b ‖ msg_key: bytes 32..48 are b[32..36] ‖ msg_key[0..12], bytes 48..52 msg_key[12..16].
    let b2 = _mm_or_si128(
        _mm_slli_si128(msg_key, 4),
        _mm_cvtsi32_si128(b_last.cast_signed()),
    );
    let b3 = _mm_or_si128(_mm_srli_si128(msg_key, 12), _mm_set_epi64x(len, 0x80 << 32));
    let mut sa = Sha::new();
    let mut sb = Sha::new();
    // Two independent chains: the CPU overlaps them (written interleaved by hand they measured
    // slower: the register pressure spills).
    compress(&mut sa, [msg_key, a0, a1, a3]);
    compress(&mut sb, [b0, b1, b2, b3]);
    let (a_lo, a_hi) = digest(&sa);
    let (b_lo, b_hi) = digest(&sb);
    // `_mm_blend_epi16(x, y, 0xf0)`: bytes 0..8 of x, 8..16 of y.
    [
        _mm_blend_epi16(a_lo, b_lo, 0xf0),
        _mm_blend_epi16(b_hi, a_hi, 0xf0),
        _mm_blend_epi16(b_lo, a_lo, 0xf0),
        _mm_blend_epi16(a_hi, b_hi, 0xf0),
    ]
}

/// See [`seal`].
#[target_feature(enable = "aes,sha,sse2,ssse3,sse4.1")]
fn seal_ni(keys: &Keys<'_>, blocks: &mut [[u8; 16]]) -> [u8; 32] {
    let s = hash_prefixed(keys.prefix, blocks);
    let (lo, hi) = digest(&s);
    // msg_key = msg_key_large[8..24].
    let [k0, k1, mut y, mut x] = kdf(keys, _mm_alignr_epi8(hi, lo, 8));
    let mut rk = RoundKeys::new();
    expand(k0, k1, &mut rk.0);
    // c_i = E(p_i ^ c_{i-1}) ^ p_{i-1}.
    for block in blocks.iter_mut() {
        let p = load(block);
        let c = _mm_xor_si128(aes_enc(&rk.0, _mm_xor_si128(p, y)), x);
        store(block, c);
        y = c;
        x = p;
    }
    bytes32(lo, hi)
}

/// Two chunks as 32 bytes.
#[inline(always)]
fn bytes32(lo: __m128i, hi: __m128i) -> [u8; 32] {
    let mut out = [[0u8; 16]; 2];
    let [l, h] = &mut out;
    store(l, lo);
    store(h, hi);
    out.as_flattened()
        .first_chunk::<32>()
        .copied()
        .unwrap_or([0; 32])
}

/// See [`open`].
#[target_feature(enable = "aes,sha,sse2,ssse3,sse4.1")]
fn open_ni(keys: &Keys<'_>, msg_key: &[u8; 16], blocks: &mut [[u8; 16]]) -> [u8; 32] {
    let [k0, k1, mut y, mut x] = kdf(keys, load(msg_key));
    let mut rk = RoundKeys::new();
    expand(k0, k1, &mut rk.0);
    let mut dk = RoundKeys::new();
    invert(&rk.0, &mut dk.0);
    drop(rk);
    let dk = &dk.0;
    // p_i = D(c_i ^ p_{i-1}) ^ c_{i-1}. The SHA blocks of `prefix ‖ plaintext` follow the chain
    // one group behind; they do not depend on the AES chain that follows, so the CPU runs the
    // two side by side.
    let mut dec = |block: &mut [u8; 16]| -> __m128i {
        let c = load(block);
        let p = _mm_xor_si128(aes_dec(dk, _mm_xor_si128(c, x)), y);
        store(block, p);
        x = p;
        y = c;
        p
    };
    let total = blocks.len().wrapping_mul(16).wrapping_add(32);
    let (p0, p1) = halves(keys.prefix);
    let mut s = Sha::new();
    let (pending, n) = match blocks.split_first_chunk_mut::<2>() {
        Some(([q0, q1], rest)) => {
            let d0 = dec(q0);
            let d1 = dec(q1);
            // SHA block 0 is `prefix ‖ d0 ‖ d1`, block j >= 1 is group j - 1 of the rest.
            // Iteration i decrypts group i, THEN compresses the block before it (read back from
            // the buffer): the serial AES chain comes first in program order and the hash of
            // plaintext finished earlier fills the idle SHA unit beside it. (Compressing each
            // group right after decrypting it, from registers, measured 30 % slower at 8 KiB.)
            let (groups, tail) = rest.as_chunks_mut::<4>();
            let mut first = Some([p0, p1, d0, d1]);
            for i in 0..=groups.len() {
                if let Some([a, b, c, d]) = groups.get_mut(i) {
                    dec(a);
                    dec(b);
                    dec(c);
                    dec(d);
                }
                let block = match first.take() {
                    Some(f) => f,
                    None => match i.checked_sub(1).and_then(|j| groups.get(j)) {
                        Some(g) => g.each_ref().map(load),
                        None => continue,
                    },
                };
                compress(&mut s, block);
            }
            let z = _mm_setzero_si128();
            match tail {
                [] => ([z, z, z], 0),
                [a] => ([dec(a), z, z], 1),
                [a, b] => {
                    let da = dec(a);
                    ([da, dec(b), z], 2)
                }
                [a, b, c, ..] => {
                    let da = dec(a);
                    let db = dec(b);
                    ([da, db, dec(c)], 3)
                }
            }
        }
        None => match blocks.first_mut() {
            Some(q0) => ([p0, p1, dec(q0)], 3),
            None => ([p0, p1, _mm_setzero_si128()], 2),
        },
    };
    finish(&mut s, pending, n, total);
    let (lo, hi) = digest(&s);
    bytes32(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        core::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
    }

    /// One block through the kernel's key schedule, cipher and inverse cipher.
    #[target_feature(enable = "aes,ssse3")]
    fn block_both_ways(key: &[u8; 32], block: &[u8; 16]) -> ([u8; 16], [u8; 16]) {
        let (k0, k1) = halves(key);
        let mut rk = RoundKeys::new();
        expand(k0, k1, &mut rk.0);
        let mut dk = RoundKeys::new();
        invert(&rk.0, &mut dk.0);
        let mut c = [0u8; 16];
        store(&mut c, aes_enc(&rk.0, load(block)));
        let mut p = [0u8; 16];
        store(&mut p, aes_dec(&dk.0, load(&c)));
        (c, p)
    }

    /// FIPS 197 Appendix C.3 (AES-256): the `aesenclast` key schedule, the cipher and the
    /// Equivalent Inverse Cipher against the standard's own example.
    #[test]
    fn fips197_c3_aes256() {
        if !available() {
            std::eprintln!("no AES-NI/SHA-NI here: the kernel is not used");
            return;
        }
        let key = unhex::<32>("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let plain = unhex::<16>("00112233445566778899aabbccddeeff");
        // SAFETY: `available()` confirmed AES-NI and SSSE3.
        let (c, p) = unsafe { block_both_ways(&key, &plain) };
        assert_eq!(c, unhex::<16>("8ea2b7ca516745bfeafc49904b496089"));
        assert_eq!(p, plain);
    }

    /// The last round key of FIPS 197 Appendix A.3's expansion (`w[56..60]`).
    #[test]
    fn fips197_a3_key_expansion() {
        if !available() {
            return;
        }
        #[target_feature(enable = "aes,ssse3")]
        fn last_round_key(key: &[u8; 32]) -> [u8; 16] {
            let (k0, k1) = halves(key);
            let mut rk = RoundKeys::new();
            expand(k0, k1, &mut rk.0);
            let mut out = [0u8; 16];
            store(&mut out, rk.0[14]);
            out
        }
        let key = unhex::<32>("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        // SAFETY: `available()` confirmed AES-NI and SSSE3.
        let last = unsafe { last_round_key(&key) };
        assert_eq!(last, unhex::<16>("fe4890d1e6188d0b046df344706c631e"));
    }

    /// `len` bytes of the stack just below the current stack pointer (where the frames of the
    /// functions this one called were), copied with inline assembly: these bytes belong to no
    /// Rust object any more, so they are read at the machine level, not through a pointer.
    #[inline(always)]
    fn stack_below(out: &mut [u8]) {
        let n = out.len();
        // SAFETY: reads `n` bytes below `rsp`, inside this thread's mapped stack (the test
        // thread's stack is far larger than the 8 KiB read here), into `out`'s `n` bytes.
        unsafe {
            core::arch::asm!(
                "mov rsi, rsp",
                "sub rsi, rcx",
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") out.as_mut_ptr() => _,
                out("rsi") _,
            );
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// A frame that leaves a known pattern below its caller: proves `stack_below` sees the
    /// area where a callee's frame was (the control for the test below).
    #[inline(never)]
    fn leave_pattern(pattern: &[u8; 64]) {
        let local = core::hint::black_box(*pattern);
        core::hint::black_box(&local);
    }

    /// After `seal` and `open`, no round key of the message key, no half of the AES key or IV
    /// and no 16-byte piece of the auth-key slices the KDF hashes is left on the stack below
    /// the caller (the kernel's frames, spilled copies included). The round keys are computed
    /// by the kernel's own schedule, checked against FIPS 197 above.
    #[test]
    fn kernel_leaves_no_key_material_on_the_stack() {
        if !available() {
            return;
        }
        use crate::crypto::message::{kdf, msg_key_large};
        use crate::crypto::{AuthKey, Side};
        let raw: [u8; 256] = core::array::from_fn(|i| (i as u8).wrapping_mul(151) ^ 0x3c);
        let key = alloc::boxed::Box::new(AuthKey::from_bytes(raw));
        let keys = Keys {
            prefix: key.array_x::<32>(88, Side::Client),
            a: key.array_x::<36>(0, Side::Client),
            b: key.array_x::<36>(40, Side::Client),
        };
        let plain: alloc::vec::Vec<[u8; 16]> = (0..4u8).map(|i| [i ^ 0x77; 16]).collect();
        let large = msg_key_large(&key, Side::Client, plain.as_flattened());
        let msg_key: [u8; 16] = large[8..24].try_into().unwrap();
        let (aes_key, aes_iv) = kdf(&key, Side::Client, &msg_key);
        let mut secrets: alloc::vec::Vec<alloc::vec::Vec<u8>> = alloc::vec::Vec::new();
        #[target_feature(enable = "aes,ssse3")]
        fn round_keys(key: &[u8; 32]) -> [[u8; 16]; 15] {
            let (k0, k1) = halves(key);
            let mut rk = RoundKeys::new();
            expand(k0, k1, &mut rk.0);
            let mut out = [[0u8; 16]; 15];
            for (o, k) in out.iter_mut().zip(rk.0.iter()) {
                store(o, *k);
            }
            out
        }
        // SAFETY: `available()` confirmed AES-NI and SSSE3.
        for rk in unsafe { round_keys(&aes_key) } {
            secrets.push(rk.to_vec());
        }
        secrets.push(aes_iv[..16].to_vec());
        secrets.push(aes_iv[16..].to_vec());
        for slice in [&keys.a[..], &keys.b[..]] {
            for w in slice.windows(16) {
                secrets.push(w.to_vec());
            }
        }
        let mut dump = alloc::vec![0u8; 8192];

        // Control: a callee's frame is visible.
        let pattern: [u8; 64] = core::array::from_fn(|i| (i as u8).wrapping_mul(13) | 0x80);
        leave_pattern(&pattern);
        stack_below(&mut dump);
        assert!(
            contains(&dump, &pattern),
            "the stack read-back sees no callee frame"
        );

        let mut blocks = plain.clone();
        assert_eq!(seal(&keys, &mut blocks), Some(large));
        stack_below(&mut dump);
        for (i, secret) in secrets.iter().enumerate() {
            assert!(
                !contains(&dump, secret),
                "after seal: secret {i} left on the stack"
            );
        }
        assert_eq!(open(&keys, &msg_key, &mut blocks), Some(large));
        assert_eq!(blocks, plain);
        stack_below(&mut dump);
        for (i, secret) in secrets.iter().enumerate() {
            assert!(
                !contains(&dump, secret),
                "after open: secret {i} left on the stack"
            );
        }
    }

    /// The round keys are zero after drop: dropped in place in a slot the test owns, read back.
    #[test]
    fn round_keys_are_wiped_on_drop() {
        // SAFETY: SSE2 is part of x86-64.
        let fill = unsafe { _mm_set_epi64x(0x5a5a_5a5a_5a5a_5a5a, 0x5a5a_5a5a_5a5a_5a5a) };
        let slot = core::mem::MaybeUninit::new(RoundKeys([fill; 15]));
        let mut slot = slot;
        let read = |slot: &core::mem::MaybeUninit<RoundKeys>| -> alloc::vec::Vec<u8> {
            let p = slot.as_ptr().cast::<u8>();
            // SAFETY: 240 bytes of the slot's own memory, read volatile after the drop.
            (0..240)
                .map(|i| unsafe { core::ptr::read_volatile(p.wrapping_add(i)) })
                .collect()
        };
        assert!(read(&slot).iter().all(|&b| b == 0x5a));
        // SAFETY: dropped exactly once, never used after.
        unsafe { core::ptr::drop_in_place(slot.as_mut_ptr()) };
        assert!(read(&slot).iter().all(|&b| b == 0));
    }
}

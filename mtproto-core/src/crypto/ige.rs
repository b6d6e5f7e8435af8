//! AES in Infinite Garble Extension (IGE) mode, in place, generic over the block cipher.
//!
//! IV convention (the one Telegram and OpenSSL use, see `mtproto_samples-auth_key.md`, "Derived
//! values"): `iv = y0 ‖ x0`, where `y0` (the first 16 bytes) plays the role of the "previous
//! ciphertext block" and `x0` (the last 16 bytes) the "previous plaintext block":
//!
//! ```text
//! encrypt: c_i = E(p_i ⊕ c_{i-1}) ⊕ p_{i-1}      with c_0 = y0, p_0 = x0
//! decrypt: p_i = D(c_i ⊕ p_{i-1}) ⊕ c_{i-1}
//! ```
//!
//! Speed: the whole chain runs inside ONE call to the cipher's backend (`encrypt_with_backend` /
//! `decrypt_with_backend` with a rank-2 closure), so the round keys stay in registers and the
//! AES-NI/VAES dispatch happens once per buffer rather than once per block. The only state carried
//! between blocks is the two 16-byte chain registers.

use aes::cipher::{
    Array, Block, BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt,
    BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
    consts::U16,
};
use aes::{Aes256Dec, Aes256Enc};
use core::fmt;

/// The buffer length is not a multiple of the 16-byte block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthError;

impl fmt::Display for LengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AES-IGE buffer length is not a multiple of 16 bytes")
    }
}

impl core::error::Error for LengthError {}

/// 16-byte block as used by the cipher traits.
type B16 = Block<Aes256Enc>;

#[inline(always)]
fn xor(a: &B16, b: &B16) -> B16 {
    let mut out = *a;
    for (o, x) in out.iter_mut().zip(b.iter()) {
        *o ^= *x;
    }
    out
}

/// Splits the IV into the two chain registers `(y0, x0)`.
#[inline(always)]
fn split_iv(iv: &[u8; 32]) -> (B16, B16) {
    let mut y = B16::default();
    let mut x = B16::default();
    let (a, b) = iv.split_at(16);
    y.copy_from_slice(a);
    x.copy_from_slice(b);
    (y, x)
}

struct EncChain<'a> {
    iv: &'a [u8; 32],
    blocks: &'a mut [B16],
}

impl BlockSizeUser for EncChain<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for EncChain<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        // y = previous ciphertext block, x = previous plaintext block.
        let (mut y, mut x) = split_iv(self.iv);
        // The chain works on locals (registers) and writes each output block once, so the
        // serial dependency never goes through a store/reload of the buffer.
        for block in self.blocks.iter_mut() {
            let plain = *block;
            let mut t = xor(&plain, &y);
            backend.encrypt_block_inplace(&mut t);
            let cipher = xor(&t, &x);
            *block = cipher;
            y = cipher;
            x = plain;
        }
    }
}

struct DecChain<'a> {
    iv: &'a [u8; 32],
    blocks: &'a mut [B16],
}

impl BlockSizeUser for DecChain<'_> {
    type BlockSize = U16;
}

impl BlockCipherDecClosure for DecChain<'_> {
    #[inline(always)]
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        let (mut y, mut x) = split_iv(self.iv);
        for block in self.blocks.iter_mut() {
            let cipher = *block;
            let mut t = xor(&cipher, &x);
            backend.decrypt_block_inplace(&mut t);
            let plain = xor(&t, &y);
            *block = plain;
            x = plain;
            y = cipher;
        }
    }
}

/// IGE decryption fused with `SHA256(prefix ‖ plaintext)` (the MTProto 2.0 `msg_key_large`).
///
/// IGE decryption is one serial chain of AES latencies and leaves the SHA units idle, so the
/// loop decrypts four blocks (64 bytes) and, in the same iteration, compresses the SHA-256 block
/// that the PREVIOUS iterations completed: the two chains are independent and the CPU runs them
/// side by side. The hash covers exactly the bytes a separate pass would (the 32-byte prefix, then
/// every plaintext byte, then the FIPS 180-4 padding).
struct DecHashChain<'a> {
    iv: &'a [u8; 32],
    blocks: &'a mut [B16],
    prefix: &'a [u8; 32],
    digest: &'a mut [u8; 32],
}

impl BlockSizeUser for DecHashChain<'_> {
    type BlockSize = U16;
}

/// `a ‖ b` of two 16-byte blocks.
#[inline(always)]
fn cat2(a: &B16, b: &B16) -> [u8; 32] {
    let mut out = [0u8; 32];
    let (l, r) = out.split_at_mut(16);
    l.copy_from_slice(a);
    r.copy_from_slice(b);
    out
}

impl BlockCipherDecClosure for DecHashChain<'_> {
    #[inline(always)]
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        use super::message::{SHA256_H0, sha256_after_prefix, sha256_finish};
        use zeroize::Zeroize;

        let (mut y, mut x) = split_iv(self.iv);
        // A plain function, not a closure: it must inline into the backend's target-feature
        // context, or every AES block becomes a call with the round keys reloaded.
        #[inline(always)]
        fn step<B: BlockCipherDecBackend<BlockSize = U16>>(
            backend: &B,
            block: &mut B16,
            x: &mut B16,
            y: &mut B16,
        ) {
            let cipher = *block;
            let mut t = xor(&cipher, x);
            backend.decrypt_block_inplace(&mut t);
            let plain = xor(&t, y);
            *block = plain;
            *x = plain;
            *y = cipher;
        }
        let mut decrypt = |block: &mut B16| step(backend, block, &mut x, &mut y);
        let blocks = self.blocks;
        let total = blocks.len().saturating_mul(16).saturating_add(32);
        let mut state = SHA256_H0;
        // The hash input is `prefix ‖ plaintext`: SHA block 0 is the prefix and plaintext
        // blocks 0..2, SHA block j >= 1 is plaintext blocks 4j-2 .. 4j+2. An iteration that
        // starts with `done` blocks decrypted compresses SHA block done/4 - 1, whose bytes the
        // previous iteration finished, then decrypts the next four blocks.
        let mut done = 0usize;
        let mut first = [0u8; 64];
        while let Some((prev, next)) = blocks.split_at_mut_checked(done) {
            let Some(chunk) = next.first_chunk_mut::<4>() else {
                break;
            };
            let [p0, p1, p2, p3] = chunk;
            decrypt(p0);
            decrypt(p1);
            decrypt(p2);
            decrypt(p3);
            if done == 4 {
                compress_one(&mut state, &first);
            } else if let Some(sha_block) = prev
                .get(done.wrapping_sub(6)..done.wrapping_sub(2))
                .and_then(|b| Array::slice_as_flattened(b).first_chunk::<64>())
            {
                compress_one(&mut state, sha_block);
            }
            if done == 0 {
                let (a, b) = first.split_at_mut(32);
                a.copy_from_slice(self.prefix);
                b.copy_from_slice(&cat2(p0, p1));
            }
            done = done.saturating_add(4);
        }
        for block in blocks.get_mut(done..).unwrap_or_default() {
            decrypt(block);
        }
        let plain = Array::slice_as_flattened(blocks);
        if done >= 8 {
            // SHA blocks 0 ..= done/4 - 2 are in: the plaintext from 16 * done - 96 on is left.
            let from = done.saturating_mul(16).saturating_sub(96);
            sha256_finish(
                &mut state,
                plain.get(from..).unwrap_or_default(),
                total,
                self.digest,
            );
        } else {
            *self.digest = sha256_after_prefix(self.prefix, plain);
        }
        // `first` holds the prefix (auth_key bytes).
        first.as_mut_slice().zeroize();
    }
}

#[inline(always)]
fn compress_one(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::block_api::compress256(state, core::slice::from_ref(block));
}

/// AES-256-IGE decryption in place that also returns `SHA256(prefix ‖ plaintext)` of the
/// decrypted buffer, computed in the same pass (see `DecHashChain`). Fails, leaving `buf`
/// untouched, if `buf.len()` is not a multiple of 16.
pub(crate) fn aes256_ige_decrypt_sha256(
    key: &[u8; 32],
    iv: &[u8; 32],
    prefix: &[u8; 32],
    buf: &mut [u8],
) -> Result<[u8; 32], LengthError> {
    if !buf.len().is_multiple_of(16) {
        return Err(LengthError);
    }
    let cipher = Aes256Dec::new(&(*key).into());
    let blocks = as_blocks(buf)?;
    let mut digest = [0u8; 32];
    cipher.decrypt_with_backend(DecHashChain {
        iv,
        blocks,
        prefix,
        digest: &mut digest,
    });
    Ok(digest)
}

/// Views `buf` as 16-byte blocks, or fails if its length is not a multiple of 16.
fn as_blocks(buf: &mut [u8]) -> Result<&mut [B16], LengthError> {
    let (blocks, rest) = Array::<u8, U16>::slice_as_chunks_mut(buf);
    if rest.is_empty() {
        Ok(blocks)
    } else {
        Err(LengthError)
    }
}

/// Encrypts `buf` in place with `cipher` in IGE mode (`iv = y0 ‖ x0`, see the module docs).
///
/// Fails, leaving `buf` untouched, if `buf.len()` is not a multiple of 16. An empty buffer is
/// valid and stays empty.
pub fn encrypt_in_place<C>(cipher: &C, iv: &[u8; 32], buf: &mut [u8]) -> Result<(), LengthError>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let blocks = as_blocks(buf)?;
    cipher.encrypt_with_backend(EncChain { iv, blocks });
    Ok(())
}

/// Decrypts `buf` in place with `cipher` in IGE mode (`iv = y0 ‖ x0`, see the module docs).
///
/// Fails, leaving `buf` untouched, if `buf.len()` is not a multiple of 16.
pub fn decrypt_in_place<C>(cipher: &C, iv: &[u8; 32], buf: &mut [u8]) -> Result<(), LengthError>
where
    C: BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
{
    let blocks = as_blocks(buf)?;
    cipher.decrypt_with_backend(DecChain { iv, blocks });
    Ok(())
}

/// AES-256-IGE encryption in place (the cipher's round keys are wiped when it is dropped).
pub fn aes256_ige_encrypt(
    key: &[u8; 32],
    iv: &[u8; 32],
    buf: &mut [u8],
) -> Result<(), LengthError> {
    // Check first so a bad length costs no key schedule.
    if !buf.len().is_multiple_of(16) {
        return Err(LengthError);
    }
    let cipher = Aes256Enc::new(&(*key).into());
    encrypt_in_place(&cipher, iv, buf)
}

/// AES-256-IGE decryption in place (the cipher's round keys are wiped when it is dropped).
pub fn aes256_ige_decrypt(
    key: &[u8; 32],
    iv: &[u8; 32],
    buf: &mut [u8],
) -> Result<(), LengthError> {
    if !buf.len().is_multiple_of(16) {
        return Err(LengthError);
    }
    let cipher = Aes256Dec::new(&(*key).into());
    decrypt_in_place(&cipher, iv, buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::Aes128;

    fn unhex(s: &str) -> alloc::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn arr<const N: usize>(s: &str) -> [u8; N] {
        unhex(s).try_into().unwrap()
    }

    // The two AES-128 test vectors of the original IGE paper (as also shipped in OpenSSL's
    // igetest.c and quoted in issue 3).
    #[test]
    fn ige_paper_vectors_aes128() {
        let cases = [
            (
                "000102030405060708090a0b0c0d0e0f",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "0000000000000000000000000000000000000000000000000000000000000000",
                "1a8519a6557be652e9da8e43da4ef4453cf456b4ca488aa383c79c98b34797cb",
            ),
            (
                "5468697320697320616e20696d706c65",
                "6d656e746174696f6e206f6620494745206d6f646520666f72204f70656e5353",
                "99706487a1cde613bc6de0b6f24b1c7aa448c8b9c3403e3467a8cad89340f53b",
                "4c2e204c6574277320686f70652042656e20676f74206974207269676874210a",
            ),
        ];
        for (key, iv, plain, cipher) in cases {
            let aes = Aes128::new(&arr::<16>(key).into());
            let iv = arr::<32>(iv);
            let mut buf = unhex(plain);
            encrypt_in_place(&aes, &iv, &mut buf).unwrap();
            assert_eq!(buf, unhex(cipher));
            decrypt_in_place(&aes, &iv, &mut buf).unwrap();
            assert_eq!(buf, unhex(plain));
        }
    }

    #[test]
    fn bad_lengths_are_errors_and_leave_buffer_untouched() {
        for len in [1usize, 15, 17, 31, 33, 100] {
            let mut buf = alloc::vec![0xabu8; len];
            assert_eq!(
                aes256_ige_encrypt(&[1; 32], &[2; 32], &mut buf),
                Err(LengthError)
            );
            assert_eq!(
                aes256_ige_decrypt(&[1; 32], &[2; 32], &mut buf),
                Err(LengthError)
            );
            let aes = Aes128::new(&[0u8; 16].into());
            assert_eq!(encrypt_in_place(&aes, &[0; 32], &mut buf), Err(LengthError));
            assert_eq!(decrypt_in_place(&aes, &[0; 32], &mut buf), Err(LengthError));
            assert!(buf.iter().all(|&b| b == 0xab));
        }
    }

    #[test]
    fn empty_buffer_is_ok() {
        let mut buf: [u8; 0] = [];
        assert_eq!(aes256_ige_encrypt(&[1; 32], &[2; 32], &mut buf), Ok(()));
        assert_eq!(aes256_ige_decrypt(&[1; 32], &[2; 32], &mut buf), Ok(()));
    }
}

/// AES-256-IGE against a straightforward, independent reference: the IGE formulas written out
/// block by block on top of the `aes` crate's single-block calls (no code shared with the
/// backend-closure implementation above), over random keys, IVs and lengths.
#[cfg(test)]
mod reference_tests {
    use crate::crypto::ige;
    use aes::Aes256;
    use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
    use alloc::{vec, vec::Vec};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    fn xor16(a: &[u8], b: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        for i in 0..16 {
            out[i] = a[i] ^ b[i];
        }
        out
    }

    /// c_i = E(p_i ^ c_{i-1}) ^ p_{i-1}, c_0 = iv[..16], p_0 = iv[16..].
    fn reference_encrypt(key: &[u8; 32], iv: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        let aes = Aes256::new(&(*key).into());
        let (mut c_prev, mut p_prev) = (iv[..16].to_vec(), iv[16..].to_vec());
        let mut out = Vec::new();
        for p in plain.chunks(16) {
            let mut block = xor16(p, &c_prev).into();
            aes.encrypt_block(&mut block);
            let c = xor16(&block, &p_prev);
            out.extend_from_slice(&c);
            c_prev = c.to_vec();
            p_prev = p.to_vec();
        }
        out
    }

    /// p_i = D(c_i ^ p_{i-1}) ^ c_{i-1}.
    fn reference_decrypt(key: &[u8; 32], iv: &[u8; 32], cipher: &[u8]) -> Vec<u8> {
        let aes = Aes256::new(&(*key).into());
        let (mut c_prev, mut p_prev) = (iv[..16].to_vec(), iv[16..].to_vec());
        let mut out = Vec::new();
        for c in cipher.chunks(16) {
            let mut block = xor16(c, &p_prev).into();
            aes.decrypt_block(&mut block);
            let p = xor16(&block, &c_prev);
            out.extend_from_slice(&p);
            c_prev = c.to_vec();
            p_prev = p.to_vec();
        }
        out
    }

    #[test]
    fn aes256_ige_matches_reference_over_random_lengths() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x16e);
        for round in 0..300 {
            let mut key = [0u8; 32];
            let mut iv = [0u8; 32];
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut iv);
            // Mostly short buffers, a few long ones (up to 4 KiB + a bit).
            let blocks = if round % 10 == 0 {
                rng.next_u32() % 300
            } else {
                rng.next_u32() % 20
            };
            let mut plain = vec![0u8; blocks as usize * 16];
            rng.fill_bytes(&mut plain);

            let mut buf = plain.clone();
            ige::aes256_ige_encrypt(&key, &iv, &mut buf).unwrap();
            assert_eq!(
                buf,
                reference_encrypt(&key, &iv, &plain),
                "encrypt, {blocks} blocks"
            );
            assert_eq!(reference_decrypt(&key, &iv, &buf), plain);
            ige::aes256_ige_decrypt(&key, &iv, &mut buf).unwrap();
            assert_eq!(buf, plain, "decrypt, {blocks} blocks");

            // Decrypting random bytes agrees with the reference too.
            let mut junk = plain.clone();
            ige::aes256_ige_decrypt(&key, &iv, &mut junk).unwrap();
            assert_eq!(junk, reference_decrypt(&key, &iv, &plain));
        }
    }
}

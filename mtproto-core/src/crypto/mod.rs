//! Cryptographic primitives of MTProto: AES-256-IGE, the MTProto 2.0 and 1.0 KDFs, message
//! encryption and decryption, and the key derivations used while creating an auth key
//! ([`handshake_kdf`]). Knows nothing of sessions.
//!
//! Everything here is a pure function of its inputs (randomness comes from the caller's
//! [`rand_core::CryptoRng`]); nothing allocates on the message hot path.
//!
//! No panics from the wire: indexing, unchecked arithmetic and lossy casts are denied here
//! (tests excepted); every length from a peer or a caller goes through `get`/`checked_*`.

mod auth_key;
pub mod handshake_kdf;
pub mod ige;
pub mod message;
pub mod v1;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use auth_key::{AuthKey, Side};

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// SHA-1 over the concatenation of `parts`.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        #[cfg(test)]
        sha1_meter::record(p.len(), 0);
        h.update(p);
    }
    #[cfg(test)]
    sha1_meter::record(0, 1);
    h.finalize().into()
}

/// Unit tests only: how much SHA-1 work this thread did (bytes absorbed, digests finished), to
/// check that work does not depend on secret data.
#[cfg(test)]
pub(crate) mod sha1_meter {
    use core::cell::Cell;

    std::thread_local! {
        static WORK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// Adds `bytes` absorbed and `finals` digests finished.
    pub(crate) fn record(bytes: usize, finals: usize) {
        WORK.with(|w| {
            let (b, f) = w.get();
            w.set((b + bytes, f + finals));
        });
    }

    /// Runs `f` and returns the SHA-1 work it did on this thread.
    pub(crate) fn measure(f: impl FnOnce()) -> (usize, usize) {
        let before = WORK.with(Cell::get);
        f();
        let after = WORK.with(Cell::get);
        (after.0 - before.0, after.1 - before.1)
    }
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Constant-time equality of two byte strings (via `subtle`). Returns `false` when the lengths
/// differ (the length itself is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_helpers_concatenate() {
        // FIPS 180 "abc" vectors, split across parts.
        assert_eq!(
            sha1(&[b"a", b"", b"bc"]),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
            ]
        );
        assert_eq!(
            sha256(&[b"ab", b"c"]),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
    }

    /// Issue 9 item 2: v1 decryption hashed `32 + length` bytes when the decrypted length field
    /// looked plausible and 32 otherwise, so its timing followed secret-derived data (a server
    /// verifying `auth.bindTempAuthKey` runs it on attacker-chosen ciphertext). Every buffer of
    /// one size must now cost the same SHA-1 work, whatever the length field decrypts to.
    #[test]
    fn v1_decrypt_work_does_not_depend_on_the_decrypted_length() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::{Rng, SeedableRng};

        let key = AuthKey::from_bytes(core::array::from_fn(|i| (i * 7 + 3) as u8));
        let mut rng = ChaCha20Rng::seed_from_u64(0x7131);
        // All encrypt to 24 + 96 bytes: (plaintext length, length field).
        let mut cases = alloc::vec![];
        for data_len in [84usize, 88, 92, 96] {
            cases.push((data_len, (data_len - 32) as u32, true));
        }
        for field in [0u32, 3, 20, 52, 56, 60, 61, 68, 1000, 1 << 31, u32::MAX] {
            cases.push((96, field, false));
        }
        let mut work = alloc::vec![];
        for (data_len, field, valid) in cases {
            let mut plain = alloc::vec![0u8; data_len];
            rng.fill_bytes(&mut plain);
            plain[28..32].copy_from_slice(&field.to_le_bytes());
            let mut buf = v1::encrypt(&key, Side::Client, &plain, &mut rng);
            assert_eq!(buf.len(), 24 + 96);
            let w = sha1_meter::measure(|| {
                let r = v1::decrypt(&key, Side::Client, &mut buf);
                assert_eq!(r.is_ok(), valid, "{data_len} bytes, field {field}");
                if valid {
                    assert_eq!(r.unwrap(), &plain[..]);
                }
            });
            work.push((data_len, field, w));
        }
        assert!(
            work.iter().all(|&(_, _, w)| w == work[0].2),
            "SHA-1 work (bytes, digests) varies: {work:?}"
        );
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}

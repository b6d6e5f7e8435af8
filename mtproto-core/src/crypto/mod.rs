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

pub use auth_key::{AuthKey, Side};

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// SHA-1 over the concatenation of `parts`.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
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

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}

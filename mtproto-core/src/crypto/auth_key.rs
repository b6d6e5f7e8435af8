//! The 2048-bit authorization key and the direction of a message.

use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Who SENDS a message. Selects the auth_key offset `x` of the KDFs
/// (`mtproto_description.md`: "x = 0 for messages from client to server and x = 8 for those
/// from server to client").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The message goes from the client to the server (`x = 0`).
    Client,
    /// The message goes from the server to the client (`x = 8`).
    Server,
}

impl Side {
    /// The KDF offset `x`: 0 for client→server, 8 for server→client.
    pub const fn x(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 8,
        }
    }

    /// The other side.
    pub const fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// A 2048-bit MTProto authorization key (permanent or temporary).
///
/// Wiped on drop. `Debug` prints only the public `auth_key_id`.
#[derive(Clone)]
pub struct AuthKey {
    key: [u8; 256],
    id: i64,
    aux_hash: i64,
}

impl AuthKey {
    /// Wraps 256 key bytes (big-endian `g_ab`, as produced by the handshake). `auth_key_id` and
    /// `aux_hash` are computed once here.
    pub fn from_bytes(bytes: [u8; 256]) -> Self {
        let h = super::sha1(&[&bytes]);
        // auth_key_id = the 64 lower-order bits of SHA1(auth_key) = bytes 12..20 read as a
        // little-endian int64 (mtproto_description.md, "Key Identifier");
        // auth_key_aux_hash = the 64 higher-order bits = bytes 0..8 (mtproto_auth_key.md).
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            _,
            _,
            _,
            _,
            i0,
            i1,
            i2,
            i3,
            i4,
            i5,
            i6,
            i7,
        ] = h;
        AuthKey {
            key: bytes,
            id: i64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            aux_hash: i64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
        }
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 256] {
        &self.key
    }

    /// `auth_key_id`: the low 64 bits of SHA1(key), i.e. bytes 12..20 as little-endian.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// `auth_key_aux_hash`: the high 64 bits of SHA1(key), i.e. bytes 0..8 as little-endian.
    /// Secret-ish (it goes into `new_nonce_hash` and `retry_id`), so never printed.
    pub fn aux_hash(&self) -> i64 {
        self.aux_hash
    }

    /// `substr(auth_key, start, len)`. Every caller passes constant offsets with
    /// `start + len <= 136` (the largest is v1's `96 + x + 32`), so the fallback is unreachable.
    #[inline]
    pub(crate) fn substr(&self, start: usize, len: usize) -> &[u8] {
        let end = start.saturating_add(len);
        debug_assert!(end <= self.key.len());
        self.key.get(start..end).unwrap_or(&[])
    }

    /// `substr(auth_key, base + x, len)` where `x` is `side`'s KDF offset ([`Side::x`]).
    #[inline]
    pub(crate) fn substr_x(&self, base: usize, side: Side, len: usize) -> &[u8] {
        // base <= 96 and x <= 8 at every call site; saturating only keeps the lint honest
        // (an out-of-range start yields the empty fallback of `substr`, never a panic).
        self.substr(base.saturating_add(side.x()), len)
    }
}

impl AuthKey {
    /// `substr(auth_key, base + x, N)` as an array. As for [`substr`](Self::substr), every
    /// caller passes constant offsets with `base + 8 + N <= 256`; the fallback is unreachable.
    #[inline(always)]
    pub(crate) fn array_x<const N: usize>(&self, base: usize, side: Side) -> &[u8; N] {
        self.key
            .get(base.saturating_add(side.x())..)
            .and_then(|k| k.first_chunk::<N>())
            .unwrap_or(&[0; N])
    }
}

impl Drop for AuthKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.aux_hash.zeroize();
    }
}

impl ZeroizeOnDrop for AuthKey {}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey {{ id: {:#018x}, .. }}", self.id)
    }
}

impl PartialEq for AuthKey {
    /// Constant-time comparison of the key bytes.
    fn eq(&self, other: &Self) -> bool {
        super::ct_eq(&self.key, &other.key)
    }
}

impl Eq for AuthKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_shows_only_the_id() {
        let key = AuthKey::from_bytes([0x5a; 256]);
        let s = format!("{key:?}");
        assert!(s.contains(&format!("{:#018x}", key.id())), "{s}");
        assert!(!s.contains("5a, 5a") && !s.contains("90, 90"), "{s}");
        assert!(!s.contains(&format!("{:x}", key.aux_hash())), "{s}");
    }

    #[test]
    fn auth_key_is_zeroize_on_drop() {
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<AuthKey>();
        // The AES ciphers built from derived keys wipe their round keys too (aes `zeroize`).
        assert_zeroize_on_drop::<aes::Aes256Enc>();
        assert_zeroize_on_drop::<aes::Aes256Dec>();
    }

    #[test]
    fn side_offsets() {
        assert_eq!(Side::Client.x(), 0);
        assert_eq!(Side::Server.x(), 8);
        assert_eq!(Side::Client.peer(), Side::Server);
    }
}

//! Key derivations used while creating an authorization key (`mtproto_auth_key.md`).

use super::{AuthKey, sha1};
use zeroize::Zeroizing;

/// `(tmp_aes_key, tmp_aes_iv)` for encrypting `server_DH_inner_data` / `client_DH_inner_data`
/// with AES-256-IGE (`mtproto_auth_key.md`, step 6):
///
/// ```text
/// tmp_aes_key = SHA1(new_nonce + server_nonce) + substr(SHA1(server_nonce + new_nonce), 0, 12)
/// tmp_aes_iv  = substr(SHA1(server_nonce + new_nonce), 12, 8) + SHA1(new_nonce + new_nonce)
///               + substr(new_nonce, 0, 4)
/// ```
///
/// Both are derived from the secret `new_nonce` and are wiped when dropped (as are the hashes
/// they are built from).
pub fn tmp_aes_key_iv(
    new_nonce: &[u8; 32],
    server_nonce: &[u8; 16],
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let a = Zeroizing::new(sha1(&[new_nonce, server_nonce]));
    let b = Zeroizing::new(sha1(&[server_nonce, new_nonce]));
    let c = Zeroizing::new(sha1(&[new_nonce, new_nonce]));
    let mut key = Zeroizing::new([0u8; 32]);
    let mut iv = Zeroizing::new([0u8; 32]);
    let (k0, k1) = key.split_at_mut(20);
    k0.copy_from_slice(a.as_slice());
    k1.copy_from_slice(b.first_chunk::<12>().unwrap_or(&[0; 12]));
    let (i0, rest) = iv.split_at_mut(8);
    let (i1, i2) = rest.split_at_mut(20);
    i0.copy_from_slice(b.last_chunk::<8>().unwrap_or(&[0; 8]));
    i1.copy_from_slice(c.as_slice());
    i2.copy_from_slice(new_nonce.first_chunk::<4>().unwrap_or(&[0; 4]));
    (key, iv)
}

/// `new_nonce_hash1/2/3`: the 128 lower-order bits of
/// `SHA1(new_nonce + byte(number) + auth_key_aux_hash)` (`mtproto_auth_key.md`, step 9;
/// `number` is 1 for `dh_gen_ok`, 2 for `dh_gen_retry`, 3 for `dh_gen_fail`).
pub fn new_nonce_hash(auth_key: &AuthKey, new_nonce: &[u8; 32], number: u8) -> [u8; 16] {
    let aux = auth_key.aux_hash().to_le_bytes();
    let h = sha1(&[new_nonce, &[number], &aux]);
    *h.last_chunk::<16>().unwrap_or(&[0; 16])
}

/// The first server salt after key creation: `substr(new_nonce, 0, 8) XOR substr(server_nonce,
/// 0, 8)` (`mtproto_auth_key.md`, step 9), as the little-endian `long` it is on the wire.
pub fn initial_server_salt(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> i64 {
    let mut salt = [0u8; 8];
    for ((s, n), sn) in salt.iter_mut().zip(new_nonce).zip(server_nonce) {
        *s = n ^ sn;
    }
    i64::from_le_bytes(salt)
}

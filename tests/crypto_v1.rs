//! MTProto 1.0 KDF and the v1 encryption of `bind_auth_key_inner`, against a Python reference
//! written straight from `mtproto_description_v1.md` and `method_auth.bindTempAuthKey.md`
//! (hashlib + pycryptodome, IGE chain spelled out; `auth_key[i] = (i * 13 + 5) & 0xff`).

mod common;

use common::hex as unhex;
use mtproto::core::crypto::message::DecryptError;
use mtproto::core::crypto::{AuthKey, Side, v1};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

fn test_key() -> AuthKey {
    let mut k = [0u8; 256];
    for (i, b) in k.iter_mut().enumerate() {
        *b = ((i * 13 + 5) & 0xff) as u8;
    }
    AuthKey::from_bytes(k)
}

/// Serves bytes from a script, in order. Test-only.
struct Stream(std::vec::IntoIter<u8>);
impl rand_core::TryRng for Stream {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
        unimplemented!()
    }
    fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
        unimplemented!()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
        for d in dst {
            *d = self.0.next().expect("script exhausted");
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Stream {}

#[test]
fn v1_kdf_matches_reference_both_directions() {
    let key = test_key();
    let mk: [u8; 16] = core::array::from_fn(|i| i as u8);
    // Zeroizing: the key and IV are wiped on drop (issue 9 item 5).
    let (k, iv): v1::KeyIv = v1::kdf(&key, Side::Client, &mk);
    let (_, _): (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) = v1::kdf(&key, Side::Client, &mk);
    assert_eq!(
        k.to_vec(),
        unhex("3a9e0a35f7806c0b31087b6209bef5de101cb0b7c22ff405e53e5908c1e48120")
    );
    assert_eq!(
        iv.to_vec(),
        unhex("a7fe93f858509976619e93e0f5838c167937fe6efe0336e04a09d0be981e503b")
    );
    let (k, iv) = v1::kdf(&key, Side::Server, &mk);
    assert_eq!(
        k.to_vec(),
        unhex("c9b908d0c6531313bf1ad0a9aa8aa3ff867dee053e39713a175d24de98929640")
    );
    assert_eq!(
        iv.to_vec(),
        unhex("797bc885ef02f7f2d03545ee1ef8fb5f2df38e24b5a19fd9cc6fdf09e566eada")
    );
}

/// bind_auth_key_inner#75a3f765 nonce=0x1111 temp_auth_key_id=0x2222 perm_auth_key_id=0x3333
/// temp_session_id=0x4444 expires_at=1700000000.
const INNER: &str =
    "65f7a375111100000000000022220000000000003333000000000000444400000000000000f15365";
/// random = a0..b0, msg_id = 0x5f000000000000a8, padding = c0..c8.
const BIND: &str = "fc4eaf55f743da3fce0fe77e3e8a23c4628a810f04ed5180f92f36714ac4da315b87cad62222e9b4a41575c1efb1f17a8331764cb68b08ad4cad087f70920901624e957b32507e83142f1f25cd2aa4449587c037dcee17a275a3cb0056a060e5878489e65370ce3d";
const MSG_ID: i64 = 0x5f000000000000a8;

#[test]
fn bind_message_matches_reference() {
    let key = test_key();
    let inner: [u8; 40] = unhex(INNER).try_into().unwrap();
    let script: Vec<u8> = (0xa0..0xb0).chain(0xc0..0xc8).collect();
    let out =
        v1::encrypt_bind_auth_key_inner(&key, MSG_ID, &inner, &mut Stream(script.into_iter()));
    assert_eq!(out, unhex(BIND));

    let mut buf = unhex(BIND);
    let m = v1::decrypt_bind_auth_key_inner(&key, &mut buf).unwrap();
    assert_eq!((m.msg_id, m.seq_no), (MSG_ID, 0));
    assert_eq!(m.inner, &inner[..]);
}

#[test]
fn v1_round_trip_and_rejections() {
    let key = test_key();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for data_words in 0..40usize {
        let mut plain = vec![0u8; 32 + data_words * 4];
        rng.fill_bytes(&mut plain);
        plain[28..32].copy_from_slice(&((data_words * 4) as u32).to_le_bytes());
        for side in [Side::Client, Side::Server] {
            let enc = v1::encrypt(&key, side, &plain, &mut rng);
            assert_eq!((enc.len() - 24) % 16, 0);
            assert!(enc.len() - 24 - plain.len() < 16);
            let mut buf = enc.clone();
            assert_eq!(v1::decrypt(&key, side, &mut buf).unwrap(), &plain[..]);
            // Wrong direction, any flipped bit past the key id: the one opaque error.
            let mut buf = enc.clone();
            assert_eq!(
                v1::decrypt(&key, side.peer(), &mut buf),
                Err(DecryptError::Rejected)
            );
            let bit = rng.next_u32() as usize % ((enc.len() - 8) * 8) + 64;
            let mut buf = enc.clone();
            buf[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                v1::decrypt(&key, side, &mut buf),
                Err(DecryptError::Rejected)
            );
        }
    }
}

#[test]
fn v1_rejects_bad_lengths_and_keys() {
    let key = test_key();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut plain = vec![0u8; 48];
    plain[28..32].copy_from_slice(&16u32.to_le_bytes());
    let enc = v1::encrypt(&key, Side::Client, &plain, &mut rng);
    let mut short = enc[..50].to_vec();
    assert_eq!(
        v1::decrypt(&key, Side::Client, &mut short),
        Err(DecryptError::TooShort)
    );
    let mut odd = enc.clone();
    odd.push(0);
    assert_eq!(
        v1::decrypt(&key, Side::Client, &mut odd),
        Err(DecryptError::NotBlockAligned)
    );
    let mut other = enc.clone();
    assert_eq!(
        v1::decrypt(&AuthKey::from_bytes([1; 256]), Side::Client, &mut other),
        Err(DecryptError::WrongAuthKeyId)
    );
    // A length field that disagrees with the hashed data (valid msg_key for the claimed
    // length is impossible to forge, so these all fail the same way).
    for claimed in [0u32, 15, 20, 32, 1 << 31] {
        let mut p = plain.clone();
        p[28..32].copy_from_slice(&claimed.to_le_bytes());
        let mut e = v1::encrypt(&key, Side::Client, &p, &mut rng);
        assert_eq!(
            v1::decrypt(&key, Side::Client, &mut e),
            Err(DecryptError::Rejected),
            "{claimed}"
        );
    }
}

#[test]
fn v1_arbitrary_bytes_never_panic() {
    let key = test_key();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for len in 0..400usize {
        let mut buf = vec![0u8; len];
        rng.fill_bytes(&mut buf);
        if len >= 8 && len % 2 == 0 {
            buf[..8].copy_from_slice(&key.id().to_le_bytes());
        }
        assert!(v1::decrypt(&key, Side::Client, &mut buf).is_err());
    }
}

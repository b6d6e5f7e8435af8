#![no_main]
//! Decrypts arbitrary bytes with a fixed auth key, as an MTProto 2.0 message from either side
//! and as an MTProto 1.0 (bind) message. Must never panic.
//!
//! Nobody can forge a msg_key, so raw fuzz input stops at the msg_key check. To reach the checks
//! behind it (length field, padding bounds, msg_id parity), mode bit 2 treats the input as a
//! PLAINTEXT and seals it with a genuine msg_key first; the decrypted view must then agree with
//! the plaintext's own length field.
use libfuzzer_sys::fuzz_target;
use mtproto_core::crypto::message::{self, DecryptError};
use mtproto_core::crypto::{AuthKey, Side, ige, v1};

fn seal(key: &AuthKey, side: Side, plaintext: &[u8]) -> Vec<u8> {
    let large = message::msg_key_large(key, side, plaintext);
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&large[8..24]);
    let (k, iv) = message::kdf(key, side, &msg_key);
    let mut out = key.id().to_le_bytes().to_vec();
    out.extend_from_slice(&msg_key);
    let start = out.len();
    out.extend_from_slice(plaintext);
    ige::aes256_ige_encrypt(&k, &iv, &mut out[start..]).unwrap();
    out
}

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ 0x5c));
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let side = if mode & 2 == 0 {
        Side::Client
    } else {
        Side::Server
    };
    if mode & 4 != 0 {
        // Structured: a genuine msg_key around a fuzzer-chosen (block-aligned) plaintext.
        let mut plain = rest.to_vec();
        plain.resize(rest.len().next_multiple_of(16), 0);
        let mut buf = seal(&key, side, &plain);
        match message::decrypt_message(&key, side, &mut buf) {
            Ok(m) => {
                let length = u32::from_le_bytes(plain[28..32].try_into().unwrap()) as usize;
                assert_eq!(m.body, &plain[32..32 + length]);
                let padding = plain.len() - 32 - length;
                assert!((12..=1024).contains(&padding) && length % 4 == 0);
                assert_eq!(m.msg_id & 1 == 1, side == Side::Server);
            }
            Err(e) => assert!(
                matches!(e, DecryptError::Rejected | DecryptError::TooShort),
                "{e:?}"
            ),
        }
        return;
    }
    // Raw: optionally with the right auth_key_id so the KDF and IGE run.
    let mut buf = Vec::with_capacity(rest.len() + 8);
    if mode & 1 == 1 {
        buf.extend_from_slice(&key.id().to_le_bytes());
    }
    buf.extend_from_slice(rest);
    let mut copy = buf.clone();
    match message::decrypt_message(&key, side, &mut buf) {
        Ok(m) => assert!(m.body.len() <= copy.len()),
        Err(DecryptError::Rejected | DecryptError::TooShort | DecryptError::NotBlockAligned) => {}
        Err(e) => assert!(mode & 1 == 0, "{e:?}"),
    }
    let _ = v1::decrypt(&key, side, &mut copy);
    let _ = v1::decrypt_bind_auth_key_inner(&key, &mut copy);
});

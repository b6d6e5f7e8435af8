#![no_main]
//! Decrypts arbitrary bytes with a fixed auth key, as an MTProto 2.0 message from either side
//! and as an MTProto 1.0 (bind) message. Must never panic; and since nobody can forge a msg_key,
//! anything the fuzzer makes up must be rejected — unless it starts from a genuine message.
use libfuzzer_sys::fuzz_target;
use mtproto_core::crypto::message::{self, DecryptError};
use mtproto_core::crypto::{AuthKey, Side, v1};

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ 0x5c));
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Half the inputs get the right auth_key_id so the fuzzer reaches the KDF and beyond.
    let mut buf = Vec::with_capacity(rest.len() + 8);
    if mode & 1 == 1 {
        buf.extend_from_slice(&key.id().to_le_bytes());
    }
    buf.extend_from_slice(rest);
    let side = if mode & 2 == 0 { Side::Client } else { Side::Server };
    let mut copy = buf.clone();
    match message::decrypt_message(&key, side, &mut buf) {
        Ok(m) => assert!(m.body.len() <= copy.len()),
        Err(DecryptError::Rejected | DecryptError::TooShort | DecryptError::NotBlockAligned) => {}
        Err(e) => assert!(mode & 1 == 0 || rest.len() < 8, "{e:?}"),
    }
    let _ = v1::decrypt(&key, side, &mut copy);
    let _ = v1::decrypt_bind_auth_key_inner(&key, &mut copy);
});

//! Property tests of message encryption: round trips for any body, key, policy and direction;
//! every single-bit flip is rejected; malformed input is an error, never a panic.

use mtproto::core::crypto::message::{
    DecryptError, MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
};
use mtproto::core::crypto::{AuthKey, Side};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key_strategy() -> impl Strategy<Value = AuthKey> {
    proptest::collection::vec(any::<u8>(), 256)
        .prop_map(|v| AuthKey::from_bytes(v.try_into().unwrap()))
}

fn policy_strategy() -> impl Strategy<Value = PaddingPolicy> {
    prop_oneof![
        Just(PaddingPolicy::default()),
        Just(PaddingPolicy::Bucket),
        (12usize..=1009)
            .prop_flat_map(|min| (Just(min), (min + 15)..=1024))
            .prop_map(|(min, max)| PaddingPolicy::Random { min, max }),
    ]
}

fn side_strategy() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Client), Just(Side::Server)]
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    (0usize..512).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4))
}

/// msg_id with the sender's parity.
fn header_for(side: Side, raw: (i64, i64, i64, i32)) -> MessageHeader {
    let msg_id = match side {
        Side::Client => raw.2 & !1,
        Side::Server => raw.2 | 1,
    };
    MessageHeader {
        salt: raw.0,
        session_id: raw.1,
        msg_id,
        seq_no: raw.3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip(
        key in key_strategy(),
        side in side_strategy(),
        policy in policy_strategy(),
        body in body_strategy(),
        raw in any::<(i64, i64, i64, i32)>(),
        seed in any::<u64>(),
    ) {
        let h = header_for(side, raw);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let enc = encrypt_message_to_vec(&key, side, &h, &body, &policy, &mut rng).unwrap();
        let padding = enc.bytes.len() - 24 - 32 - body.len();
        prop_assert!((12..=1024).contains(&padding));
        prop_assert_eq!((enc.bytes.len() - 24) % 16, 0);
        if let PaddingPolicy::Random { min, max } = policy {
            prop_assert!((min..=max).contains(&padding));
        }
        let mut buf = enc.bytes.clone();
        let m = decrypt_message(&key, side, &mut buf).unwrap();
        prop_assert_eq!(m.body, &body[..]);
        prop_assert_eq!((m.salt, m.session_id, m.msg_id, m.seq_no), (h.salt, h.session_id, h.msg_id, h.seq_no));
        prop_assert_eq!(m.quick_ack_token, enc.quick_ack_token);
        prop_assert!(m.quick_ack_token & 0x8000_0000 != 0);
        // The other direction's keys never accept it.
        let mut buf = enc.bytes.clone();
        prop_assert_eq!(decrypt_message(&key, side.peer(), &mut buf), Err(DecryptError::Rejected));
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        key in key_strategy(),
        side in side_strategy(),
        body in body_strategy(),
        raw in any::<(i64, i64, i64, i32)>(),
        seed in any::<u64>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let h = header_for(side, raw);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let enc = encrypt_message_to_vec(&key, side, &h, &body, &PaddingPolicy::Bucket, &mut rng).unwrap();
        let mut buf = enc.bytes.clone();
        let i = bit.index(buf.len() * 8);
        buf[i / 8] ^= 1 << (i % 8);
        let expected = if i < 64 { DecryptError::WrongAuthKeyId } else { DecryptError::Rejected };
        prop_assert_eq!(decrypt_message(&key, side, &mut buf), Err(expected));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        side in side_strategy(),
        tail in proptest::collection::vec(any::<u8>(), 0..700),
        with_key_id in any::<bool>(),
    ) {
        let key = AuthKey::from_bytes([0x3c; 256]);
        let mut buf = Vec::new();
        if with_key_id {
            buf.extend_from_slice(&key.id().to_le_bytes());
        }
        buf.extend_from_slice(&tail);
        let len = buf.len();
        let r = decrypt_message(&key, side, &mut buf).map(|m| m.msg_id);
        prop_assert!(r.is_err());
        if len < 72 {
            prop_assert_eq!(r, Err(DecryptError::TooShort));
        } else if (len - 24) % 16 != 0 {
            prop_assert_eq!(r, Err(DecryptError::NotBlockAligned));
        } else if with_key_id {
            prop_assert_eq!(r, Err(DecryptError::Rejected));
        }
    }

    #[test]
    fn truncated_or_extended_messages_are_rejected(
        side in side_strategy(),
        body in body_strategy(),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..64),
        seed in any::<u64>(),
    ) {
        let key = AuthKey::from_bytes([0x77; 256]);
        let h = header_for(side, (1, 2, 3 << 2, 4));
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let enc = encrypt_message_to_vec(&key, side, &h, &body, &PaddingPolicy::default(), &mut rng).unwrap();
        let mut short = enc.bytes[..cut.index(enc.bytes.len())].to_vec();
        prop_assert!(decrypt_message(&key, side, &mut short).is_err());
        let mut long = enc.bytes.clone();
        long.extend_from_slice(&extra);
        prop_assert!(decrypt_message(&key, side, &mut long).is_err());
    }
}

//! API conventions that hold across layers, checked at the type level (issue 9, items 10-11):
//! these tests fail to compile if a layer drifts from the shared convention.

use mtproto::core::crypto::message::{
    MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec, peek_auth_key_id,
};
use mtproto::core::crypto::{AuthKey, Side, handshake_kdf, v1};
use mtproto::core::handshake::pfs::bind_temp_auth_key;
use mtproto::core::handshake::{ClientConfig, ClientHandshake, RsaKeySet, RsaPublicKey};
use mtproto::core::plain;
use mtproto::core::rand_core::CryptoRng;
use mtproto::core::time::UnixTime;
use mtproto::core::tl::schema::types;
use mtproto::core::transport::{Codec, Framing, ObfuscatedCodec, Role, Transport};

fn client() -> ClientHandshake {
    ClientHandshake::new(ClientConfig::new(RsaKeySet::telegram_production(), 2))
}

/// One RNG bound everywhere: a `&mut dyn CryptoRng` goes to the handshake, to
/// `Transport::encode` (plain and obfuscated) and to the obfuscated codec's constructor.
#[test]
fn dyn_crypto_rng_fits_handshake_and_transport() {
    let mut seeded = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(9);
    let rng: &mut dyn CryptoRng = &mut seeded;

    let req_pq = client().start(rng).unwrap();
    assert_eq!(
        req_pq.len(),
        20,
        "req_pq_multi: constructor id and int128 nonce"
    );

    let mut out = Vec::new();
    let mut plain = Transport::Plain(Codec::new(Framing::PaddedIntermediate, Role::Client));
    plain.encode(&req_pq, false, rng, &mut out).unwrap();
    let len = u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize;
    assert!(len >= req_pq.len() && len < req_pq.len() + 16);
    assert_eq!(&out[8..8 + req_pq.len()], &req_pq[..]);

    let obf = ObfuscatedCodec::client(Framing::Intermediate, Some(2), None, rng).unwrap();
    let mut obf = Transport::Obfuscated(obf);
    out.clear();
    obf.encode(&req_pq, false, rng, &mut out).unwrap();
    assert!(out.len() >= req_pq.len());
}

/// Today's `rand` (0.10): its OS-seeded thread RNG and `make_rng` plug in without adapters.
#[test]
fn rand_0_10_os_seeded_rngs_fit() {
    let mut thread = rand::rng();
    let a = client().start(&mut thread).unwrap();
    let mut std_rng: rand::rngs::StdRng = rand::make_rng();
    let b = client().start(&mut std_rng).unwrap();
    // Same constructor id, independent OS-seeded nonces.
    assert_eq!(a[..4], b[..4]);
    assert_ne!(a[4..], b[4..]);

    let mut out = Vec::new();
    let mut t = Transport::Plain(Codec::new(Framing::Intermediate, Role::Client));
    t.encode(&a, false, &mut thread, &mut out).unwrap();
    assert_eq!(&out[8..], &a[..]);
}

/// `BigUint` of the RSA/DH signatures is reachable from the crate itself.
#[test]
fn biguint_is_reexported() {
    let n = mtproto::core::BigUint::from_bytes_be(&[1, 0]);
    assert_eq!(n.to_bytes_be(), [1, 0]);
}

/// TL `long` protocol fields (msg_id, salt, session_id, auth_key_id, RSA fingerprints) are
/// `i64` and TL `int` seq_no is `i32` in every layer: values flow between the plain envelope,
/// the handshake derivations, the crypto layer and TL types without a single cast.
#[test]
fn protocol_ids_are_tl_long_and_int_everywhere() {
    let now = UnixTime::from_secs(1_700_000_000);
    let msg_id = plain::msg_id_from_time(now);
    let salt = handshake_kdf::initial_server_salt(&[0x11; 32], &[0x22; 16]);
    let key = AuthKey::from_bytes([7; 256]);
    let bad = types::BadMsgNotification {
        bad_msg_id: msg_id,
        bad_msg_seqno: 3,
        error_code: 48,
    };
    let header = MessageHeader {
        salt,
        session_id: key.id(),
        msg_id: bad.bad_msg_id,
        seq_no: bad.bad_msg_seqno,
    };
    let mut rng = rand::rng();
    let mut sealed = encrypt_message_to_vec(
        &key,
        Side::Client,
        &header,
        &[0; 16],
        &PaddingPolicy::default(),
        &mut rng,
    )
    .unwrap()
    .bytes;
    assert_eq!(peek_auth_key_id(&sealed), Some(key.id()));
    let msg = decrypt_message(&key, Side::Client, &mut sealed).unwrap();
    let pong = types::Pong {
        msg_id: msg.msg_id,
        ping_id: msg.session_id,
    };
    assert_eq!((pong.msg_id, msg.seq_no, msg.salt), (msg_id, 3, salt));
    // 0x11 ^ 0x22 in every byte: a TL `long` with the top bit clear.
    assert_eq!(salt, 0x3333_3333_3333_3333);

    // RSA fingerprints as resPQ carries them (Vector<long>).
    let res_pq_fingerprints: Vec<i64> = vec![RsaPublicKey::telegram_production().fingerprint()];
    let set = RsaKeySet::telegram_production();
    assert!(set.select(&res_pq_fingerprints).is_some());
    // rsa_keys_and_dh_prime.md: wire bytes 85FD64DE851D9DD0 (a negative `long`).
    assert_eq!(res_pq_fingerprints[0], -3414540481677951611);

    // The PFS bind takes the same msg_id and session id, and v1 reports them back as i64/i32.
    let temp = AuthKey::from_bytes([9; 256]);
    let body = bind_temp_auth_key(
        &key,
        &temp,
        header.session_id,
        1_700_086_400,
        msg_id,
        &mut rng,
    );
    assert!(body.is_ok());
    let mut v1_msg = v1::encrypt_bind_auth_key_inner(&key, msg_id, &[0; 40], &mut rng);
    let opened = v1::decrypt_bind_auth_key_inner(&key, &mut v1_msg).unwrap();
    assert_eq!((opened.msg_id, opened.seq_no), (bad.bad_msg_id, 0));
}

//! API conventions that hold across layers, checked at the type level (issue 9, items 10-11):
//! these tests fail to compile if a layer drifts from the shared convention.

use mtproto::core::handshake::{ClientConfig, ClientHandshake, RsaKeySet};
use mtproto::core::rand_core::CryptoRng;
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

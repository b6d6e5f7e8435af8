//! Negative tests: one per key-exchange check, for the client (against a hand-driven server) and
//! for the server (against a hand-driven client). The hand-driven peers are written directly on
//! the TL types and crypto primitives, independent of the other state machine.

use alloc::vec;
use alloc::vec::Vec;

use num_bigint_dig::BigUint;
use num_traits::One;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::dh::{DhError, TELEGRAM_DH_PRIME, telegram_dh_prime, to_256_be};
use super::rsa::{RsaError, RsaKeySet, RsaPrivateKey};
use super::server::{ServerConfig, ServerHandshake, ServerStep};
use super::{ClientConfig, ClientHandshake, ClientStep, Fingerprints, HandshakeError, KeyKind, pq};
use crate::crypto::handshake_kdf::{new_nonce_hash, tmp_aes_key_iv};
use crate::crypto::{AuthKey, ige, sha1};
use crate::time::UnixTime;
use crate::tl::schema::{enums, functions, types};
use crate::tl::{Deserialize, Reader, Serialize};

const NOW: u64 = 1_700_000_000;
const SAMPLE_PQ: u64 = 1_372_318_559_046_200_203;

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

fn be_min(v: u64) -> Vec<u8> {
    super::common::u64_be_min(v)
}

fn demo_fp() -> i64 {
    RsaPrivateKey::demo().public_key().fingerprint()
}

fn client_config() -> ClientConfig {
    ClientConfig::new(
        RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone()),
        2,
    )
}

fn expect_err(r: Result<ClientStep, HandshakeError>) -> HandshakeError {
    match r {
        Err(e) => e,
        Ok(s) => panic!("expected an error, got {s:?}"),
    }
}

fn expect_send(r: Result<ClientStep, HandshakeError>) -> Vec<u8> {
    match r {
        Ok(ClientStep::Send(b)) => b,
        other => panic!("expected Send, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The client against a hand-driven server.
// ---------------------------------------------------------------------------------------------

/// What the hand-driven server knows after opening `req_DH_params`.
struct FakeServer {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
    key: [u8; 32],
    iv: [u8; 32],
}

fn res_pq(nonce: &[u8; 16], server_nonce: &[u8; 16], pq: &[u8], fps: Vec<i64>) -> Vec<u8> {
    types::ResPq {
        nonce,
        server_nonce,
        pq,
        server_public_key_fingerprints: fps,
    }
    .to_vec()
    .unwrap()
}

fn started(config: ClientConfig, seed: u64) -> (ClientHandshake, ChaCha20Rng, [u8; 16]) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut c = ClientHandshake::new(config);
    let req = c.start(&mut rng).unwrap();
    let nonce = *functions::ReqPqMulti::from_bytes(&req).unwrap().nonce;
    (c, rng, nonce)
}

/// A client that has sent `req_DH_params`, and the server-side knowledge of it.
fn after_req_dh(config: ClientConfig) -> (ClientHandshake, ChaCha20Rng, FakeServer) {
    let (mut c, mut rng, nonce) = started(config, 1);
    let server_nonce = [0x5a; 16];
    let msg = res_pq(
        &nonce,
        &server_nonce,
        &be_min(SAMPLE_PQ),
        vec![7, demo_fp()],
    );
    let req = expect_send(c.handle(now(), &msg, &mut rng));
    let req = functions::ReqDhParams::from_bytes(&req).unwrap();
    assert_eq!(req.public_key_fingerprint, demo_fp());
    assert_eq!(req.p, be_min(1_141_464_581).as_slice());
    assert_eq!(req.q, be_min(1_202_243_663).as_slice());
    let plain = RsaPrivateKey::demo()
        .decrypt_pad(req.encrypted_data, &mut ChaCha20Rng::seed_from_u64(0))
        .unwrap();
    let mut r = Reader::new(plain.as_ref()).unwrap();
    let new_nonce = match enums::PQInnerData::deserialize(&mut r).unwrap() {
        enums::PQInnerData::Dc(x) => {
            assert_eq!(x.dc, 2);
            *x.new_nonce
        }
        enums::PQInnerData::TempDc(x) => *x.new_nonce,
        _ => panic!("old inner data"),
    };
    let (key, iv) = tmp_aes_key_iv(&new_nonce, &server_nonce);
    let fs = FakeServer {
        nonce,
        server_nonce,
        new_nonce,
        key: *key,
        iv: *iv,
    };
    (c, rng, fs)
}

#[derive(Clone, Copy, PartialEq)]
enum Tamper {
    None,
    Hash,
    Pad16,
    Unaligned,
}

struct Answer<'a> {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    g: i32,
    dh_prime: &'a [u8],
    g_a: &'a [u8],
}

impl FakeServer {
    fn answer(&self, g_a: &[u8]) -> Vec<u8> {
        self.answer_with(
            &Answer {
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                g: 3,
                dh_prime: &TELEGRAM_DH_PRIME,
                g_a,
            },
            Tamper::None,
        )
    }

    fn answer_with(&self, a: &Answer<'_>, tamper: Tamper) -> Vec<u8> {
        let inner = types::ServerDhInnerData {
            nonce: &a.nonce,
            server_nonce: &a.server_nonce,
            g: a.g,
            dh_prime: a.dh_prime,
            g_a: a.g_a,
            server_time: NOW as i32,
        }
        .to_vec()
        .unwrap();
        let mut buf = hashed_and_padded(&inner, 0xAB, 3, tamper);
        ige::aes256_ige_encrypt(&self.key, &self.iv, &mut buf).unwrap();
        if tamper == Tamper::Unaligned {
            buf.truncate(buf.len() - 1);
        }
        types::ServerDhParamsOk {
            nonce: &self.nonce,
            server_nonce: &self.server_nonce,
            encrypted_answer: &buf,
        }
        .to_vec()
        .unwrap()
    }

    /// Opens `set_client_DH_params`: returns `(retry_id, g_b)`.
    fn open_client_dh(&self, msg: &[u8]) -> (i64, BigUint) {
        let m = functions::SetClientDhParams::from_bytes(msg).unwrap();
        let mut buf = m.encrypted_data.to_vec();
        ige::aes256_ige_decrypt(&self.key, &self.iv, &mut buf).unwrap();
        let mut r = Reader::new(&buf[20..]).unwrap();
        let inner = types::ClientDhInnerData::deserialize(&mut r).unwrap();
        let used = r.position();
        assert_eq!(sha1(&[&buf[20..20 + used]]), buf[..20]);
        assert!(buf.len() - 20 - used < 16);
        assert_eq!(inner.nonce, &self.nonce);
        (inner.retry_id, BigUint::from_bytes_be(inner.g_b))
    }

    fn dh_gen(&self, number: u8, hash: &[u8; 16]) -> Vec<u8> {
        let (n, s) = (&self.nonce, &self.server_nonce);
        match number {
            1 => types::DhGenOk {
                nonce: n,
                server_nonce: s,
                new_nonce_hash1: hash,
            }
            .to_vec(),
            2 => types::DhGenRetry {
                nonce: n,
                server_nonce: s,
                new_nonce_hash2: hash,
            }
            .to_vec(),
            _ => types::DhGenFail {
                nonce: n,
                server_nonce: s,
                new_nonce_hash3: hash,
            }
            .to_vec(),
        }
        .unwrap()
    }
}

fn secret_a() -> BigUint {
    BigUint::from_bytes_be(&[0x77; 256])
}

fn g_a_bytes() -> [u8; 256] {
    to_256_be(&BigUint::from(3u32).modpow(&secret_a(), &telegram_dh_prime()))
}

/// A client that has sent `set_client_DH_params`; returns the key it must have derived.
fn after_set_dh(
    config: ClientConfig,
) -> (ClientHandshake, ChaCha20Rng, FakeServer, AuthKey, Vec<u8>) {
    let (mut c, mut rng, fs) = after_req_dh(config);
    let msg = expect_send(c.handle(now(), &fs.answer(&g_a_bytes()), &mut rng));
    let (retry_id, g_b) = fs.open_client_dh(&msg);
    assert_eq!(retry_id, 0);
    let key = AuthKey::from_bytes(to_256_be(&g_b.modpow(&secret_a(), &telegram_dh_prime())));
    (c, rng, fs, key, msg)
}

#[test]
fn client_happy_path_against_the_hand_driven_server() {
    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    let ok = fs.dh_gen(1, &new_nonce_hash(&key, &fs.new_nonce, 1));
    match c.handle(now(), &ok, &mut rng).unwrap() {
        ClientStep::Done(r) => {
            assert_eq!(r.auth_key.as_bytes(), key.as_bytes());
            assert_eq!(r.time_offset, 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(c.is_done());
    // Finished machines accept nothing more.
    assert_eq!(
        expect_err(c.handle(now(), &ok, &mut rng)),
        HandshakeError::InvalidState
    );
}

#[test]
fn cloned_machines_continue_independently() {
    // Clone (used by the per-step fuzz targets) copies the whole state: a clone taken after
    // set_client_DH_params accepts the same dh_gen_ok and yields the same key, and an error in
    // one copy does not touch the other.
    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    let ok = fs.dh_gen(1, &new_nonce_hash(&key, &fs.new_nonce, 1));
    let mut copy = c.clone();
    assert!(matches!(
        expect_err(copy.handle(now(), &ok[..ok.len() - 1], &mut rng.clone())),
        HandshakeError::Tl(_)
    ));
    assert!(copy.is_failed() && !c.is_failed());
    let mut copy = c.clone();
    for m in [&mut c, &mut copy] {
        match m.handle(now(), &ok, &mut rng).unwrap() {
            ClientStep::Done(r) => assert_eq!(r.auth_key.as_bytes(), key.as_bytes()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn client_res_pq_checks() {
    let server_nonce = [1; 16];
    // Wrong nonce.
    let (mut c, mut rng, nonce) = started(client_config(), 2);
    let mut bad = nonce;
    bad[15] ^= 1;
    let m = res_pq(&bad, &server_nonce, &be_min(SAMPLE_PQ), vec![demo_fp()]);
    assert_eq!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::NonceMismatch
    );
    // The machine is dead after an error.
    assert!(c.is_failed());
    let m = res_pq(&nonce, &server_nonce, &be_min(SAMPLE_PQ), vec![demo_fp()]);
    assert_eq!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::InvalidState
    );

    // Unknown fingerprint: the three the official sample's resPQ offers (wire bytes
    // 85FD64DE851D9DD0, A5B7F709355FC30B, 216BE86C022BB4C3, read as little-endian longs with
    // Python's struct), none of which is the demo key. The error says which were offered.
    let (mut c, mut rng, nonce) = started(client_config(), 3);
    let sample = [
        -3414540481677951611,
        847625836280919973,
        -4344800451088585951,
    ];
    let m = res_pq(&nonce, &server_nonce, &be_min(SAMPLE_PQ), sample.to_vec());
    let err = expect_err(c.handle(now(), &m, &mut rng));
    assert_eq!(
        err,
        HandshakeError::UnknownFingerprint {
            offered: Fingerprints::from_slice(&sample)
        }
    );
    assert_eq!(
        alloc::format!("{err}"),
        "no known RSA key among the offered fingerprints: \
         -3414540481677951611 (0xd09d1d85de64fd85), 847625836280919973 (0x0bc35f3509f7b7a5), \
         -4344800451088585951 (0xc3b42b026ce86b21)"
    );
    // More than fit, and none at all.
    let (mut c, mut rng, nonce) = started(client_config(), 3);
    let m = res_pq(
        &nonce,
        &server_nonce,
        &be_min(SAMPLE_PQ),
        vec![1, 2, 3, 4, 5, 6],
    );
    let err = expect_err(c.handle(now(), &m, &mut rng));
    let HandshakeError::UnknownFingerprint { offered } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (offered.as_slice(), offered.total()),
        (&[1, 2, 3, 4][..], 6)
    );
    assert!(alloc::format!("{err}").ends_with("4 (0x0000000000000004) and 2 more"));
    let (mut c, mut rng, nonce) = started(client_config(), 3);
    let m = res_pq(&nonce, &server_nonce, &be_min(SAMPLE_PQ), vec![]);
    assert_eq!(
        alloc::format!("{}", expect_err(c.handle(now(), &m, &mut rng))),
        "no known RSA key among the offered fingerprints: none"
    );

    // pq that is prime, too wide, or not a product of two odd primes.
    for (pq_bytes, err) in [
        (be_min(4_294_967_291), pq::PqError::Prime),
        (vec![1; 9], pq::PqError::TooLarge),
        (be_min(3 * 5 * 7 * 11), pq::PqError::NotSemiprime),
    ] {
        let (mut c, mut rng, nonce) = started(client_config(), 4);
        let m = res_pq(&nonce, &server_nonce, &pq_bytes, vec![demo_fp()]);
        assert_eq!(
            expect_err(c.handle(now(), &m, &mut rng)),
            HandshakeError::Pq(err)
        );
    }

    // Not a resPQ at all.
    let (mut c, mut rng, _) = started(client_config(), 5);
    assert!(matches!(
        expect_err(c.handle(now(), &[0u8; 7], &mut rng)),
        HandshakeError::Tl(_)
    ));
}

#[test]
fn client_server_dh_params_outer_nonces() {
    let g_a = g_a_bytes();
    let (mut c, mut rng, fs) = after_req_dh(client_config());
    let mut other = FakeServer { ..fs };
    other.nonce[0] ^= 1;
    assert_eq!(
        expect_err(c.handle(now(), &other.answer(&g_a), &mut rng)),
        HandshakeError::NonceMismatch
    );
    let (mut c, mut rng, fs) = after_req_dh(client_config());
    let mut other = FakeServer { ..fs };
    other.server_nonce[0] ^= 1;
    assert_eq!(
        expect_err(c.handle(now(), &other.answer(&g_a), &mut rng)),
        HandshakeError::ServerNonceMismatch
    );
}

/// Runs one `server_DH_params_ok` variant against a fresh client.
fn dh_params_error(f: impl FnOnce(&FakeServer) -> Vec<u8>) -> HandshakeError {
    let (mut c, mut rng, fs) = after_req_dh(client_config());
    let msg = f(&fs);
    expect_err(c.handle(now(), &msg, &mut rng))
}

fn answer<'a>(fs: &FakeServer, g: i32, dh_prime: &'a [u8], g_a: &'a [u8]) -> Answer<'a> {
    Answer {
        nonce: fs.nonce,
        server_nonce: fs.server_nonce,
        g,
        dh_prime,
        g_a,
    }
}

#[test]
fn client_encrypted_answer_checks() {
    let g_a = g_a_bytes();
    // Inner nonce / server_nonce.
    assert_eq!(
        dh_params_error(|fs| {
            let mut a = answer(fs, 3, &TELEGRAM_DH_PRIME, &g_a);
            a.nonce[1] ^= 1;
            fs.answer_with(&a, Tamper::None)
        }),
        HandshakeError::NonceMismatch
    );
    assert_eq!(
        dh_params_error(|fs| {
            let mut a = answer(fs, 3, &TELEGRAM_DH_PRIME, &g_a);
            a.server_nonce[1] ^= 1;
            fs.answer_with(&a, Tamper::None)
        }),
        HandshakeError::ServerNonceMismatch
    );
    // SHA-1 of the answer.
    assert_eq!(
        dh_params_error(|fs| fs.answer_with(&answer(fs, 3, &TELEGRAM_DH_PRIME, &g_a), Tamper::Hash)),
        HandshakeError::AnswerHashMismatch
    );
    // Padding of 16 bytes or more.
    assert_eq!(
        dh_params_error(
            |fs| fs.answer_with(&answer(fs, 3, &TELEGRAM_DH_PRIME, &g_a), Tamper::Pad16)
        ),
        HandshakeError::AnswerPaddingTooLong
    );
    // Not a whole number of AES blocks.
    assert_eq!(
        dh_params_error(
            |fs| fs.answer_with(&answer(fs, 3, &TELEGRAM_DH_PRIME, &g_a), Tamper::Unaligned)
        ),
        HandshakeError::EncryptedLength
    );
    // Decrypting with the wrong new_nonce gives garbage: never accepted.
    let err = dh_params_error(|fs| {
        let mut other = FakeServer { ..*fs };
        other.key[0] ^= 1;
        other.answer(&g_a)
    });
    assert!(
        matches!(
            err,
            HandshakeError::Tl(_) | HandshakeError::AnswerHashMismatch
        ),
        "{err:?}"
    );
}

#[test]
fn client_dh_prime_and_g_checks() {
    let p = telegram_dh_prime();
    let g_a = g_a_bytes();
    let dh = |g: i32, prime: &[u8]| {
        let prime = prime.to_vec();
        dh_params_error(move |fs| fs.answer_with(&answer(fs, g, &prime, &g_a), Tamper::None))
    };
    // Not a safe prime: 2^2048 - 1557 is prime, (q-1)/2 is divisible by 3. g = 4 has no
    // residue condition, so only primality decides.
    let q = (BigUint::one() << 2048usize) - BigUint::from(1_557u32);
    assert_eq!(
        dh(4, &q.to_bytes_be()),
        HandshakeError::Dh(DhError::PrimeNotSafe)
    );
    // Not prime at all: p + 4 is divisible by 3.
    let comp = &p + BigUint::from(4u32);
    assert_eq!(
        dh(4, &comp.to_bytes_be()),
        HandshakeError::Dh(DhError::PrimeNotPrime)
    );
    // Wrong bit length (a 2047-bit and a 2056-bit value).
    assert_eq!(
        dh(3, &(&p >> 1usize).to_bytes_be()),
        HandshakeError::Dh(DhError::PrimeBitLength)
    );
    let mut long = TELEGRAM_DH_PRIME.to_vec();
    long.push(0x01);
    assert_eq!(dh(3, &long), HandshakeError::Dh(DhError::PrimeBitLength));
    // g = 2 needs p mod 8 = 7, g = 5 needs p mod 5 in {1, 4}, g = 6 needs p mod 24 in {19, 23}:
    // Telegram's prime (p mod 8 = 3, mod 5 = 3, mod 24 = 11) satisfies none of them.
    for g in [2, 5, 6] {
        assert_eq!(
            dh(g, &TELEGRAM_DH_PRIME),
            HandshakeError::Dh(DhError::GeneratorNotQuadraticResidue)
        );
    }
    for g in [-3, 0, 1, 8, 1 << 20] {
        assert_eq!(
            dh(g, &TELEGRAM_DH_PRIME),
            HandshakeError::Dh(DhError::GeneratorOutOfRange)
        );
    }
}

#[test]
fn client_mr_rounds_zero_still_rejects_a_composite_dh_prime() {
    // issue 9 item 3: `mr_rounds = 0` made any composite without a small factor pass.
    let comp = super::dh::tests::composite_without_small_factors().to_bytes_be();
    let g_a = g_a_bytes();
    let mut config = client_config();
    config.mr_rounds = 0;
    let (mut c, mut rng, fs) = after_req_dh(config);
    let msg = fs.answer_with(&answer(&fs, 4, &comp, &g_a), Tamper::None);
    assert_eq!(
        expect_err(c.handle(now(), &msg, &mut rng)),
        HandshakeError::Dh(DhError::PrimeNotPrime)
    );
}

#[test]
fn client_g_a_range_checks() {
    let p = telegram_dh_prime();
    let one = BigUint::one();
    let bound = BigUint::one() << 1984usize;
    for g_a in [
        BigUint::from(1u32),
        BigUint::from(2u32),
        &p - &one,
        p.clone(),
        bound.clone(),
        &p - &bound,
    ] {
        let g_a = g_a.to_bytes_be();
        assert_eq!(
            dh_params_error(|fs| fs.answer(&g_a)),
            HandshakeError::Dh(DhError::PublicValueOutOfRange)
        );
    }
}

#[test]
fn client_server_dh_params_fail() {
    let fail = |fs: &FakeServer, hash: [u8; 16]| {
        types::ServerDhParamsFail {
            nonce: &fs.nonce,
            server_nonce: &fs.server_nonce,
            new_nonce_hash: &hash,
        }
        .to_vec()
        .unwrap()
    };
    // new_nonce_hash = low 128 bits of SHA1(new_nonce).
    let good = |fs: &FakeServer| {
        let h = sha1(&[&fs.new_nonce]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h[4..]);
        out
    };
    assert_eq!(
        dh_params_error(|fs| fail(fs, good(fs))),
        HandshakeError::ServerDhParamsFail
    );
    assert_eq!(
        dh_params_error(|fs| fail(fs, [0; 16])),
        HandshakeError::NewNonceMismatch
    );
}

#[test]
fn client_dh_gen_checks() {
    // Wrong nonce, server_nonce, new_nonce_hash1.
    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    let mut other = FakeServer { ..fs };
    other.nonce[2] ^= 1;
    let m = other.dh_gen(1, &new_nonce_hash(&key, &fs.new_nonce, 1));
    assert_eq!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::NonceMismatch
    );

    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    let mut other = FakeServer { ..fs };
    other.server_nonce[2] ^= 1;
    let m = other.dh_gen(1, &new_nonce_hash(&key, &fs.new_nonce, 1));
    assert_eq!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::ServerNonceMismatch
    );

    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    let mut h = new_nonce_hash(&key, &fs.new_nonce, 1);
    h[15] ^= 1;
    assert_eq!(
        expect_err(c.handle(now(), &fs.dh_gen(1, &h), &mut rng)),
        HandshakeError::NewNonceHashMismatch
    );

    // dh_gen_ok's hash replayed in a dh_gen_retry / dh_gen_fail: different numbers, rejected.
    for number in [2, 3] {
        let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
        let h = new_nonce_hash(&key, &fs.new_nonce, 1);
        assert_eq!(
            expect_err(c.handle(now(), &fs.dh_gen(number, &h), &mut rng)),
            HandshakeError::NewNonceHashMismatch
        );
    }

    // A genuine dh_gen_fail.
    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    let m = fs.dh_gen(3, &new_nonce_hash(&key, &fs.new_nonce, 3));
    assert_eq!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::DhGenFail
    );
}

#[test]
fn client_dh_gen_retry_is_bounded_and_sends_retry_id() {
    let mut config = client_config();
    config.max_retries = 2;
    let (mut c, mut rng, fs, mut key, _) = after_set_dh(config);
    for _ in 0..2 {
        let m = fs.dh_gen(2, &new_nonce_hash(&key, &fs.new_nonce, 2));
        let again = expect_send(c.handle(now(), &m, &mut rng));
        let (retry_id, g_b) = fs.open_client_dh(&again);
        // retry_id = auth_key_aux_hash of the previous attempt.
        assert_eq!(retry_id, key.aux_hash());
        key = AuthKey::from_bytes(to_256_be(&g_b.modpow(&secret_a(), &telegram_dh_prime())));
    }
    let m = fs.dh_gen(2, &new_nonce_hash(&key, &fs.new_nonce, 2));
    assert_eq!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::TooManyRetries
    );
}

#[test]
fn client_rejects_messages_for_another_step() {
    let (mut c, mut rng, fs, key, _) = after_set_dh(client_config());
    // A resPQ where dh_gen_* is expected.
    let m = res_pq(&fs.nonce, &fs.server_nonce, &be_min(SAMPLE_PQ), vec![]);
    assert!(matches!(
        expect_err(c.handle(now(), &m, &mut rng)),
        HandshakeError::Tl(_)
    ));
    let _ = key;
}

// ---------------------------------------------------------------------------------------------
// The server against a hand-driven client.
// ---------------------------------------------------------------------------------------------

struct FakeClient {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
    p: u64,
    q: u64,
    rng: ChaCha20Rng,
}

fn server_after_res_pq(config: ServerConfig) -> (ServerHandshake, ChaCha20Rng, FakeClient) {
    let mut srng = ChaCha20Rng::seed_from_u64(20);
    let mut s = ServerHandshake::new(config);
    let nonce = [0x11; 16];
    let req = functions::ReqPqMulti { nonce: &nonce }.to_vec().unwrap();
    let ServerStep::Send(res) = s.handle(now(), &req, &mut srng).unwrap() else {
        panic!("expected resPQ")
    };
    let res = types::ResPq::from_bytes(&res).unwrap();
    assert_eq!(res.nonce, &nonce);
    let (p, q) = pq::factorize_be(res.pq).unwrap();
    assert!(p < q && p > 1 << 30 && q < 1 << 31);
    let fc = FakeClient {
        nonce,
        server_nonce: *res.server_nonce,
        new_nonce: [0x33; 32],
        p,
        q,
        rng: ChaCha20Rng::seed_from_u64(21),
    };
    (s, srng, fc)
}

struct Inner {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    p: u64,
    q: u64,
    dc: i32,
    expires_in: Option<i32>,
}

impl FakeClient {
    fn inner(&self) -> Inner {
        Inner {
            nonce: self.nonce,
            server_nonce: self.server_nonce,
            p: self.p,
            q: self.q,
            dc: 2,
            expires_in: None,
        }
    }

    fn inner_bytes(&self, i: &Inner) -> Vec<u8> {
        let (pq, p, q) = (be_min(i.p * i.q), be_min(i.p), be_min(i.q));
        match i.expires_in {
            None => types::PQInnerDataDc {
                pq: &pq,
                p: &p,
                q: &q,
                nonce: &i.nonce,
                server_nonce: &i.server_nonce,
                new_nonce: &self.new_nonce,
                dc: i.dc,
            }
            .to_vec(),
            Some(expires_in) => types::PQInnerDataTempDc {
                pq: &pq,
                p: &p,
                q: &q,
                nonce: &i.nonce,
                server_nonce: &i.server_nonce,
                new_nonce: &self.new_nonce,
                dc: i.dc,
                expires_in,
            }
            .to_vec(),
        }
        .unwrap()
    }

    fn req_dh_raw(&self, nonce: [u8; 16], server_nonce: [u8; 16], fp: i64, enc: &[u8]) -> Vec<u8> {
        functions::ReqDhParams {
            nonce: &nonce,
            server_nonce: &server_nonce,
            p: &be_min(self.p),
            q: &be_min(self.q),
            public_key_fingerprint: fp,
            encrypted_data: enc,
        }
        .to_vec()
        .unwrap()
    }

    fn req_dh(&mut self, i: &Inner) -> Vec<u8> {
        let data = self.inner_bytes(i);
        let enc = RsaPrivateKey::demo()
            .public_key()
            .encrypt_pad(&data, &mut self.rng)
            .unwrap();
        self.req_dh_raw(self.nonce, self.server_nonce, demo_fp(), &enc)
    }

    fn keys(&self) -> ([u8; 32], [u8; 32]) {
        let (key, iv) = tmp_aes_key_iv(&self.new_nonce, &self.server_nonce);
        (*key, *iv)
    }

    /// Opens `server_DH_params_ok`; returns `g_a`.
    fn open_answer(&self, msg: &[u8]) -> BigUint {
        let m = types::ServerDhParamsOk::from_bytes(msg).unwrap();
        let (key, iv) = self.keys();
        let mut buf = m.encrypted_answer.to_vec();
        ige::aes256_ige_decrypt(&key, &iv, &mut buf).unwrap();
        let mut r = Reader::new(&buf[20..]).unwrap();
        let inner = types::ServerDhInnerData::deserialize(&mut r).unwrap();
        assert_eq!(sha1(&[&buf[20..20 + r.position()]]), buf[..20]);
        assert_eq!(inner.g, 3);
        assert_eq!(inner.dh_prime, TELEGRAM_DH_PRIME.as_slice());
        assert_eq!(inner.server_time, NOW as i32);
        BigUint::from_bytes_be(inner.g_a)
    }

    fn set_dh(&self, nonce: [u8; 16], retry_id: i64, g_b: &[u8], tamper: Tamper) -> Vec<u8> {
        self.set_dh_with(nonce, self.server_nonce, retry_id, g_b, tamper)
    }

    /// Like [`Self::set_dh`], with `inner_server_nonce` inside the encrypted
    /// `client_DH_inner_data` (the outer one and the tmp AES key still use the real one).
    fn set_dh_with(
        &self,
        nonce: [u8; 16],
        inner_server_nonce: [u8; 16],
        retry_id: i64,
        g_b: &[u8],
        tamper: Tamper,
    ) -> Vec<u8> {
        let data = types::ClientDhInnerData {
            nonce: &nonce,
            server_nonce: &inner_server_nonce,
            retry_id,
            g_b,
        }
        .to_vec()
        .unwrap();
        let mut buf = hashed_and_padded(&data, 0, 25, tamper);
        let (key, iv) = self.keys();
        ige::aes256_ige_encrypt(&key, &iv, &mut buf).unwrap();
        if tamper == Tamper::Unaligned {
            buf.pop();
        }
        functions::SetClientDhParams {
            nonce: &self.nonce,
            server_nonce: &self.server_nonce,
            encrypted_data: &buf,
        }
        .to_vec()
        .unwrap()
    }
}

fn server_err(r: Result<ServerStep, HandshakeError>) -> HandshakeError {
    match r {
        Err(e) => e,
        Ok(s) => panic!("expected an error, got {s:?}"),
    }
}

/// One `req_DH_params` variant against a fresh server.
fn req_dh_error(
    config: ServerConfig,
    f: impl FnOnce(&mut FakeClient) -> Vec<u8>,
) -> HandshakeError {
    let (mut s, mut srng, mut fc) = server_after_res_pq(config);
    let m = f(&mut fc);
    server_err(s.handle(now(), &m, &mut srng))
}

#[test]
fn server_req_dh_params_checks() {
    let cfg = ServerConfig::demo;
    // Outer nonce / server_nonce.
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            let mut i = fc.inner();
            i.nonce[0] ^= 1;
            let data = fc.inner_bytes(&fc.inner());
            let enc = RsaPrivateKey::demo()
                .public_key()
                .encrypt_pad(&data, &mut fc.rng)
                .unwrap();
            fc.req_dh_raw(i.nonce, fc.server_nonce, demo_fp(), &enc)
        }),
        HandshakeError::NonceMismatch
    );
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            let mut sn = fc.server_nonce;
            sn[0] ^= 1;
            fc.req_dh_raw(fc.nonce, sn, demo_fp(), &[0; 256])
        }),
        HandshakeError::ServerNonceMismatch
    );
    // Wrong p / q in the outer request.
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            fc.p += 2;
            fc.req_dh_raw(fc.nonce, fc.server_nonce, demo_fp(), &[0; 256])
        }),
        HandshakeError::PqMismatch
    );
    // Unknown fingerprint: the error names the one the client asked for.
    assert_eq!(
        req_dh_error(cfg(), |fc| fc.req_dh_raw(
            fc.nonce,
            fc.server_nonce,
            demo_fp() ^ 1,
            &[0; 256]
        )),
        HandshakeError::UnknownFingerprint {
            offered: Fingerprints::from_slice(&[demo_fp() ^ 1])
        }
    );
    // Tampered RSA_PAD payload.
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            let mut m = fc.req_dh(&fc.inner());
            let n = m.len();
            m[n - 10] ^= 1;
            m
        }),
        HandshakeError::Rsa(RsaError::PadHashMismatch)
    );
    // encrypted_data of the wrong size.
    assert_eq!(
        req_dh_error(cfg(), |fc| fc.req_dh_raw(
            fc.nonce,
            fc.server_nonce,
            demo_fp(),
            &[1; 255]
        )),
        HandshakeError::Rsa(RsaError::BadCiphertext)
    );
    // Inner nonce, server_nonce, p/q.
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            let mut i = fc.inner();
            i.nonce[3] ^= 1;
            fc.req_dh(&i)
        }),
        HandshakeError::NonceMismatch
    );
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            let mut i = fc.inner();
            i.server_nonce[3] ^= 1;
            fc.req_dh(&i)
        }),
        HandshakeError::ServerNonceMismatch
    );
    assert_eq!(
        req_dh_error(cfg(), |fc| {
            let mut i = fc.inner();
            i.q = 1_202_243_663;
            fc.req_dh(&i)
        }),
        HandshakeError::PqMismatch
    );
    // dc check, when configured.
    let mut strict = cfg();
    strict.expected_dc = Some(4);
    assert_eq!(
        req_dh_error(strict, |fc| fc.req_dh(&fc.inner())),
        HandshakeError::DcMismatch
    );
    // Temporary keys: expires_in must be positive and not above the maximum.
    for e in [0, -5, 7 * 24 * 3600 + 1] {
        assert_eq!(
            req_dh_error(cfg(), |fc| {
                let mut i = fc.inner();
                i.expires_in = Some(e);
                fc.req_dh(&i)
            }),
            HandshakeError::BadExpiresIn
        );
    }
}

#[test]
fn server_legacy_padding_only_when_enabled() {
    let legacy = |fc: &mut FakeClient| {
        let data = fc.inner_bytes(&fc.inner());
        let demo = RsaPrivateKey::demo();
        let enc = RsaPrivateKey::legacy_encrypt(demo.public_key(), &data, &mut fc.rng).unwrap();
        fc.req_dh_raw(fc.nonce, fc.server_nonce, demo_fp(), &enc)
    };
    // Off by default: RSA_PAD's hash check fails and there is no fallback.
    assert_eq!(
        req_dh_error(ServerConfig::demo(), legacy),
        HandshakeError::Rsa(RsaError::PadHashMismatch)
    );
    let mut cfg = ServerConfig::demo();
    cfg.accept_legacy_padding = true;
    let (mut s, mut srng, mut fc) = server_after_res_pq(cfg);
    let m = legacy(&mut fc);
    match s.handle(now(), &m, &mut srng).unwrap() {
        ServerStep::Send(answer) => {
            fc.open_answer(&answer);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_inner_data_without_dc_only_when_enabled() {
    // `p_q_inner_data` (no dc) under RSA_PAD, as GramJS sends it.
    let no_dc = |fc: &mut FakeClient| {
        let i = fc.inner();
        let (pq, p, q) = (be_min(i.p * i.q), be_min(i.p), be_min(i.q));
        let data = types::PQInnerData {
            pq: &pq,
            p: &p,
            q: &q,
            nonce: &i.nonce,
            server_nonce: &i.server_nonce,
            new_nonce: &fc.new_nonce,
        }
        .to_vec()
        .unwrap();
        let enc = RsaPrivateKey::demo()
            .public_key()
            .encrypt_pad(&data, &mut fc.rng)
            .unwrap();
        fc.req_dh_raw(fc.nonce, fc.server_nonce, demo_fp(), &enc)
    };
    assert_eq!(
        req_dh_error(ServerConfig::demo(), no_dc),
        HandshakeError::UnexpectedMessage
    );
    let mut cfg = ServerConfig::demo();
    cfg.accept_inner_data_without_dc = true;
    let (mut s, mut srng, mut fc) = server_after_res_pq(cfg);
    let m = no_dc(&mut fc);
    match s.handle(now(), &m, &mut srng).unwrap() {
        ServerStep::Send(answer) => {
            fc.open_answer(&answer);
        }
        other => panic!("{other:?}"),
    }
}

/// A server that has sent `server_DH_params_ok` (permanent key), with `g_a`.
fn server_after_dh_params() -> (ServerHandshake, ChaCha20Rng, FakeClient, BigUint) {
    let (mut s, mut srng, mut fc) = server_after_res_pq(ServerConfig::demo());
    let m = fc.req_dh(&fc.inner());
    let ServerStep::Send(answer) = s.handle(now(), &m, &mut srng).unwrap() else {
        panic!("expected server_DH_params_ok")
    };
    let g_a = fc.open_answer(&answer);
    (s, srng, fc, g_a)
}

fn good_g_b() -> [u8; 256] {
    to_256_be(
        &BigUint::from(3u32).modpow(&BigUint::from_bytes_be(&[0x42; 256]), &telegram_dh_prime()),
    )
}

#[test]
fn server_set_client_dh_params_happy_path() {
    let (mut s, mut srng, fc, g_a) = server_after_dh_params();
    let b = BigUint::from_bytes_be(&[0x42; 256]);
    let m = fc.set_dh(fc.nonce, 0, &good_g_b(), Tamper::None);
    let ServerStep::Done { reply, key } = s.handle(now(), &m, &mut srng).unwrap() else {
        panic!("expected dh_gen_ok")
    };
    let expect = AuthKey::from_bytes(to_256_be(&g_a.modpow(&b, &telegram_dh_prime())));
    assert_eq!(key.auth_key.as_bytes(), expect.as_bytes());
    let ok = types::DhGenOk::from_bytes(&reply).unwrap();
    assert_eq!(
        ok.new_nonce_hash1,
        &new_nonce_hash(&expect, &fc.new_nonce, 1)
    );
    assert!(s.is_done());
}

#[test]
fn server_resends_the_same_answer_to_a_repeated_request() {
    let (mut s, mut srng, mut fc) = server_after_res_pq(ServerConfig::demo());
    let m = fc.req_dh(&fc.inner());
    let ServerStep::Send(first) = s.handle(now(), &m, &mut srng).unwrap() else {
        panic!("expected server_DH_params_ok")
    };
    // The answer was lost; the client repeats the identical request.
    let ServerStep::Send(again) = s.handle(now(), &m, &mut srng).unwrap() else {
        panic!("expected the same answer")
    };
    assert_eq!(first, again);
    // The exchange continues normally.
    let m = fc.set_dh(fc.nonce, 0, &good_g_b(), Tamper::None);
    assert!(matches!(
        s.handle(now(), &m, &mut srng),
        Ok(ServerStep::Done { .. })
    ));
    // A similar but different request is not a repeat: after the error nothing is re-sent.
    let (mut s, mut srng, mut fc) = server_after_res_pq(ServerConfig::demo());
    let m = fc.req_dh(&fc.inner());
    s.handle(now(), &m, &mut srng).unwrap();
    let mut m2 = m.clone();
    m2[30] ^= 1;
    assert!(s.handle(now(), &m2, &mut srng).is_err());
    assert_eq!(
        server_err(s.handle(now(), &m, &mut srng)),
        HandshakeError::InvalidState
    );
}

#[test]
fn server_set_client_dh_params_checks() {
    let run = |f: &dyn Fn(&FakeClient) -> Vec<u8>| {
        let (mut s, mut srng, fc, _) = server_after_dh_params();
        let m = f(&fc);
        server_err(s.handle(now(), &m, &mut srng))
    };
    let g_b = good_g_b();
    // Outer nonce / server_nonce.
    assert_eq!(
        run(&|fc| {
            let mut other = FakeClient {
                rng: ChaCha20Rng::seed_from_u64(0),
                ..*fc
            };
            other.nonce[0] ^= 1;
            other.set_dh(fc.nonce, 0, &g_b, Tamper::None)
        }),
        HandshakeError::NonceMismatch
    );
    assert_eq!(
        run(&|fc| {
            let m = fc.set_dh(fc.nonce, 0, &g_b, Tamper::None);
            let mut parsed = functions::SetClientDhParams::from_bytes(&m).unwrap();
            let mut sn = *parsed.server_nonce;
            sn[0] ^= 1;
            parsed.server_nonce = &sn;
            parsed.to_vec().unwrap()
        }),
        HandshakeError::ServerNonceMismatch
    );
    // Inner nonce.
    let mut bad = [0x11; 16];
    bad[9] ^= 1;
    assert_eq!(
        run(&|fc| fc.set_dh(bad, 0, &g_b, Tamper::None)),
        HandshakeError::NonceMismatch
    );
    // Inner server_nonce (inside the encrypted client_DH_inner_data, valid SHA-1; the outer
    // server_nonce and the tmp AES key are the real ones, so only the inner check can fire).
    assert_eq!(
        run(&|fc| {
            let mut sn = fc.server_nonce;
            sn[15] ^= 0x80;
            fc.set_dh_with(fc.nonce, sn, 0, &g_b, Tamper::None)
        }),
        HandshakeError::ServerNonceMismatch
    );
    // The same builder with the real server_nonce is accepted (the case above differs only
    // in that field).
    {
        let (mut s, mut srng, fc, _) = server_after_dh_params();
        let m = fc.set_dh_with(fc.nonce, fc.server_nonce, 0, &g_b, Tamper::None);
        assert!(matches!(
            s.handle(now(), &m, &mut srng),
            Ok(ServerStep::Done { .. })
        ));
    }
    // SHA-1, padding, block alignment.
    assert_eq!(
        run(&|fc| fc.set_dh(fc.nonce, 0, &g_b, Tamper::Hash)),
        HandshakeError::AnswerHashMismatch
    );
    assert_eq!(
        run(&|fc| fc.set_dh(fc.nonce, 0, &g_b, Tamper::Pad16)),
        HandshakeError::AnswerPaddingTooLong
    );
    assert_eq!(
        run(&|fc| fc.set_dh(fc.nonce, 0, &g_b, Tamper::Unaligned)),
        HandshakeError::EncryptedLength
    );
    // retry_id must be 0 on the first attempt.
    assert_eq!(
        run(&|fc| fc.set_dh(fc.nonce, 5, &g_b, Tamper::None)),
        HandshakeError::RetryIdMismatch
    );
    // g_b out of range.
    let p = telegram_dh_prime();
    for bad in [
        BigUint::from(1u32),
        &p - BigUint::one(),
        BigUint::one() << 1984usize,
    ] {
        let bad = bad.to_bytes_be();
        assert_eq!(
            run(&|fc| fc.set_dh(fc.nonce, 0, &bad, Tamper::None)),
            HandshakeError::Dh(DhError::PublicValueOutOfRange)
        );
    }
}

#[test]
fn server_rejects_garbage_and_out_of_order_messages() {
    let mut rng = ChaCha20Rng::seed_from_u64(30);
    let mut s = ServerHandshake::new(ServerConfig::demo());
    assert!(matches!(
        server_err(s.handle(now(), &[1, 2, 3], &mut rng)),
        HandshakeError::Tl(_)
    ));
    assert_eq!(
        server_err(s.handle(now(), &[], &mut rng)),
        HandshakeError::InvalidState
    );
    // A set_client_DH_params where req_DH_params is expected.
    let (mut s, mut srng, fc) = server_after_res_pq(ServerConfig::demo());
    let m = fc.set_dh(fc.nonce, 0, &good_g_b(), Tamper::None);
    assert!(matches!(
        server_err(s.handle(now(), &m, &mut srng)),
        HandshakeError::Tl(_)
    ));
    let mut buf = [0u8; 8];
    rng.fill_bytes(&mut buf);
}

#[test]
fn debug_output_hides_secrets() {
    let (c, _, fs) = after_req_dh(client_config());
    let s = alloc::format!("{c:?}");
    assert!(s.contains("await server_DH_params"));
    let nn: alloc::string::String = fs
        .new_nonce
        .iter()
        .map(|b| alloc::format!("{b:02x}"))
        .collect();
    assert!(!s.contains(&nn[..8]));
    let (server, _, _, _) = server_after_dh_params();
    assert!(!alloc::format!("{server:?}").contains("33333333"));
    let _ = KeyKind::Permanent;
}

/// Regression (lint audit): a server configured with a zero `dh_prime` and `g = 4` (the one
/// generator without a residue condition) reached `BigUint::modpow` with a zero modulus, which
/// panics ("divide by zero"). It is now a typed error; the same holds for a short prime.
#[test]
fn server_with_a_degenerate_dh_prime_errors_instead_of_panicking() {
    for dh_prime in [[0u8; 256], {
        let mut one = [0u8; 256];
        one[255] = 1;
        one
    }] {
        let mut cfg = ServerConfig::demo();
        cfg.dh_prime = dh_prime;
        cfg.g = 4;
        assert_eq!(
            req_dh_error(cfg, |fc| fc.req_dh(&fc.inner())),
            HandshakeError::KeyGeneration
        );
    }
}

/// `SHA1(data) ‖ data ‖ padding` (padding bytes `pad`, to a multiple of 16) as both sides encrypt
/// it during the handshake, then `tamper`: flip a bit at `hash_at` (inside the SHA-1) or append 16
/// more padding bytes.
fn hashed_and_padded(data: &[u8], pad: u8, hash_at: usize, tamper: Tamper) -> Vec<u8> {
    let mut buf = sha1(&[data]).to_vec();
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(16) {
        buf.push(pad);
    }
    match tamper {
        Tamper::None | Tamper::Unaligned => {}
        Tamper::Hash => buf[hash_at] ^= 1,
        Tamper::Pad16 => buf.extend_from_slice(&[pad; 16]),
    }
    buf
}

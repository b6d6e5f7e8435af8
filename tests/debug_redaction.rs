//! `Debug` never shows secrets (issue 9 item 6): every public type that can hold key material or
//! decrypted data is formatted (`{:?}`, `{:#?}`, `{:x?}`, `{:#x?}`, `{:X?}`) with a known secret
//! inside, and none of the usual renderings of that secret may appear: hex strings (either case),
//! byte lists (decimal and hex) and the integers its 4- and 8-byte windows spell (decimal and
//! hex, both byte orders).
//!
//! Before the fix `v1::BindMessage` printed its decrypted `bind_auth_key_inner`, and
//! `tl::Reader`/`tl::Writer` dumped their buffers (a Reader runs over the RSA_PAD plaintext that
//! holds `new_nonce`).

mod common;

use std::cell::RefCell;
use std::fmt::Debug;
use std::rc::Rc;

use mtproto::core::crypto::message::{
    MessageHeader, PaddingPolicy, decrypt_message, encrypt_message_to_vec,
};
use mtproto::core::crypto::{AuthKey, Side, v1};
use mtproto::core::handshake::{
    ClientConfig, ClientHandshake, ClientStep, RsaKeySet, RsaPrivateKey, ServerConfig,
    ServerHandshake, ServerStep,
};
use mtproto::core::plain;
use mtproto::core::time::UnixTime;
use mtproto::core::tl::{Reader, Writer};
use mtproto::core::transport::obfuscated::ObfuscatedCodec;
use mtproto::core::transport::{self, FakeTlsClient, Framing, ProxySecret, Transport};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

/// A non-repeating secret of `N` bytes, none of them zero (so no window is all zeros).
fn pattern<const N: usize>(seed: u8) -> [u8; N] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 0x11)
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(",")
}

/// The ways `Debug` (derived or hand-written) commonly prints bytes of `secret`, without
/// whitespace (outputs are compared with their whitespace removed).
fn renderings(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for w in secret.windows(4) {
        out.push(join(w.iter().map(|b| format!("{b}"))));
        out.push(join(w.iter().map(|b| format!("{b:x}"))));
        out.push(join(w.iter().map(|b| format!("{b:X}"))));
        out.push(w.iter().map(|b| format!("{b:02x}")).collect());
        out.push(w.iter().map(|b| format!("{b:02X}")).collect());
        let w4: [u8; 4] = w.try_into().unwrap();
        for v in [u32::from_le_bytes(w4), u32::from_be_bytes(w4)] {
            // Small numbers are everywhere (lengths, positions); these windows have no zero
            // byte, so both readings are at least 0x11111111 anyway.
            if v >= 10_000_000 {
                out.push(v.to_string());
                out.push((v as i32).to_string());
            }
        }
    }
    for w in secret.windows(8) {
        let w8: [u8; 8] = w.try_into().unwrap();
        for v in [u64::from_le_bytes(w8), u64::from_be_bytes(w8)] {
            out.push(v.to_string());
            out.push((v as i64).to_string());
            out.push(format!("{v:x}"));
            out.push(format!("{v:X}"));
        }
    }
    out
}

/// Formats `value` every usual way; fails with the rendering found if any secret shows.
fn assert_redacted<T: Debug + ?Sized>(what: &str, value: &T, secrets: &[&[u8]]) {
    let outputs = [
        format!("{value:?}"),
        format!("{value:#?}"),
        format!("{value:x?}"),
        format!("{value:#x?}"),
        format!("{value:X?}"),
    ];
    for output in &outputs {
        let flat: String = output.chars().filter(|c| !c.is_whitespace()).collect();
        for secret in secrets {
            for r in renderings(secret) {
                assert!(
                    !flat.contains(&r),
                    "{what}: Debug shows a secret ({r}):\n{output}"
                );
            }
        }
    }
}

/// The checker itself: a plain byte array's derived Debug is caught, whatever the format.
#[test]
fn the_checker_catches_plain_debug() {
    let secret = pattern::<32>(0x21);
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Leaky<'a> {
        key: [u8; 32],
        slice: &'a [u8],
        word: u64,
    }
    for leaky in [
        Leaky {
            key: secret,
            slice: &[],
            word: 0,
        },
        Leaky {
            key: [0; 32],
            slice: &secret[3..12],
            word: 0,
        },
        Leaky {
            key: [0; 32],
            slice: &[],
            word: u64::from_le_bytes(secret[8..16].try_into().unwrap()),
        },
    ] {
        let caught = std::panic::catch_unwind(|| assert_redacted("leaky", &leaky, &[&secret]));
        assert!(caught.is_err(), "not caught: {leaky:?}");
    }
    // Hex renderings too.
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(std::panic::catch_unwind(|| assert_redacted("hex", &hex, &[&secret])).is_err());
    assert!(
        std::panic::catch_unwind(|| assert_redacted("HEX", &hex.to_uppercase(), &[&secret]))
            .is_err()
    );
}

#[test]
fn auth_key_and_decrypted_messages() {
    let bytes = pattern::<256>(0x5a);
    let key = AuthKey::from_bytes(bytes);
    let aux = key.aux_hash().to_le_bytes();
    assert_redacted("AuthKey", &key, &[&bytes, &aux]);

    // A decrypted message: body, salt and session id are secret.
    let body = pattern::<64>(0x33);
    let salt = pattern::<8>(0x44);
    let session = pattern::<8>(0x55);
    let header = MessageHeader {
        salt: i64::from_le_bytes(salt),
        session_id: i64::from_le_bytes(session),
        msg_id: 0x6000_0000_0000_0004,
        seq_no: 1,
    };
    assert_redacted("MessageHeader", &header, &[&salt, &session]);
    let mut rng = common::rng(1);
    let enc = encrypt_message_to_vec(
        &key,
        Side::Client,
        &header,
        &body,
        &PaddingPolicy::default(),
        &mut rng,
    )
    .unwrap();
    let mut buf = enc.bytes.clone();
    let msg = decrypt_message(&key, Side::Client, &mut buf).unwrap();
    assert_eq!(msg.body, &body[..]);
    assert_redacted("DecryptedMessage", &msg, &[&body, &salt, &session]);

    // The v1 bind message: the decrypted bind_auth_key_inner.
    let inner = pattern::<40>(0x66);
    let mut bind = v1::encrypt_bind_auth_key_inner(&key, 0x6000_0000_0000_0008, &inner, &mut rng);
    let m = v1::decrypt_bind_auth_key_inner(&key, &mut bind).unwrap();
    assert_eq!(m.inner, &inner[..]);
    assert_redacted("v1::BindMessage", &m, &[&inner, &bytes]);
}

#[test]
fn tl_reader_and_writer() {
    // E.g. the RSA_PAD plaintext: p_q_inner_data with new_nonce.
    let secret = pattern::<96>(0x77);
    let mut r = Reader::new(&secret).unwrap();
    assert_redacted("Reader (fresh)", &r, &[&secret]);
    r.read_raw(20).unwrap();
    assert_redacted("Reader (part read)", &r, &[&secret]);
    let _ = r.read_bytes();
    assert_redacted("Reader (after an error)", &r, &[&secret]);

    let mut buf = [0u8; 128];
    let mut w = Writer::new(&mut buf);
    w.write_raw(&secret).unwrap();
    assert_redacted("Writer", &w, &[&secret]);
}

#[test]
fn proxy_secrets_and_transports() {
    let key = pattern::<16>(0x88);
    let secrets = [
        ProxySecret::plain(key),
        ProxySecret::padded(key),
        ProxySecret::fake_tls(key, b"example.com").unwrap(),
    ];
    for s in &secrets {
        assert_redacted("ProxySecret", s, &[&key]);
        assert_redacted("SecretKind", s.kind(), &[&key]);
    }
    let config = transport::ServerConfig {
        secrets: secrets.to_vec(),
        ..Default::default()
    };
    assert_redacted("transport::ServerConfig", &config, &[&key]);
    let detector = transport::Detector::new(config);
    assert_redacted("Detector", &detector, &[&key]);

    let mut rng = common::rng(2);
    let codec =
        ObfuscatedCodec::client(Framing::Intermediate, Some(2), Some(&secrets[1]), &mut rng)
            .unwrap();
    assert_redacted("ObfuscatedCodec", &codec, &[&key]);
    assert_redacted("Transport", &Transport::Obfuscated(codec), &[&key]);
    let mut hello = Vec::new();
    let tls = FakeTlsClient::new(
        &secrets[2],
        UnixTime::from_secs(1_700_000_000),
        &mut rng,
        &mut hello,
    )
    .unwrap();
    assert_redacted("FakeTlsClient", &tls, &[&key]);
}

/// Records every random byte it hands out: the handshake's secrets (`new_nonce`, the DH
/// exponents, RSA_PAD's temp key) are all among them.
struct Recording {
    inner: ChaCha20Rng,
    drawn: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl TryRng for Recording {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let v = self.inner.next_u32();
        self.drawn.borrow_mut().push(v.to_le_bytes().to_vec());
        Ok(v)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let v = self.inner.next_u64();
        self.drawn.borrow_mut().push(v.to_le_bytes().to_vec());
        Ok(v)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.fill_bytes(dst);
        self.drawn.borrow_mut().push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for Recording {}

// A throwaway 2048-bit RSA key (generated with Python's `cryptography` for this test only).
const N: &str = "d0bc88c202fd984e42ec2d93db2879f186a91371bbc872ecc361e1257ea08d49245e2116c4f07bf94efebea9bace74b75293da941bdb4ec5bd424b20c1ba0968eda5700ce86affa50367a40a111acf9c234923540cd1e9acd6106f2b7dec63496ef766403e98340b75ebe1e3490d6dfd0fff8bf1acb82ad16ef356c69f3f5ddb61f351245c8fb997489a62f5683bfc5ea1285089159a081584479c8dfbb47a2d5391efcf99109d38a3b75d8d3ad380c8d1d3dbdbf74e0525c55ab6cbece51615dcfa314dd1f2f3f83ce2396e7f04d7abfff52e607845112c09c09507cf5c3297655818b60c77a70e48fe917f84039149f8788500a1035cc244941ed161125513";
const D: &str = "074f191f9b9c000813e89ece56fc350c1a01cd99b25066ec3109a0c299581840cc98cd95688591982405f9ecbd249b240b5fc9325da8f16d93eb59f0801813f379086729395895cbd4317e0c90fd8fbeaaaf3c8772e6ab920224e05fa84a53e7af8e9fbf28f1f103ca84dd25357470211b2380cc29fd4db28546d8d437a1affd96bf15e22227d20ccfc3d3ed8243a2e91c7a40ef7fe19b68bb771bd214aa9682a94bd14cc185ed5b70a406d34a2182341bc7de2667a42f78c2076099901b234afe00df13d253dadf34708dab80528bb4925c62c6d18859cfd9497b52ef05db1c51c9945b12b914b249e3bba906c92209556ef777e89cde2410869cb0b52533e1";
const P: &str = "f692b845acd6ff608a0c377b0205bc7908c974f2fc8b8549ff14af742e8383adad7dc6b8485dd190a28e8fe3ed091e02767dc9d2457eda29592b0afdeb502c142333d5f187eabce4625783be0010ceaa67b0a00c268662a047f02e2632edd12179652273518594ed6dab0b6dbc199b39f08c35509ccf90c68daa230638385e2b";
const Q: &str = "d8b77f136d0f7ed7013d4da4d0601055c167ab5509454c2398d9c2b5e1bb795f0d1a8509f872a9f291b4fa5c39216842f1e545ae3263f30ed176e86e63f0e75c07f808ffc37c8073e9eb42c7b355c170d4e472209ca0028c4dc7dafcd637f88884b41e092e3bb7e1eb07f0469be5f1533f44297004bd8d517e7aea82e3a6d8b9";

#[test]
fn handshake_machines_configs_and_results() {
    let (d, p, q) = (common::hex(D), common::hex(P), common::hex(Q));
    let private = RsaPrivateKey::from_be(&common::hex(N), &[1, 0, 1], &d, &p, &q).unwrap();
    assert_redacted("RsaPrivateKey", &private, &[&d, &p, &q]);
    let server_config = ServerConfig::new(vec![private.clone()]);
    assert_redacted("handshake::ServerConfig", &server_config, &[&d, &p, &q]);

    let client_draws = Rc::new(RefCell::new(Vec::new()));
    let server_draws = Rc::new(RefCell::new(Vec::new()));
    let mut crng = Recording {
        inner: ChaCha20Rng::seed_from_u64(3),
        drawn: client_draws.clone(),
    };
    let mut srng = Recording {
        inner: ChaCha20Rng::seed_from_u64(4),
        drawn: server_draws.clone(),
    };
    let keys = RsaKeySet::new().with(private.public_key().clone());
    let client_config = ClientConfig::new(keys, 2).temporary(3600);
    let mut client = ClientHandshake::new(client_config.clone());
    let mut server = ServerHandshake::new(server_config);
    let now = UnixTime::from_secs(1_700_000_000);

    // Formatted in every state: whatever either side drew so far must not show.
    let mut shown: Vec<String> = Vec::new();
    let mut check_machines = |client: &ClientHandshake, server: &ServerHandshake| {
        let draws: Vec<Vec<u8>> = client_draws
            .borrow()
            .iter()
            .chain(server_draws.borrow().iter())
            .filter(|d| d.len() >= 4)
            .cloned()
            .collect();
        let draws: Vec<&[u8]> = draws.iter().map(Vec::as_slice).collect();
        assert_redacted("ClientHandshake", client, &draws);
        assert_redacted("ServerHandshake", server, &draws);
        shown.push(format!("{client:?} / {server:?}"));
    };
    check_machines(&client, &server);
    let mut out = client.start(&mut crng).unwrap();
    let (client_result, server_key) = loop {
        check_machines(&client, &server);
        let wire = plain::wrap(plain::msg_id_from_time(now), &out);
        let (_, body) = plain::unwrap(&wire).unwrap();
        let (answer, server_key) = match server.handle(now, body, &mut srng).unwrap() {
            ServerStep::Send(a) => (a, None),
            ServerStep::Done { reply, key } => (reply, Some(key)),
        };
        check_machines(&client, &server);
        match client.handle(now, &answer, &mut crng).unwrap() {
            ClientStep::Send(next) => out = next,
            ClientStep::Done(result) => break (result, server_key.unwrap()),
        }
    };
    check_machines(&client, &server);
    assert!(shown.len() >= 6, "{shown:#?}");

    let draws: Vec<Vec<u8>> = client_draws
        .borrow()
        .iter()
        .chain(server_draws.borrow().iter())
        .filter(|d| d.len() >= 4)
        .cloned()
        .collect();
    let key_bytes = client_result.auth_key.as_bytes().to_vec();
    let aux = client_result.auth_key.aux_hash().to_le_bytes();
    let salt = client_result.server_salt.to_le_bytes();
    let mut secrets: Vec<&[u8]> = draws.iter().map(Vec::as_slice).collect();
    secrets.extend([&key_bytes[..], &aux[..], &salt[..]]);
    assert_eq!(
        server_key.auth_key.as_bytes(),
        client_result.auth_key.as_bytes()
    );
    assert_redacted("AuthKeyResult", &*client_result, &secrets);
    assert_redacted("ServerAuthKey", &*server_key, &secrets);
    assert_redacted(
        "ClientStep::Done",
        &ClientStep::Done(client_result),
        &secrets,
    );
    assert_redacted("ClientConfig", &client_config, &secrets);
}

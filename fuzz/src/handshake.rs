//! Precomputed handshake states for the per-step fuzz targets (`handshake_client_*`,
//! `handshake_server_*`): each target clones one state and feeds it one fuzzer-chosen message,
//! so no execution pays for the RSA and 2048-bit DH work of the steps before.
//!
//! The states replay the official auth key example (`mtproto_samples-auth_key.md`):
//! - the client draws the sample's nonce, new_nonce, RSA_PAD padding, `b` and padding, so the
//!   sample's own `resPQ`, `server_DH_params_ok` and `dh_gen_ok` are valid inputs (and checked
//!   to be, when the states are built);
//! - our demo server draws the sample's server_nonce, p and q; a second sample client that only
//!   trusts the demo key talks to it, giving valid `req_DH_params` and `set_client_DH_params`.
//!
//! Every message that leads to a state is also a seed (see `examples/write_seeds.rs`).
//!
//! Input of the steps whose message carries an encrypted part (`client_dh_params`,
//! `server_req_dh`, `server_set_dh`): a mode byte, then the body. Even mode: the body is the
//! message. Odd mode: the body is the *plaintext* inner
//! data, which the harness encrypts as the peer would (RSA_PAD to the demo key, or SHA-1 +
//! AES-256-IGE with the handshake's temporary key) and wraps in an otherwise valid message, so
//! the inner parsers and checks see fuzzer-steered bytes instead of garbage that fails the
//! hash check.

use std::collections::VecDeque;
use std::sync::OnceLock;

use mtproto_core::crypto::handshake_kdf::tmp_aes_key_iv;
use mtproto_core::crypto::{ige, sha1};
use mtproto_core::handshake::{
    ClientConfig, ClientHandshake, ClientStep, RsaKeySet, ServerConfig, ServerHandshake, ServerStep,
};
use mtproto_core::time::UnixTime;
use mtproto_core::tl::schema::{functions, types};
use mtproto_core::tl::{Deserialize, Reader, Serialize};
use rand_core::{Rng, TryCryptoRng, TryRng};

use crate::LcgRng;
use crate::sample::{self, body, hex};

/// Serves scripted chunks in order: a request as long as the next chunk gets it; any other
/// request gets LCG bytes (RSA_PAD's unpublished `temp_key`, the server's secrets).
struct Script {
    chunks: VecDeque<Vec<u8>>,
    fallback: LcgRng,
}

impl TryRng for Script {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.fallback.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.fallback.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        match self.chunks.front() {
            Some(c) if c.len() == dst.len() => {
                dst.copy_from_slice(c);
                self.chunks.pop_front();
            }
            _ => self.fallback.fill_bytes(dst),
        }
        Ok(())
    }
}
impl TryCryptoRng for Script {}

fn sample_client_rng() -> Script {
    Script {
        chunks: [
            sample::NONCE,
            sample::NEW_NONCE,
            sample::RANDOM_PADDING_BYTES,
            sample::B,
            sample::CLIENT_PADDING,
        ]
        .iter()
        .map(|h| hex(h))
        .collect(),
        fallback: LcgRng(1),
    }
}

/// The sample's nonce, server_nonce and new_nonce (shared by every state here).
fn nonces() -> ([u8; 16], [u8; 16], [u8; 32]) {
    let res_pq = body(sample::RES_PQ);
    let mut nonce = [0; 16];
    let mut server_nonce = [0; 16];
    let mut new_nonce = [0; 32];
    nonce.copy_from_slice(&res_pq[4..20]);
    server_nonce.copy_from_slice(&res_pq[20..36]);
    new_nonce.copy_from_slice(&hex(sample::NEW_NONCE));
    (nonce, server_nonce, new_nonce)
}

/// `SHA1(data) + data + zero padding` to a multiple of 16, AES-256-IGE encrypted with the
/// temporary key of the sample's nonces.
fn encrypt_with_hash(data: &[u8]) -> Vec<u8> {
    let (_, server_nonce, new_nonce) = nonces();
    let (key, iv) = tmp_aes_key_iv(&new_nonce, &server_nonce);
    let mut buf = sha1(&[data]).to_vec();
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(16), 0);
    ige::aes256_ige_encrypt(&key, &iv, &mut buf).expect("whole blocks");
    buf
}

/// Undoes [`encrypt_with_hash`]: the plaintext, cut where `parse` stops reading.
fn decrypt_with_hash(
    encrypted: &[u8],
    parse: impl for<'a> Fn(&mut Reader<'a>) -> Result<(), mtproto_core::tl::TlError>,
) -> Vec<u8> {
    let (_, server_nonce, new_nonce) = nonces();
    let (key, iv) = tmp_aes_key_iv(&new_nonce, &server_nonce);
    let mut buf = encrypted.to_vec();
    ige::aes256_ige_decrypt(&key, &iv, &mut buf).expect("whole blocks");
    let mut r = Reader::new(&buf[20..]).expect("reader");
    parse(&mut r).expect("inner data");
    let used = r.position();
    buf[20..20 + used].to_vec()
}

/// `server_DH_params_ok` for the client states, carrying `inner` (a `server_DH_inner_data`).
pub fn wrap_server_dh_params(inner: &[u8]) -> Vec<u8> {
    let (nonce, server_nonce, _) = nonces();
    types::ServerDhParamsOk {
        nonce: &nonce,
        server_nonce: &server_nonce,
        encrypted_answer: &encrypt_with_hash(inner),
    }
    .to_vec()
    .expect("serializes")
}

/// `set_client_DH_params` for the server states, carrying `inner` (a `client_DH_inner_data`).
pub fn wrap_set_client_dh(inner: &[u8]) -> Vec<u8> {
    let (nonce, server_nonce, _) = nonces();
    functions::SetClientDhParams {
        nonce: &nonce,
        server_nonce: &server_nonce,
        encrypted_data: &encrypt_with_hash(inner),
    }
    .to_vec()
    .expect("serializes")
}

/// `req_DH_params` for the server states: `inner` (a `p_q_inner_data*`, at most 144 bytes)
/// RSA_PAD-encrypted to the demo key; `None` if it is longer.
pub fn wrap_req_dh(inner: &[u8]) -> Option<Vec<u8>> {
    let (nonce, server_nonce, _) = nonces();
    let key = ServerConfig::demo().keys[0].public_key().clone();
    let encrypted = key.encrypt_pad(inner, &mut LcgRng(3)).ok()?;
    let (p, q) = (0x4409_5E05_u32.to_be_bytes(), 0x47A8_C84F_u32.to_be_bytes());
    functions::ReqDhParams {
        nonce: &nonce,
        server_nonce: &server_nonce,
        p: &p,
        q: &q,
        public_key_fingerprint: key.fingerprint() as i64,
        encrypted_data: &encrypted,
    }
    .to_vec()
    .ok()
}

/// Each machine just before one step, and valid inputs for it.
pub struct States {
    /// The sample's time.
    pub now: UnixTime,
    /// Client after `req_pq_multi`: takes `resPQ`.
    pub client_res_pq: ClientHandshake,
    /// Client after `req_DH_params`: takes `server_DH_params_ok` / `_fail`.
    pub client_dh_params: ClientHandshake,
    /// Client after `set_client_DH_params`: takes `dh_gen_ok` / `_retry` / `_fail`.
    pub client_dh_gen: ClientHandshake,
    /// Fresh server: takes `req_pq_multi`.
    pub server_req_pq: ServerHandshake,
    /// Server after `resPQ`: takes `req_DH_params`.
    pub server_req_dh: ServerHandshake,
    /// Server after `server_DH_params_ok`: takes `set_client_DH_params`.
    pub server_set_dh: ServerHandshake,
    /// `(target, name, message)`: valid inputs, for the seed corpus.
    pub seeds: Vec<(&'static str, &'static str, Vec<u8>)>,
}

/// The states, built once per process.
pub fn states() -> &'static States {
    static STATES: OnceLock<States> = OnceLock::new();
    STATES.get_or_init(build)
}

fn send(step: Result<ClientStep, impl std::fmt::Debug>) -> Vec<u8> {
    match step {
        Ok(ClientStep::Send(m)) => m,
        other => panic!("precomputed handshake went off the sample: {other:?}"),
    }
}

fn server_send(step: Result<ServerStep, impl std::fmt::Debug>) -> Vec<u8> {
    match step {
        Ok(ServerStep::Send(m)) => m,
        other => panic!("precomputed handshake went off the sample: {other:?}"),
    }
}

fn build() -> States {
    let now = UnixTime::from_secs(sample::SERVER_TIME);
    let server_config = ServerConfig::demo();
    let demo = server_config.keys[0].public_key().clone();

    // The sample's client: trusts Telegram's production key (the sample's resPQ offers it) and
    // the demo key (our server offers it).
    let keys = RsaKeySet::telegram_production().with(demo.clone());
    let mut rng = sample_client_rng();
    let mut c = ClientHandshake::new(ClientConfig::new(keys, 2));
    let req_pq = c.start(&mut rng).expect("start");
    assert_eq!(req_pq, body(sample::REQ_PQ_MULTI));
    let client_res_pq = c.clone();
    send(c.handle(now, &body(sample::RES_PQ), &mut rng));
    let client_dh_params = c.clone();
    let set_dh = send(c.handle(now, &body(sample::SERVER_DH_PARAMS_OK), &mut rng));
    assert_eq!(set_dh, body(sample::SET_CLIENT_DH_PARAMS));
    let client_dh_gen = c.clone();
    assert!(matches!(
        c.handle(now, &body(sample::DH_GEN_OK), &mut rng),
        Ok(ClientStep::Done(_))
    ));

    // Our demo server with the sample's server_nonce and p, q (pq = 0x130B7475669FEB8B).
    let res_pq = body(sample::RES_PQ);
    let mut srng = Script {
        chunks: [
            res_pq[20..36].to_vec(),
            0x4409_5E05_u64.to_le_bytes().to_vec(),
            0x47A8_C84F_u64.to_le_bytes().to_vec(),
        ]
        .into_iter()
        .collect(),
        fallback: LcgRng(2),
    };
    let mut s = ServerHandshake::new(server_config);
    let server_req_pq = s.clone();
    let our_res_pq = server_send(s.handle(now, &body(sample::REQ_PQ_MULTI), &mut srng));
    // Constructor, nonce, server_nonce and pq as in the sample; only the fingerprints differ.
    assert_eq!(our_res_pq[..48], res_pq[..48]);
    let server_req_dh = s.clone();
    let mut rng2 = sample_client_rng();
    let mut c2 = ClientHandshake::new(ClientConfig::new(RsaKeySet::new().with(demo), 2));
    c2.start(&mut rng2).expect("start");
    let req_dh = send(c2.handle(now, &our_res_pq, &mut rng2));
    let dh_ok = server_send(s.handle(now, &req_dh, &mut srng));
    let server_set_dh = s.clone();
    let set_dh2 = send(c2.handle(now, &dh_ok, &mut rng2));
    let Ok(ServerStep::Done {
        reply: dh_gen_ok, ..
    }) = s.handle(now, &set_dh2, &mut srng)
    else {
        panic!("precomputed server did not finish");
    };
    assert!(matches!(
        c2.handle(now, &dh_gen_ok, &mut rng2),
        Ok(ClientStep::Done(_))
    ));

    let raw = |m: &[u8]| [&[0u8][..], m].concat();
    let plain = |m: &[u8]| [&[1u8][..], m].concat();
    // The plaintexts of the encrypted parts: the sample's p_q_inner_data_dc (as published) and
    // the decrypted server_DH_inner_data / client_DH_inner_data of the runs above.
    let sample_ok = body(sample::SERVER_DH_PARAMS_OK);
    let ok = types::ServerDhParamsOk::from_bytes(&sample_ok).expect("server_DH_params_ok");
    let server_inner = decrypt_with_hash(ok.encrypted_answer, |r| {
        types::ServerDhInnerData::deserialize(r).map(drop)
    });
    let set = functions::SetClientDhParams::from_bytes(&set_dh2).expect("set_client_DH_params");
    let client_inner = decrypt_with_hash(set.encrypted_data, |r| {
        types::ClientDhInnerData::deserialize(r).map(drop)
    });
    // Self-checks: the wrapped plaintexts are valid messages for the states.
    let wrapped_req_dh = wrap_req_dh(&hex(sample::P_Q_INNER_DATA)).expect("144 bytes at most");
    assert!(matches!(
        server_req_dh
            .clone()
            .handle(now, &wrapped_req_dh, &mut LcgRng(4)),
        Ok(ServerStep::Send(_))
    ));
    send(client_dh_params.clone().handle(
        now,
        &wrap_server_dh_params(&server_inner),
        &mut LcgRng(4),
    ));
    assert!(matches!(
        server_set_dh
            .clone()
            .handle(now, &wrap_set_client_dh(&client_inner), &mut LcgRng(4)),
        Ok(ServerStep::Done { .. })
    ));

    let seeds = vec![
        ("handshake_client_res_pq", "spec-res_pq", res_pq),
        ("handshake_client_res_pq", "demo-res_pq", our_res_pq),
        (
            "handshake_client_dh_params",
            "spec-server_dh_params_ok",
            raw(&body(sample::SERVER_DH_PARAMS_OK)),
        ),
        // Same nonces and new_nonce as the sample: valid for this client too.
        (
            "handshake_client_dh_params",
            "demo-server_dh_params_ok",
            raw(&dh_ok),
        ),
        (
            "handshake_client_dh_params",
            "spec-server_dh_inner_data",
            plain(&server_inner),
        ),
        (
            "handshake_client_dh_gen",
            "spec-dh_gen_ok",
            body(sample::DH_GEN_OK),
        ),
        ("handshake_server_req_pq", "spec-req_pq_multi", req_pq),
        (
            "handshake_server_req_dh",
            "demo-req_dh_params",
            raw(&req_dh),
        ),
        (
            "handshake_server_req_dh",
            "spec-p_q_inner_data_dc",
            plain(&hex(sample::P_Q_INNER_DATA)),
        ),
        (
            "handshake_server_set_dh",
            "demo-set_client_dh_params",
            raw(&set_dh2),
        ),
        (
            "handshake_server_set_dh",
            "demo-client_dh_inner_data",
            plain(&client_inner),
        ),
    ];
    States {
        now,
        client_res_pq,
        client_dh_params,
        client_dh_gen,
        server_req_pq,
        server_req_dh,
        server_set_dh,
        seeds,
    }
}

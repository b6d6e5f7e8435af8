//! The server side of auth key creation (feature `server`).
//!
//! It answers `req_pq_multi` with its own `pq` (the product of two random 31-bit primes),
//! decrypts the client's RSA_PAD inner data with its private key(s) (legacy SHA-1 padding only
//! if [`ServerConfig::accept_legacy_padding`] is set), sends `server_DH_params_ok` with a fixed
//! safe prime, and checks every value the client sends back. Every malformed client message is
//! a typed [`HandshakeError`].
//!
//! RNG draw order: `server_nonce` (16) and the `pq` primes on `req_pq_multi`; the RSA blinding
//! factor (264 bytes per decryption: a second one if legacy padding is tried), `a` (256, redrawn
//! while `g_a` is out of range) and the answer padding on `req_DH_params`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use num_bigint_dig::BigUint;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::common::{
    decrypt_with_hash, dh_keypair, dh_shared, encrypt_with_hash, same16, tl_len, u64_be_min,
};
use super::dh::{TELEGRAM_DH_G, TELEGRAM_DH_PRIME, check_generator, check_public_value, to_256_be};
use super::prime::random_prime_u64;
use super::rsa::{RsaError, RsaPrivateKey};
use super::{Fingerprints, HandshakeError, KeyKind};
use crate::crypto::handshake_kdf::{initial_server_salt, new_nonce_hash, tmp_aes_key_iv};
use crate::crypto::{AuthKey, ct_eq, sha256};
use crate::time::UnixTime;
use crate::tl::schema::{enums, functions, types};
use crate::tl::{Deserialize, Reader, Serialize};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The private keys whose fingerprints are offered in `resPQ`.
    pub keys: Vec<RsaPrivateKey>,
    /// The DH prime (must be a 2048-bit safe prime; not re-checked here).
    pub dh_prime: [u8; 256],
    /// The generator sent with it (must satisfy the residue condition for `dh_prime`).
    pub g: u32,
    /// If set, the `dc` of the client's inner data must equal it.
    pub expected_dc: Option<i32>,
    /// Accept the pre-RSA_PAD `RSA(SHA1(data) + data + padding)` encoding from old clients
    /// (implies [`accept_inner_data_without_dc`](Self::accept_inner_data_without_dc)).
    pub accept_legacy_padding: bool,
    /// Accept `p_q_inner_data` / `p_q_inner_data_temp` (the forms without `dc`) inside
    /// RSA_PAD. Current clients send the `_dc` forms (`mtproto_auth_key.md`); some (GramJS)
    /// still send the old ones with the new padding.
    pub accept_inner_data_without_dc: bool,
    /// Largest `expires_in` accepted for temporary keys.
    pub max_expires_in: u32,
    /// How many `dh_gen_retry` answers (key id collisions) before `dh_gen_fail`.
    pub max_retries: u32,
}

impl ServerConfig {
    /// Telegram's prime and `g = 3`, the given keys, no dc check, RSA_PAD only.
    pub fn new(keys: Vec<RsaPrivateKey>) -> Self {
        Self {
            keys,
            dh_prime: TELEGRAM_DH_PRIME,
            g: TELEGRAM_DH_G,
            expected_dc: None,
            accept_legacy_padding: false,
            accept_inner_data_without_dc: false,
            max_expires_in: 7 * 24 * 3600,
            max_retries: 5,
        }
    }

    /// A server with the built-in demo key ([`RsaPrivateKey::demo`]); for tests only.
    pub fn demo() -> Self {
        Self::new(alloc::vec![RsaPrivateKey::demo()])
    }
}

/// What the server produced.
#[derive(Clone)]
pub struct ServerAuthKey {
    /// The new auth key.
    pub auth_key: AuthKey,
    /// The first server salt (same formula as the client's).
    pub server_salt: i64,
    /// Permanent or temporary, as the client asked.
    pub kind: KeyKind,
    /// The `dc` the client put in its inner data.
    pub dc: i32,
    /// The `server_time` the server sent in `server_DH_inner_data`.
    pub server_time: i32,
    /// For temporary keys: `server_time + expires_in`.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for ServerAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAuthKey")
            .field("auth_key", &self.auth_key)
            .field("kind", &self.kind)
            .field("dc", &self.dc)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The outcome of one [`ServerHandshake::handle`] call.
#[derive(Debug)]
pub enum ServerStep {
    /// Send this TL body back to the client.
    Send(Vec<u8>),
    /// Send `reply` (`dh_gen_ok`); the key is established.
    Done {
        /// The `dh_gen_ok` body.
        reply: Vec<u8>,
        /// The new key.
        key: Box<ServerAuthKey>,
    },
}

#[derive(Clone)]
struct ClientDhState {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: Zeroizing<[u8; 32]>,
    tmp_key: Zeroizing<[u8; 32]>,
    tmp_iv: Zeroizing<[u8; 32]>,
    a: Zeroizing<[u8; 256]>,
    p: BigUint,
    kind: KeyKind,
    dc: i32,
    server_time: i32,
    prev_aux_hash: Option<i64>,
    retries: u32,
}

#[derive(Clone)]
enum State {
    AwaitReqPq,
    AwaitReqDh {
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        p: u64,
        q: u64,
    },
    AwaitClientDh(Box<ClientDhState>),
    Done,
    Failed,
}

/// The server state machine, one per client connection.
///
/// Lost answers (`mtproto_auth_key.md`, "Error Handling"): if the client re-sends *exactly* the
/// previous request, the server re-sends exactly the previous answer, without changing state.
/// After an error nothing is re-sent: the handshake must restart.
///
/// `Clone` copies the whole state, secrets included (each copy wipes its own on drop).
#[derive(Clone)]
pub struct ServerHandshake {
    config: ServerConfig,
    state: State,
    /// SHA-256 of the last accepted request and the answer given to it.
    last: Option<([u8; 32], Vec<u8>)>,
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::AwaitReqPq => "await req_pq_multi",
            State::AwaitReqDh { .. } => "await req_DH_params",
            State::AwaitClientDh(_) => "await set_client_DH_params",
            State::Done => "done",
            State::Failed => "failed",
        };
        f.debug_struct("ServerHandshake")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// A `p`/`q`/`pq` byte string as a number (at most 8 significant bytes).
fn be_u64(b: &[u8]) -> Option<u64> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    let digits = b.get(start..)?;
    if digits.len() > 8 {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |acc, &d| (acc << 8) | u64::from(d)),
    )
}

/// The fields of the client's inner data, whichever constructor it used.
struct Inner {
    pq: Option<u64>,
    p: Option<u64>,
    q: Option<u64>,
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: Zeroizing<[u8; 32]>,
    dc: Option<i32>,
    expires_in: Option<i32>,
}

fn inner_from(v: &enums::PQInnerData<'_>) -> Inner {
    macro_rules! take {
        ($x:expr, $dc:expr, $exp:expr) => {
            Inner {
                pq: be_u64($x.pq),
                p: be_u64($x.p),
                q: be_u64($x.q),
                nonce: *$x.nonce,
                server_nonce: *$x.server_nonce,
                new_nonce: Zeroizing::new(*$x.new_nonce),
                dc: $dc,
                expires_in: $exp,
            }
        };
    }
    match v {
        enums::PQInnerData::Dc(x) => take!(x, Some(x.dc), None),
        enums::PQInnerData::TempDc(x) => take!(x, Some(x.dc), Some(x.expires_in)),
        enums::PQInnerData::PQInnerData(x) => take!(x, None, None),
        enums::PQInnerData::Temp(x) => take!(x, None, Some(x.expires_in)),
    }
}

impl ServerHandshake {
    /// A new server-side handshake waiting for `req_pq_multi`.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            state: State::AwaitReqPq,
            last: None,
        }
    }

    /// Whether the key has been established.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Feeds a client message (TL body) received at `now`. Key ids are never considered taken;
    /// see [`ServerHandshake::handle_with`].
    pub fn handle<R: CryptoRng + ?Sized>(
        &mut self,
        now: UnixTime,
        input: &[u8],
        rng: &mut R,
    ) -> Result<ServerStep, HandshakeError> {
        self.handle_with(now, input, rng, |_| false)
    }

    /// Like [`ServerHandshake::handle`], with `is_taken(auth_key_id)` telling whether a key with
    /// that id already exists: the server then answers `dh_gen_retry` (step 8–9), up to
    /// [`ServerConfig::max_retries`] times, then `dh_gen_fail`.
    pub fn handle_with<R: CryptoRng + ?Sized>(
        &mut self,
        now: UnixTime,
        input: &[u8],
        rng: &mut R,
        is_taken: impl FnMut(i64) -> bool,
    ) -> Result<ServerStep, HandshakeError> {
        let digest = sha256(&[input]);
        if let Some((h, answer)) = &self.last
            && ct_eq(h, &digest)
            && !matches!(self.state, State::Failed)
        {
            return Ok(ServerStep::Send(answer.clone()));
        }
        self.last = None;
        let state = core::mem::replace(&mut self.state, State::Failed);
        let (next, step) = match state {
            State::AwaitReqPq => self.on_req_pq(input, rng)?,
            State::AwaitReqDh {
                nonce,
                server_nonce,
                p,
                q,
            } => self.on_req_dh(now, nonce, server_nonce, p, q, input, rng)?,
            State::AwaitClientDh(st) => self.on_client_dh(st, input, is_taken)?,
            State::Done | State::Failed => return Err(HandshakeError::InvalidState),
        };
        self.state = next;
        let answer = match &step {
            ServerStep::Send(a) | ServerStep::Done { reply: a, .. } => a.clone(),
        };
        self.last = Some((digest, answer));
        Ok(step)
    }

    fn on_req_pq<R: CryptoRng + ?Sized>(
        &self,
        input: &[u8],
        rng: &mut R,
    ) -> Result<(State, ServerStep), HandshakeError> {
        let req = functions::ReqPqMulti::from_bytes(input)?;
        let nonce = *req.nonce;
        let mut server_nonce = [0u8; 16];
        rng.fill_bytes(&mut server_nonce);
        let p = random_prime_u64(31, rng).ok_or(HandshakeError::KeyGeneration)?;
        let mut q = p;
        // Distinct primes; 31-bit primes collide with probability ~2^-26 per draw.
        for _ in 0..16 {
            q = random_prime_u64(31, rng).ok_or(HandshakeError::KeyGeneration)?;
            if q != p {
                break;
            }
        }
        if q == p {
            return Err(HandshakeError::KeyGeneration);
        }
        let (p, q) = if p < q { (p, q) } else { (q, p) };
        let pq = u64_be_min(p.wrapping_mul(q));
        let body = types::ResPq {
            nonce: &nonce,
            server_nonce: &server_nonce,
            pq: &pq,
            server_public_key_fingerprints: self
                .config
                .keys
                .iter()
                .map(|k| k.public_key().fingerprint())
                .collect(),
        }
        .to_vec()?;
        Ok((
            State::AwaitReqDh {
                nonce,
                server_nonce,
                p,
                q,
            },
            ServerStep::Send(body),
        ))
    }

    /// Decrypts `encrypted_data` with `key` and parses the inner data from it.
    fn open_inner<R: CryptoRng + ?Sized>(
        &self,
        key: &RsaPrivateKey,
        encrypted: &[u8],
        rng: &mut R,
    ) -> Result<Inner, HandshakeError> {
        match key.decrypt_pad(encrypted, rng) {
            Ok(plain) => {
                // The 192 bytes are the TL data followed by random padding: parse a prefix.
                let mut r = Reader::new(plain.as_ref())?;
                let v = enums::PQInnerData::deserialize(&mut r)?;
                if matches!(
                    v,
                    enums::PQInnerData::PQInnerData(_) | enums::PQInnerData::Temp(_)
                ) && !self.config.accept_legacy_padding
                    && !self.config.accept_inner_data_without_dc
                {
                    return Err(HandshakeError::UnexpectedMessage);
                }
                Ok(inner_from(&v))
            }
            Err(RsaError::PadHashMismatch) if self.config.accept_legacy_padding => {
                let legacy = key.decrypt_legacy(encrypted, rng)?;
                let mut r = Reader::new(legacy.body.as_ref())?;
                let v = enums::PQInnerData::deserialize(&mut r)?;
                legacy.verify(r.position())?;
                Ok(inner_from(&v))
            }
            Err(e) => Err(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_req_dh<R: CryptoRng + ?Sized>(
        &self,
        now: UnixTime,
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        p: u64,
        q: u64,
        input: &[u8],
        rng: &mut R,
    ) -> Result<(State, ServerStep), HandshakeError> {
        let req = functions::ReqDhParams::from_bytes(input)?;
        if !same16(req.nonce, &nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(req.server_nonce, &server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        if be_u64(req.p) != Some(p) || be_u64(req.q) != Some(q) {
            return Err(HandshakeError::PqMismatch);
        }
        let fp = req.public_key_fingerprint;
        let key = self
            .config
            .keys
            .iter()
            .find(|k| k.public_key().fingerprint() == fp)
            .ok_or(HandshakeError::UnknownFingerprint {
                offered: Fingerprints::from_slice(&[req.public_key_fingerprint]),
            })?;
        let inner = self.open_inner(key, req.encrypted_data, rng)?;
        if !same16(&inner.nonce, &nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(&inner.server_nonce, &server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        if inner.p != Some(p) || inner.q != Some(q) || inner.pq != Some(p.wrapping_mul(q)) {
            return Err(HandshakeError::PqMismatch);
        }
        if let (Some(want), Some(got)) = (self.config.expected_dc, inner.dc)
            && want != got
        {
            return Err(HandshakeError::DcMismatch);
        }
        let kind = match inner.expires_in {
            None => KeyKind::Permanent,
            Some(e) => match u32::try_from(e) {
                Ok(e) if e > 0 && e <= self.config.max_expires_in => {
                    KeyKind::Temporary { expires_in: e }
                }
                _ => return Err(HandshakeError::BadExpiresIn),
            },
        };

        let dh_p = BigUint::from_bytes_be(&self.config.dh_prime);
        check_generator(self.config.g, &dh_p)?;
        let (a, g_a) = dh_keypair(self.config.g, &dh_p, rng)?;
        let server_time = i32::try_from(now.as_secs()).unwrap_or(i32::MAX);
        let g_a = to_256_be(&g_a);
        let answer = types::ServerDhInnerData {
            nonce: &nonce,
            server_nonce: &server_nonce,
            g: i32::try_from(self.config.g).unwrap_or(0),
            dh_prime: &self.config.dh_prime,
            g_a: &g_a,
            server_time,
        }
        .to_vec()?;
        let (tmp_key, tmp_iv) = tmp_aes_key_iv(&inner.new_nonce, &server_nonce);
        let encrypted = encrypt_with_hash(&answer, &tmp_key, &tmp_iv, rng)?;
        let body = types::ServerDhParamsOk {
            nonce: &nonce,
            server_nonce: &server_nonce,
            encrypted_answer: &encrypted,
        }
        .to_vec()?;
        let st = Box::new(ClientDhState {
            nonce,
            server_nonce,
            new_nonce: inner.new_nonce,
            tmp_key,
            tmp_iv,
            a,
            p: dh_p,
            kind,
            dc: inner.dc.unwrap_or(0),
            server_time,
            prev_aux_hash: None,
            retries: 0,
        });
        Ok((State::AwaitClientDh(st), ServerStep::Send(body)))
    }

    fn on_client_dh(
        &self,
        mut st: Box<ClientDhState>,
        input: &[u8],
        mut is_taken: impl FnMut(i64) -> bool,
    ) -> Result<(State, ServerStep), HandshakeError> {
        let req = functions::SetClientDhParams::from_bytes(input)?;
        if !same16(req.nonce, &st.nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(req.server_nonce, &st.server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        let data = decrypt_with_hash(req.encrypted_data, &st.tmp_key, &st.tmp_iv, |b: &[u8]| {
            tl_len::<types::ClientDhInnerData<'_>>(b)
        })?;
        let inner = types::ClientDhInnerData::from_bytes(&data)?;
        if !same16(inner.nonce, &st.nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(inner.server_nonce, &st.server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        if inner.retry_id != st.prev_aux_hash.unwrap_or(0) {
            return Err(HandshakeError::RetryIdMismatch);
        }
        let g_b = BigUint::from_bytes_be(inner.g_b);
        check_public_value(&g_b, &st.p)?;
        let auth_key = AuthKey::from_bytes(*dh_shared(&g_b, &st.a, &st.p)?);
        if is_taken(auth_key.id()) {
            st.retries = st.retries.saturating_add(1);
            let (nonce, server_nonce) = (st.nonce, st.server_nonce);
            if st.retries > self.config.max_retries {
                let h = new_nonce_hash(&auth_key, &st.new_nonce, 3);
                let body = types::DhGenFail {
                    nonce: &nonce,
                    server_nonce: &server_nonce,
                    new_nonce_hash3: &h,
                }
                .to_vec()?;
                return Ok((State::Failed, ServerStep::Send(body)));
            }
            let h = new_nonce_hash(&auth_key, &st.new_nonce, 2);
            st.prev_aux_hash = Some(auth_key.aux_hash());
            let body = types::DhGenRetry {
                nonce: &nonce,
                server_nonce: &server_nonce,
                new_nonce_hash2: &h,
            }
            .to_vec()?;
            return Ok((State::AwaitClientDh(st), ServerStep::Send(body)));
        }
        let h = new_nonce_hash(&auth_key, &st.new_nonce, 1);
        let reply = types::DhGenOk {
            nonce: &st.nonce,
            server_nonce: &st.server_nonce,
            new_nonce_hash1: &h,
        }
        .to_vec()?;
        let expires_at = match st.kind {
            KeyKind::Permanent => None,
            KeyKind::Temporary { expires_in } => {
                Some(i64::from(st.server_time).saturating_add(i64::from(expires_in)))
            }
        };
        let key = ServerAuthKey {
            auth_key,
            server_salt: initial_server_salt(&st.new_nonce, &st.server_nonce),
            kind: st.kind,
            dc: st.dc,
            server_time: st.server_time,
            expires_at,
        };
        Ok((
            State::Done,
            ServerStep::Done {
                reply,
                key: Box::new(key),
            },
        ))
    }
}

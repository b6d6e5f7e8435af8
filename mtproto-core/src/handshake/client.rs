//! The client side of auth key creation (`mtproto_auth_key.md`, steps 1–9).
//!
//! Randomness is drawn from the caller's RNG in a fixed order, so a scripted RNG can replay the
//! official sample:
//! 1. [`ClientHandshake::start`]: `nonce` (16 bytes);
//! 2. on `resPQ`: `new_nonce` (32), the RSA_PAD padding (`192 - len(data)`), then one `temp_key`
//!    (32) per RSA_PAD attempt;
//! 3. on `server_DH_params_ok`: Miller–Rabin bases (only if `dh_prime` is not a known prime), then
//!    `b` (256) per draw until `g_b` is in range, then the `0..15` padding bytes;
//! 4. on `dh_gen_retry`: a new `b` and padding as in 3.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use num_bigint_dig::BigUint;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::common::{
    SecretVec, decrypt_with_hash, dh_keypair, dh_shared, encrypt_with_hash, same16, tl_len,
    u64_be_min,
};
use super::dh::{self, TELEGRAM_DH_PRIME, check_public_value, to_256_be};
use super::{Fingerprints, HandshakeError, KeyKind, pq, rsa::RsaKeySet};
use crate::crypto::AuthKey;
use crate::crypto::handshake_kdf::{initial_server_salt, new_nonce_hash, tmp_aes_key_iv};
use crate::time::UnixTime;
use crate::tl::schema::{enums, functions, types};
use crate::tl::{Deserialize, Serialize};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Server public keys we trust.
    pub keys: RsaKeySet,
    /// The `dc` field of the inner data: the DC id, `+10000` for test DCs, negative for media DCs.
    pub dc: i32,
    /// Permanent or temporary key.
    pub kind: KeyKind,
    /// `dh_prime` values accepted without a primality test (verified offline). Defaults to
    /// Telegram's current prime.
    pub known_primes: Vec<[u8; 256]>,
    /// Miller–Rabin rounds for an unknown `dh_prime` (and again for `(p-1)/2`). Values below
    /// [`dh::MIN_MR_ROUNDS`] (15, the security guidelines' minimum) are raised to it.
    pub mr_rounds: u32,
    /// How many `dh_gen_retry` answers are tolerated before giving up.
    pub max_retries: u32,
}

impl ClientConfig {
    /// A permanent-key configuration for DC `dc` with the given keys.
    pub fn new(keys: RsaKeySet, dc: i32) -> Self {
        Self {
            keys,
            dc,
            kind: KeyKind::Permanent,
            known_primes: alloc::vec![TELEGRAM_DH_PRIME],
            mr_rounds: dh::DEFAULT_MR_ROUNDS,
            max_retries: 5,
        }
    }

    /// Switches to a temporary key valid for `expires_in` seconds (for PFS).
    pub fn temporary(mut self, expires_in: u32) -> Self {
        self.kind = KeyKind::Temporary { expires_in };
        self
    }
}

/// What the client produced: the new key and what goes with it.
#[derive(Clone)]
pub struct AuthKeyResult {
    /// The 2048-bit auth key (its id is `auth_key.id()`).
    pub auth_key: AuthKey,
    /// The first server salt: `new_nonce[0..8] XOR server_nonce[0..8]`, as a little-endian long.
    pub server_salt: i64,
    /// `server_time - local time` in seconds, measured when `server_DH_params_ok` arrived.
    pub time_offset: i64,
    /// Permanent or temporary.
    pub kind: KeyKind,
    /// For temporary keys: `expires_at = server time + expires_in` (unix seconds), the value to
    /// store and to put in `bind_auth_key_inner`.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for AuthKeyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKeyResult")
            .field("auth_key", &self.auth_key)
            .field("time_offset", &self.time_offset)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The outcome of one [`ClientHandshake::handle`] call.
#[derive(Debug)]
pub enum ClientStep {
    /// Send this TL body (in an unencrypted message) and feed the answer back.
    Send(Vec<u8>),
    /// The key is ready.
    Done(Box<AuthKeyResult>),
}

#[derive(Clone)]
struct DhGenState {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: Zeroizing<[u8; 32]>,
    tmp_key: Zeroizing<[u8; 32]>,
    tmp_iv: Zeroizing<[u8; 32]>,
    g: u32,
    p: BigUint,
    g_a: BigUint,
    auth_key: AuthKey,
    retries: u32,
    time_offset: i64,
}

#[derive(Clone)]
enum State {
    Idle,
    AwaitResPq {
        nonce: [u8; 16],
    },
    AwaitDhParams {
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        new_nonce: Zeroizing<[u8; 32]>,
    },
    AwaitDhGen(Box<DhGenState>),
    Done,
    Failed,
}

/// The client state machine. See the [module docs](super) for the driving loop.
///
/// `Clone` copies the whole state, secrets included (each copy wipes its own on drop): e.g. to
/// fuzz one step from a precomputed state.
#[derive(Clone)]
pub struct ClientHandshake {
    config: ClientConfig,
    state: State,
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::AwaitResPq { .. } => "await resPQ",
            State::AwaitDhParams { .. } => "await server_DH_params",
            State::AwaitDhGen(_) => "await dh_gen",
            State::Done => "done",
            State::Failed => "failed",
        };
        f.debug_struct("ClientHandshake")
            .field("state", &state)
            .field("dc", &self.config.dc)
            .field("kind", &self.config.kind)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// A new handshake; nothing is sent until [`ClientHandshake::start`].
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            state: State::Idle,
        }
    }

    /// Whether the machine finished successfully.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether the machine failed (it accepts nothing more).
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Step 1: draws `nonce` and returns the `req_pq_multi` body.
    pub fn start<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<Vec<u8>, HandshakeError> {
        if !matches!(self.state, State::Idle) {
            return Err(HandshakeError::InvalidState);
        }
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let body = functions::ReqPqMulti { nonce: &nonce }.to_vec()?;
        self.state = State::AwaitResPq { nonce };
        Ok(body)
    }

    /// Feeds the server's answer (a TL body) received at local time `now`.
    pub fn handle<R: CryptoRng + ?Sized>(
        &mut self,
        now: UnixTime,
        input: &[u8],
        rng: &mut R,
    ) -> Result<ClientStep, HandshakeError> {
        let state = core::mem::replace(&mut self.state, State::Failed);
        let (next, step) = match state {
            State::AwaitResPq { nonce } => self.on_res_pq(nonce, input, rng)?,
            State::AwaitDhParams {
                nonce,
                server_nonce,
                new_nonce,
            } => self.on_dh_params(now, nonce, server_nonce, new_nonce, input, rng)?,
            State::AwaitDhGen(st) => self.on_dh_gen(now, st, input, rng)?,
            State::Idle | State::Done | State::Failed => return Err(HandshakeError::InvalidState),
        };
        self.state = next;
        Ok(step)
    }

    /// Steps 2–5: resPQ in, req_DH_params out.
    fn on_res_pq<R: CryptoRng + ?Sized>(
        &self,
        nonce: [u8; 16],
        input: &[u8],
        rng: &mut R,
    ) -> Result<(State, ClientStep), HandshakeError> {
        let res = types::ResPq::from_bytes(input)?;
        if !same16(res.nonce, &nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        let server_nonce = *res.server_nonce;
        let key = self
            .config
            .keys
            .select(&res.server_public_key_fingerprints)
            .ok_or_else(|| HandshakeError::UnknownFingerprint {
                offered: Fingerprints::from_slice(&res.server_public_key_fingerprints),
            })?;
        let (p, q) = pq::factorize_be(res.pq)?;
        let (p, q) = (u64_be_min(p), u64_be_min(q));

        let mut new_nonce = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(new_nonce.as_mut());
        let data = SecretVec(match self.config.kind {
            KeyKind::Permanent => types::PQInnerDataDc {
                pq: res.pq,
                p: &p,
                q: &q,
                nonce: &nonce,
                server_nonce: &server_nonce,
                new_nonce: &new_nonce,
                dc: self.config.dc,
            }
            .to_vec()?,
            KeyKind::Temporary { expires_in } => types::PQInnerDataTempDc {
                pq: res.pq,
                p: &p,
                q: &q,
                nonce: &nonce,
                server_nonce: &server_nonce,
                new_nonce: &new_nonce,
                dc: self.config.dc,
                expires_in: i32::try_from(expires_in).unwrap_or(i32::MAX),
            }
            .to_vec()?,
        });
        let encrypted = key.encrypt_pad(&data, rng)?;
        let body = functions::ReqDhParams {
            nonce: &nonce,
            server_nonce: &server_nonce,
            p: &p,
            q: &q,
            public_key_fingerprint: key.fingerprint(),
            encrypted_data: &encrypted,
        }
        .to_vec()?;
        Ok((
            State::AwaitDhParams {
                nonce,
                server_nonce,
                new_nonce,
            },
            ClientStep::Send(body),
        ))
    }

    /// Steps 6–7: server_DH_params_ok in, set_client_DH_params out.
    fn on_dh_params<R: CryptoRng + ?Sized>(
        &self,
        now: UnixTime,
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        new_nonce: Zeroizing<[u8; 32]>,
        input: &[u8],
        rng: &mut R,
    ) -> Result<(State, ClientStep), HandshakeError> {
        let ok = match enums::ServerDhParams::from_bytes(input)? {
            enums::ServerDhParams::Ok(ok) => ok,
            enums::ServerDhParams::Fail(fail) => {
                if !same16(fail.nonce, &nonce) {
                    return Err(HandshakeError::NonceMismatch);
                }
                if !same16(fail.server_nonce, &server_nonce) {
                    return Err(HandshakeError::ServerNonceMismatch);
                }
                // new_nonce_hash := 128 lower-order bits of SHA1(new_nonce).
                let h = crate::crypto::sha1(&[new_nonce.as_ref()]);
                let low: &[u8] = h.get(4..).unwrap_or(&[]);
                if !crate::crypto::ct_eq(low, fail.new_nonce_hash) {
                    return Err(HandshakeError::NewNonceMismatch);
                }
                return Err(HandshakeError::ServerDhParamsFail);
            }
        };
        if !same16(ok.nonce, &nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(ok.server_nonce, &server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        let (tmp_key, tmp_iv) = tmp_aes_key_iv(&new_nonce, &server_nonce);
        let answer = decrypt_with_hash(ok.encrypted_answer, &tmp_key, &tmp_iv, |b: &[u8]| {
            tl_len::<types::ServerDhInnerData<'_>>(b)
        })?;
        let inner = types::ServerDhInnerData::from_bytes(&answer)?;
        if !same16(inner.nonce, &nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(inner.server_nonce, &server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        let g = u32::try_from(inner.g).map_err(|_| dh::DhError::GeneratorOutOfRange)?;
        let p = BigUint::from_bytes_be(inner.dh_prime);
        dh::check_params(g, &p, &self.config.known_primes, self.config.mr_rounds, rng)?;
        let g_a = BigUint::from_bytes_be(inner.g_a);
        check_public_value(&g_a, &p)?;
        let local = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let time_offset = i64::from(inner.server_time).saturating_sub(local);

        let mut st = Box::new(DhGenState {
            nonce,
            server_nonce,
            new_nonce,
            tmp_key,
            tmp_iv,
            g,
            p,
            g_a,
            // Replaced by `client_dh` right below.
            auth_key: AuthKey::from_bytes([0; 256]),
            retries: 0,
            time_offset,
        });
        let body = client_dh(&mut st, 0, rng)?;
        Ok((State::AwaitDhGen(st), ClientStep::Send(body)))
    }

    /// Step 9: dh_gen_ok / dh_gen_retry / dh_gen_fail.
    fn on_dh_gen<R: CryptoRng + ?Sized>(
        &self,
        now: UnixTime,
        mut st: Box<DhGenState>,
        input: &[u8],
        rng: &mut R,
    ) -> Result<(State, ClientStep), HandshakeError> {
        let answer = enums::SetClientDhParamsAnswer::from_bytes(input)?;
        let (n, s, hash, number) = match &answer {
            enums::SetClientDhParamsAnswer::DhGenOk(a) => {
                (a.nonce, a.server_nonce, a.new_nonce_hash1, 1)
            }
            enums::SetClientDhParamsAnswer::DhGenRetry(a) => {
                (a.nonce, a.server_nonce, a.new_nonce_hash2, 2)
            }
            enums::SetClientDhParamsAnswer::DhGenFail(a) => {
                (a.nonce, a.server_nonce, a.new_nonce_hash3, 3)
            }
        };
        if !same16(n, &st.nonce) {
            return Err(HandshakeError::NonceMismatch);
        }
        if !same16(s, &st.server_nonce) {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        let expected = new_nonce_hash(&st.auth_key, &st.new_nonce, number);
        if !same16(hash, &expected) {
            return Err(HandshakeError::NewNonceHashMismatch);
        }
        match number {
            1 => {
                let expires_at = match self.config.kind {
                    KeyKind::Permanent => None,
                    KeyKind::Temporary { expires_in } => {
                        let local = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
                        Some(
                            local
                                .saturating_add(st.time_offset)
                                .saturating_add(i64::from(expires_in)),
                        )
                    }
                };
                let result = AuthKeyResult {
                    auth_key: st.auth_key.clone(),
                    server_salt: initial_server_salt(&st.new_nonce, &st.server_nonce),
                    time_offset: st.time_offset,
                    kind: self.config.kind,
                    expires_at,
                };
                Ok((State::Done, ClientStep::Done(Box::new(result))))
            }
            2 => {
                st.retries = st.retries.saturating_add(1);
                if st.retries > self.config.max_retries {
                    return Err(HandshakeError::TooManyRetries);
                }
                // retry_id = auth_key_aux_hash of the previous (failed) attempt.
                let retry_id = st.auth_key.aux_hash();
                let body = client_dh(&mut st, retry_id, rng)?;
                Ok((State::AwaitDhGen(st), ClientStep::Send(body)))
            }
            _ => Err(HandshakeError::DhGenFail),
        }
    }
}

/// Step 7–8: draws `b`, computes `g_b` and the auth key, returns the `set_client_DH_params` body.
fn client_dh<R: CryptoRng + ?Sized>(
    st: &mut DhGenState,
    retry_id: i64,
    rng: &mut R,
) -> Result<Vec<u8>, HandshakeError> {
    let (b, g_b) = dh_keypair(st.g, &st.p, rng)?;
    st.auth_key = AuthKey::from_bytes(*dh_shared(&st.g_a, &b, &st.p)?);
    let g_b = to_256_be(&g_b);
    let data = SecretVec(
        types::ClientDhInnerData {
            nonce: &st.nonce,
            server_nonce: &st.server_nonce,
            retry_id,
            g_b: &g_b,
        }
        .to_vec()?,
    );
    let encrypted = encrypt_with_hash(&data, &st.tmp_key, &st.tmp_iv, rng)?;
    Ok(functions::SetClientDhParams {
        nonce: &st.nonce,
        server_nonce: &st.server_nonce,
        encrypted_data: &encrypted,
    }
    .to_vec()?)
}

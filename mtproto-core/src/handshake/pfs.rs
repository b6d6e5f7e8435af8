//! Perfect Forward Secrecy: binding a temporary key to the permanent one (`api_pfs.md`,
//! `method_auth.bindTempAuthKey.md`).
//!
//! The client builds `bind_auth_key_inner`, encrypts it with MTProto 1.0 and the **permanent**
//! key ([`crate::crypto::v1::encrypt_bind_auth_key_inner`]: `random:int128` instead of salt and
//! session, the `msg_id` of the carrying request, `seqno = 0`, `msg_len = 40`), and sends
//! `auth.bindTempAuthKey` over the **temporary** key in session `temp_session_id`.
//! [`verify_bind`] is the server side; every mismatch is a [`BindError`] (no silent fallback).

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;

use crate::crypto::AuthKey;
use crate::crypto::message::DecryptError;
use crate::crypto::v1;
use crate::tl::schema::types;
use crate::tl::{
    Deserialize, Identifiable, Reader, RemoteCall, Serialize, TlError, Writer, bytes_len,
};

/// `auth.bindTempAuthKey#cdd42a05 perm_auth_key_id:long nonce:long expires_at:int
/// encrypted_message:bytes = Bool` (an API-layer method, so not in the MTProto schema).
#[derive(Clone, PartialEq, Eq)]
pub struct BindTempAuthKey<'a> {
    /// The permanent `auth_key_id` to bind to.
    pub perm_auth_key_id: i64,
    /// The random `nonce` of `bind_auth_key_inner`.
    pub nonce: i64,
    /// Unix time at which the temporary key expires.
    pub expires_at: i32,
    /// The v1-encrypted binding message.
    pub encrypted_message: &'a [u8],
}

impl fmt::Debug for BindTempAuthKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindTempAuthKey")
            .field("perm_auth_key_id", &self.perm_auth_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Identifiable for BindTempAuthKey<'_> {
    const CONSTRUCTOR_ID: u32 = 0xcdd4_2a05;
}

impl Serialize for BindTempAuthKey<'_> {
    fn serialized_len(&self) -> usize {
        // Saturating like the generated TL types: an impossible size is refused by `to_vec`.
        bytes_len(self.encrypted_message.len()).saturating_add(4 + 8 + 8 + 4)
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_u32(Self::CONSTRUCTOR_ID)?;
        w.write_i64(self.perm_auth_key_id)?;
        w.write_i64(self.nonce)?;
        w.write_i32(self.expires_at)?;
        w.write_bytes(self.encrypted_message)
    }
}

impl<'a> Deserialize<'a> for BindTempAuthKey<'a> {
    const MIN_SERIALIZED_LEN: usize = 4 + 8 + 8 + 4 + 4;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.expect_constructor(Self::CONSTRUCTOR_ID)?;
        Ok(Self {
            perm_auth_key_id: r.read_i64()?,
            nonce: r.read_i64()?,
            expires_at: r.read_i32()?,
            encrypted_message: r.read_bytes()?,
        })
    }
}

impl RemoteCall for BindTempAuthKey<'_> {
    type Return<'r> = bool;
}

/// Why a binding request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// The request or the inner message is not valid TL.
    Tl(TlError),
    /// `perm_auth_key_id` is not the permanent key's id.
    PermKeyIdMismatch,
    /// The v1 decryption or its `msg_key` check failed (`ENCRYPTED_MESSAGE_INVALID`).
    Decrypt(DecryptError),
    /// The inner `msg_id` is not the id of the carrying request, or `seqno != 0`.
    MsgIdMismatch,
    /// The inner message is not 40 bytes of `bind_auth_key_inner`.
    InnerLength,
    /// The inner `nonce` differs from the request's.
    NonceMismatch,
    /// `temp_auth_key_id` is not the key the request arrived on.
    TempKeyIdMismatch,
    /// The inner `perm_auth_key_id` differs from the request's.
    InnerPermKeyIdMismatch,
    /// `temp_session_id` is not the session the request arrived in.
    SessionMismatch,
    /// The inner `expires_at` differs from the request's.
    ExpiresAtMismatch,
    /// `expires_at` is not in the future (`EXPIRES_AT_INVALID`).
    Expired,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tl(e) => write!(f, "malformed binding message: {e}"),
            Self::PermKeyIdMismatch => f.write_str("perm_auth_key_id is not the permanent key"),
            Self::Decrypt(e) => write!(f, "binding message does not decrypt: {e}"),
            Self::MsgIdMismatch => f.write_str("inner msg_id/seqno do not match the request"),
            Self::InnerLength => f.write_str("inner message is not a bind_auth_key_inner"),
            Self::NonceMismatch => f.write_str("binding nonce mismatch"),
            Self::TempKeyIdMismatch => f.write_str("temp_auth_key_id mismatch"),
            Self::InnerPermKeyIdMismatch => f.write_str("inner perm_auth_key_id mismatch"),
            Self::SessionMismatch => f.write_str("temp_session_id mismatch"),
            Self::ExpiresAtMismatch => f.write_str("expires_at mismatch"),
            Self::Expired => f.write_str("expires_at is not in the future"),
        }
    }
}

impl core::error::Error for BindError {}

impl From<TlError> for BindError {
    fn from(e: TlError) -> Self {
        Self::Tl(e)
    }
}

/// Builds the body of `auth.bindTempAuthKey` binding `temp` to `perm`.
///
/// `msg_id` is the id the caller will give the request (sent with `temp` in session
/// `temp_session_id`); `expires_at` is the temporary key's expiry (e.g.
/// [`AuthKeyResult::expires_at`](super::AuthKeyResult::expires_at)). Draws the `nonce` (8 bytes),
/// then the v1 `random` (16) and padding from `rng`.
pub fn bind_temp_auth_key<R: CryptoRng + ?Sized>(
    perm: &AuthKey,
    temp: &AuthKey,
    temp_session_id: i64,
    expires_at: i32,
    msg_id: i64,
    rng: &mut R,
) -> Result<Vec<u8>, TlError> {
    let mut nonce = [0u8; 8];
    rng.fill_bytes(&mut nonce);
    let nonce = i64::from_le_bytes(nonce);
    let inner = types::BindAuthKeyInner {
        nonce,
        temp_auth_key_id: temp.id(),
        perm_auth_key_id: perm.id(),
        temp_session_id,
        expires_at,
    };
    let mut buf = [0u8; v1::BIND_AUTH_KEY_INNER_LEN];
    inner.serialize_into(&mut buf)?;
    let encrypted = v1::encrypt_bind_auth_key_inner(perm, msg_id, &buf, rng);
    BindTempAuthKey {
        perm_auth_key_id: perm.id(),
        nonce,
        expires_at,
        encrypted_message: &encrypted,
    }
    .to_vec()
}

/// A verified binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The permanent key id.
    pub perm_auth_key_id: i64,
    /// The temporary key id now bound to it.
    pub temp_auth_key_id: i64,
    /// Expiry of the binding (unix seconds).
    pub expires_at: i32,
}

/// Server side: checks an `auth.bindTempAuthKey` body received on key `temp_auth_key_id` in
/// session `temp_session_id`, in a message with id `msg_id`, at unix time `now_secs`, against
/// the permanent key `perm` the request names.
pub fn verify_bind(
    perm: &AuthKey,
    temp_auth_key_id: i64,
    temp_session_id: i64,
    msg_id: i64,
    now_secs: i64,
    request: &[u8],
) -> Result<Binding, BindError> {
    let req = BindTempAuthKey::from_bytes(request)?;
    if req.perm_auth_key_id != perm.id() {
        return Err(BindError::PermKeyIdMismatch);
    }
    let mut buf = super::common::SecretVec(req.encrypted_message.to_vec());
    let msg = v1::decrypt_bind_auth_key_inner(perm, &mut buf).map_err(BindError::Decrypt)?;
    if msg.msg_id != msg_id || msg.seq_no != 0 {
        return Err(BindError::MsgIdMismatch);
    }
    if msg.inner.len() != v1::BIND_AUTH_KEY_INNER_LEN {
        return Err(BindError::InnerLength);
    }
    let inner = types::BindAuthKeyInner::from_bytes(msg.inner)?;
    if inner.nonce != req.nonce {
        return Err(BindError::NonceMismatch);
    }
    if inner.temp_auth_key_id != temp_auth_key_id {
        return Err(BindError::TempKeyIdMismatch);
    }
    if inner.perm_auth_key_id != req.perm_auth_key_id {
        return Err(BindError::InnerPermKeyIdMismatch);
    }
    if inner.temp_session_id != temp_session_id {
        return Err(BindError::SessionMismatch);
    }
    if inner.expires_at != req.expires_at {
        return Err(BindError::ExpiresAtMismatch);
    }
    if i64::from(req.expires_at) <= now_secs {
        return Err(BindError::Expired);
    }
    Ok(Binding {
        perm_auth_key_id: perm.id(),
        temp_auth_key_id,
        expires_at: req.expires_at,
    })
}

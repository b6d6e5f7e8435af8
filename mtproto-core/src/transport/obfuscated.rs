//! Transport obfuscation, "obfuscated2" (`mtproto_mtproto-transports.md`, "Transport
//! obfuscation"): a 64-byte random init carrying the protocol identifier (offset 56) and, for
//! MTProxy, the DC id (offset 60); AES-256-CTR over the rest of the stream in both directions,
//! keys optionally hashed with an MTProxy secret; optionally inside fake-TLS records.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::framing::Codec;
use super::secret::ProxySecret;
use super::{
    DEFAULT_MAX_FRAME_LEN, EncodeError, Frame, Framing, QuickAckToken, Role, Status, TransportError,
};

type AesCtr = ctr::Ctr128BE<aes::Aes256>;

/// Length of the obfuscation init.
pub const INIT_LEN: usize = 64;
/// Largest TLS application-data record payload we write (2^14, the TLS plaintext limit).
pub const TLS_MAX_RECORD_WRITE: usize = 16 * 1024;
const _: () = assert!(TLS_MAX_RECORD_WRITE <= u16::MAX as usize);
/// Largest TLS record payload we accept (2^14 + 256, the TLS 1.3 ciphertext limit).
pub const TLS_MAX_RECORD_READ: usize = 16 * 1024 + 256;
/// The ChangeCipherSpec record a fake-TLS client sends before its first application data.
pub(crate) const TLS_CCS: [u8; 6] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
/// Most attempts at drawing an init that avoids the forbidden prefixes (each try fails with
/// probability about 2^-8, so a working RNG never comes close).
const MAX_INIT_TRIES: usize = 64;

/// Whether `init` starts like something the server would read as another protocol
/// ("the first byte must not be 0xef; the first int must not be HEAD, POST, GET , OPTI,
/// 0x02010316, 0xdddddddd, 0xeeeeeeee; bytes 4..8 must not be zero"). Ours also avoid every
/// TLS handshake record start `16 03 01 02..=3f` (longer fake-TLS ClientHellos exist now).
pub fn is_forbidden_init(init: &[u8; INIT_LEN]) -> bool {
    let first = [init[0], init[1], init[2], init[3]];
    let second = [init[4], init[5], init[6], init[7]];
    init[0] == 0xef
        || matches!(
            &first,
            b"HEAD"
                | b"POST"
                | b"GET "
                | b"OPTI"
                | [0x16, 0x03, 0x01, 0x02..=0x3f]
                | [0xdd, 0xdd, 0xdd, 0xdd]
                | [0xee, 0xee, 0xee, 0xee]
        )
        || second == [0; 4]
}

/// Draws an init avoiding the forbidden prefixes, with `tag` at 56..60 and `dc_id` (if given)
/// at 60..62 as a little-endian i16.
pub fn generate_init<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    tag: [u8; 4],
    dc_id: Option<i16>,
) -> Result<[u8; INIT_LEN], EncodeError> {
    let mut init = [0u8; INIT_LEN];
    for _ in 0..MAX_INIT_TRIES {
        rng.fill_bytes(&mut init);
        init[56..60].copy_from_slice(&tag);
        if let Some(dc) = dc_id {
            init[60..62].copy_from_slice(&dc.to_le_bytes());
        }
        if !is_forbidden_init(&init) {
            return Ok(init);
        }
    }
    init.zeroize();
    Err(EncodeError::RngFailure)
}

/// Key = bytes 8..40 of `src`, hashed with the secret if any (SHA256(key ‖ secret)); IV = 40..56.
fn cipher(src: &[u8; INIT_LEN], secret: Option<&[u8; 16]>) -> AesCtr {
    let mut key = [0u8; 32];
    key.copy_from_slice(&src[8..40]);
    if let Some(s) = secret {
        let mut h = Sha256::new();
        h.update(key);
        h.update(s);
        key = h.finalize().into();
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&src[40..56]);
    let c = AesCtr::new(&key.into(), &iv.into());
    key.zeroize();
    iv.zeroize();
    c
}

fn reversed(init: &[u8; INIT_LEN]) -> [u8; INIT_LEN] {
    let mut r = *init;
    r.reverse();
    r
}

/// Server side of an init: the framing and DC id it announces and the (encrypt, decrypt)
/// ciphers, the decrypt one already past the init. `None` if the identifier is unknown.
fn accept_init(
    init: &[u8; INIT_LEN],
    secret: Option<&[u8; 16]>,
) -> Option<(Framing, i16, AesCtr, AesCtr)> {
    // The client encrypts with the key from the primary init; we decrypt with it.
    let mut dec = cipher(init, secret);
    let mut plain = *init;
    dec.apply_keystream(&mut plain);
    let framing = Framing::from_obfuscation_tag([plain[56], plain[57], plain[58], plain[59]]);
    let dc = i16::from_le_bytes([plain[60], plain[61]]);
    plain.zeroize();
    let mut rev = reversed(init);
    let enc = cipher(&rev, secret);
    rev.zeroize();
    Some((framing?, dc, enc, dec))
}

/// Fake-TLS record framing around the obfuscated stream.
#[derive(Debug)]
struct TlsLayer {
    role: Role,
    header: [u8; 5],
    header_len: usize,
    /// Payload bytes left in the current record.
    remaining: usize,
    /// The current record is the ChangeCipherSpec (one byte to check and drop).
    in_ccs: bool,
    /// Server: the client's ChangeCipherSpec may still come.
    ccs_allowed: bool,
    /// Client: the first record still needs the ChangeCipherSpec in front.
    ccs_pending: bool,
}

impl TlsLayer {
    fn new(role: Role) -> Self {
        Self {
            role,
            header: [0; 5],
            header_len: 0,
            remaining: 0,
            in_ccs: false,
            ccs_allowed: role == Role::Server,
            ccs_pending: role == Role::Client,
        }
    }

    /// Consumes record-header bytes; returns how many.
    fn read_header(&mut self, input: &[u8]) -> Result<usize, TransportError> {
        let free = self
            .header
            .get_mut(self.header_len..)
            .ok_or(TransportError::BadTlsRecord)?;
        let take = free.len().min(input.len());
        let dst = free.get_mut(..take).ok_or(TransportError::BadTlsRecord)?;
        dst.copy_from_slice(input.get(..take).ok_or(TransportError::BadTlsRecord)?);
        self.header_len = self.header_len.saturating_add(take); // <= 5: take <= the free room
        if self.header_len < 5 {
            return Ok(take);
        }
        self.header_len = 0;
        let [ty, v0, v1, l0, l1] = self.header;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        match (ty, v0, v1) {
            (0x14, 3, 3) if self.ccs_allowed && len == 1 => {
                self.ccs_allowed = false;
                self.in_ccs = true;
            }
            (0x17, 3, 3) if len <= TLS_MAX_RECORD_READ => self.ccs_allowed = false,
            _ => return Err(TransportError::BadTlsRecord),
        }
        self.remaining = len;
        Ok(take)
    }

    /// Wraps `data` in application-data records of at most [`TLS_MAX_RECORD_WRITE`] bytes.
    fn write(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.ccs_pending && self.role == Role::Client {
            out.extend_from_slice(&TLS_CCS);
        }
        self.ccs_pending = false;
        for chunk in data.chunks(TLS_MAX_RECORD_WRITE) {
            out.extend_from_slice(&[0x17, 0x03, 0x03]);
            // chunk.len() <= TLS_MAX_RECORD_WRITE, which fits a u16 (asserted at compile time).
            let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(chunk);
        }
    }
}

enum State {
    /// Server: waiting for the 64-byte init (fake TLS, or a server told the stream is obfuscated).
    AwaitingInit {
        secret: Option<[u8; 16]>,
        init: Vec<u8>,
    },
    /// Keys established.
    Ready {
        codec: Codec,
        /// (encrypt, decrypt), boxed: two AES-256 key schedules are large.
        ciphers: Box<(AesCtr, AesCtr)>,
    },
}

impl Drop for State {
    fn drop(&mut self) {
        if let State::AwaitingInit { secret, init } = self {
            secret.zeroize();
            init.zeroize();
        }
    }
}

/// An obfuscated2 codec (optionally MTProxy, optionally fake-TLS) around a [`Codec`].
///
/// A client writes its 64-byte init in front of the first encoded frame. Key material is never
/// shown by `Debug`.
pub struct ObfuscatedCodec {
    role: Role,
    state: State,
    max_frame_len: usize,
    /// Client: the init still to be written.
    init_pending: Option<[u8; INIT_LEN]>,
    tls: Option<TlsLayer>,
    dc_id: Option<i16>,
    scratch: Vec<u8>,
    poisoned: Option<TransportError>,
}

impl core::fmt::Debug for ObfuscatedCodec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ObfuscatedCodec")
            .field("role", &self.role)
            .field("framing", &self.framing())
            .field("fake_tls", &self.tls.is_some())
            .field("dc_id", &self.dc_id)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Drop for ObfuscatedCodec {
    fn drop(&mut self) {
        self.init_pending.zeroize();
    }
}

impl ObfuscatedCodec {
    /// A client codec. `dc_id` is written at offset 60 when given (required by MTProxies: the DC
    /// number, +10000 for test DCs, negative for media DCs). A secret hashes the keys (MTProxy);
    /// any prefixed secret forces [`Framing::PaddedIntermediate`] whatever `framing` says. `ee`
    /// secrets need [`super::FakeTlsClient`] instead. The full framing cannot be obfuscated.
    pub fn client<R: rand_core::CryptoRng + ?Sized>(
        framing: Framing,
        dc_id: Option<i16>,
        secret: Option<&ProxySecret>,
        rng: &mut R,
    ) -> Result<Self, EncodeError> {
        if secret.is_some_and(ProxySecret::is_fake_tls) {
            return Err(EncodeError::NeedsFakeTlsHandshake);
        }
        Self::client_inner(framing, dc_id, secret, false, rng)
    }

    pub(crate) fn client_inner<R: rand_core::CryptoRng + ?Sized>(
        framing: Framing,
        dc_id: Option<i16>,
        secret: Option<&ProxySecret>,
        tls: bool,
        rng: &mut R,
    ) -> Result<Self, EncodeError> {
        let framing = if secret.is_some_and(ProxySecret::forces_padded) {
            Framing::PaddedIntermediate
        } else {
            framing
        };
        let tag = framing
            .obfuscation_tag()
            .ok_or(EncodeError::UnsupportedFraming)?;
        let key = secret.map(ProxySecret::key);
        let init = generate_init(rng, tag, dc_id)?;
        let mut enc = cipher(&init, key);
        let mut rev = reversed(&init);
        let dec = cipher(&rev, key);
        rev.zeroize();
        // "The first thing that must be encrypted using the encryption key is the init itself.
        // Then bytes 56-64 of the encrypted init are substituted in the original init."
        let mut encrypted = init;
        enc.apply_keystream(&mut encrypted);
        let mut sent = init;
        sent[56..].copy_from_slice(&encrypted[56..]);
        encrypted.zeroize();
        Ok(Self {
            role: Role::Client,
            state: State::Ready {
                codec: Codec::without_tag(framing, Role::Client),
                ciphers: Box::new((enc, dec)),
            },
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            init_pending: Some(sent),
            tls: tls.then(|| TlsLayer::new(Role::Client)),
            dc_id,
            scratch: Vec::new(),
            poisoned: None,
        })
    }

    /// A server codec for a stream known to be obfuscated (with `secret` for an MTProxy); it reads
    /// the init first. The framing comes from the init.
    pub fn server(secret: Option<&ProxySecret>) -> Self {
        Self::server_inner(secret, false)
    }

    /// A server codec for the TLS records that follow a fake-TLS handshake the caller completed
    /// itself ([`check_client_hello`](super::faketls::check_client_hello), then
    /// [`build_server_hello`](super::faketls::build_server_hello) sent back); it reads the
    /// client's ChangeCipherSpec and the init inside the first records. What
    /// [`Detector`](super::Detector) hands out after a valid ClientHello.
    pub fn server_fake_tls(secret: &ProxySecret) -> Self {
        Self::server_inner(Some(secret), true)
    }

    pub(crate) fn server_inner(secret: Option<&ProxySecret>, tls: bool) -> Self {
        Self {
            role: Role::Server,
            state: State::AwaitingInit {
                secret: secret.map(|s| *s.key()),
                init: Vec::with_capacity(INIT_LEN),
            },
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            init_pending: None,
            tls: tls.then(|| TlsLayer::new(Role::Server)),
            dc_id: None,
            scratch: Vec::new(),
            poisoned: None,
        }
    }

    /// A server codec from a complete init, if `secret` (or no secret) decrypts it to a known
    /// protocol identifier.
    pub fn server_from_init(
        init: &[u8; INIT_LEN],
        secret: Option<&ProxySecret>,
    ) -> Result<Self, TransportError> {
        let (framing, dc, enc, dec) = accept_init(init, secret.map(ProxySecret::key))
            .ok_or(TransportError::BadObfuscationInit)?;
        Ok(Self {
            role: Role::Server,
            state: State::Ready {
                codec: Codec::without_tag(framing, Role::Server),
                ciphers: Box::new((enc, dec)),
            },
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            init_pending: None,
            tls: None,
            dc_id: Some(dc),
            scratch: Vec::new(),
            poisoned: None,
        })
    }

    /// Sets the largest payload the decoder accepts (default [`DEFAULT_MAX_FRAME_LEN`]).
    #[must_use]
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        if let State::Ready { codec, .. } = &mut self.state {
            codec.set_max_frame_len(max);
        }
        self
    }

    /// The framing, once known (a server learns it from the init).
    pub fn framing(&self) -> Option<Framing> {
        match &self.state {
            State::Ready { codec, .. } => Some(codec.framing()),
            State::AwaitingInit { .. } => None,
        }
    }

    /// The DC id: what a client put at offset 60, or what a server read there (meaningful only
    /// for MTProxy connections; random otherwise). `None` for a server before the init.
    pub fn dc_id(&self) -> Option<i16> {
        self.dc_id
    }

    /// Whether the stream travels in fake-TLS records.
    pub fn is_fake_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Bytes buffered by the decoder.
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Ready { codec, .. } => codec.buffered(),
            State::AwaitingInit { init, .. } => init.len(),
        }
    }

    /// Decodes at most one frame from `input`, decrypting in place as bytes are buffered. Same
    /// contract as [`Codec::decode`].
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<Frame<'_>>), TransportError> {
        match self.decode_step(input)? {
            (n, false) => Ok((n, Status::Partial)),
            (n, true) => Ok((n, self.take_frame())),
        }
    }

    /// [`decode`](Self::decode) in two steps, for a wrapping layer that loops: whether a frame
    /// is complete (then [`take_frame`](Self::take_frame) has it).
    pub(crate) fn decode_step(&mut self, input: &[u8]) -> Result<(usize, bool), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        self.decode_loop(input)
            .inspect_err(|&e| self.poisoned = Some(e))
    }

    /// The frame completed by the last [`decode_step`](Self::decode_step).
    pub(crate) fn take_frame(&self) -> Status<Frame<'_>> {
        match &self.state {
            State::Ready { codec, .. } => codec.take_frame(),
            State::AwaitingInit { .. } => Status::Partial,
        }
    }

    fn decode_loop(&mut self, input: &[u8]) -> Result<(usize, bool), TransportError> {
        let mut consumed = 0usize;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            let chunk_len = match &mut self.tls {
                None => rest.len(),
                Some(tls) => {
                    if rest.is_empty() {
                        return Ok((consumed, false));
                    }
                    if tls.remaining == 0 {
                        // Each step consumes at most rest.len(): consumed <= input.len().
                        consumed = consumed.saturating_add(tls.read_header(rest)?);
                        continue;
                    }
                    if tls.in_ccs {
                        if rest.first() != Some(&1) {
                            return Err(TransportError::BadTlsRecord);
                        }
                        tls.in_ccs = false;
                        tls.remaining = 0;
                        consumed = consumed.saturating_add(1);
                        continue;
                    }
                    tls.remaining.min(rest.len())
                }
            };
            let chunk = rest.get(..chunk_len).unwrap_or_default();
            if chunk.is_empty() {
                return Ok((consumed, false));
            }
            let (used, done) = match &mut self.state {
                State::AwaitingInit { init, .. } => {
                    let take = INIT_LEN.saturating_sub(init.len()).min(chunk.len());
                    init.extend_from_slice(chunk.get(..take).unwrap_or_default());
                    (take, false)
                }
                State::Ready { codec, ciphers } => {
                    let dec = &mut ciphers.1;
                    codec.decode_with(chunk, &mut |b| dec.apply_keystream(b))?
                }
            };
            consumed = consumed.saturating_add(used);
            if let Some(tls) = &mut self.tls {
                tls.remaining = tls.remaining.saturating_sub(used);
            }
            self.finish_init()?;
            if done {
                return Ok((consumed, true));
            }
        }
    }

    /// Server: once the 64 init bytes are in, derive the keys.
    fn finish_init(&mut self) -> Result<(), TransportError> {
        let State::AwaitingInit { secret, init } = &self.state else {
            return Ok(());
        };
        let Ok(bytes) = <[u8; INIT_LEN]>::try_from(init.as_slice()) else {
            return Ok(());
        };
        let (framing, dc, enc, dec) =
            accept_init(&bytes, secret.as_ref()).ok_or(TransportError::BadObfuscationInit)?;
        self.dc_id = Some(dc);
        self.state = State::Ready {
            codec: Codec::without_tag(framing, Role::Server).with_max_frame_len(self.max_frame_len),
            ciphers: Box::new((enc, dec)),
        };
        Ok(())
    }

    /// Encodes one payload (client: optionally requesting a quick ack) into `out`, encrypted; a
    /// client's first call writes the init first.
    pub fn encode<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.encode_with(out, |codec, buf| codec.encode(payload, quick_ack, rng, buf))
    }

    /// Server: encodes a quick-ack token (see [`Codec::encode_quick_ack`]).
    pub fn encode_quick_ack<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        token: QuickAckToken,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.encode_with(out, |codec, buf| codec.encode_quick_ack(token, rng, buf))
    }

    /// Server: encodes a transport error (see [`Codec::encode_transport_error`]).
    pub fn encode_transport_error<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        code: i32,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.encode_with(out, |codec, buf| {
            codec.encode_transport_error(code, rng, buf)
        })
    }

    fn encode_with(
        &mut self,
        out: &mut Vec<u8>,
        f: impl FnOnce(&mut Codec, &mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let State::Ready { codec, ciphers } = &mut self.state else {
            return Err(EncodeError::NotReady);
        };
        let buf: &mut Vec<u8> = if self.tls.is_some() {
            self.scratch.clear();
            &mut self.scratch
        } else {
            &mut *out
        };
        let mark = buf.len();
        if let Some(init) = &self.init_pending {
            buf.extend_from_slice(init);
        }
        let body = buf.len();
        if let Err(e) = f(codec, buf) {
            buf.truncate(mark);
            return Err(e);
        }
        if let Some(tail) = buf.get_mut(body..) {
            ciphers.0.apply_keystream(tail);
        }
        self.init_pending = None;
        if let Some(tls) = &mut self.tls {
            tls.write(&self.scratch, out);
        }
        Ok(())
    }
}

//! MTProto transports (`mtproto_mtproto-transports.md`): framings, quick ack, transport errors,
//! obfuscation and MTProxy. Incremental, sans-IO, both roles.
//!
//! Layers, bottom up (each one is a byte-stream transform the caller never sees):
//! - [`faketls`]: MTProxy fake-TLS (`ee` secrets): the ClientHello / ServerHello exchange and
//!   TLS application-data records around the obfuscated stream;
//! - [`obfuscated`]: obfuscated2, AES-256-CTR over the whole stream after a 64-byte init, with or
//!   without an MTProxy [`ProxySecret`];
//! - [`websocket`]: RFC 6455 WebSocket (upgrade and frames) around the obfuscated stream
//!   (`mtproto_transports.md`, "WebSocket"; obfuscation is mandatory there);
//! - [`framing`]: abridged, intermediate, padded intermediate and full framings ([`Codec`]).
//!
//! [`http`] is the HTTP transport: no stream, one MTProto packet per HTTP body.
//!
//! Every decoder has the same shape: `decode(&mut self, input) -> Result<(usize, Status<Frame>), _>`.
//! It consumes a prefix of `input` (the returned count) and either completes one [`Frame`] or
//! answers [`Status::Partial`] after consuming all of `input`, which is never an error. A frame
//! whose declared length exceeds the configured maximum is rejected from its header, before its
//! body is buffered. After an error a decoder is poisoned: the stream is out of sync and every
//! later call returns the same error. The usual loop:
//!
//! ```
//! # use mtproto_core::transport::{Codec, Framing, Role, Status, Frame, TransportError};
//! # fn run(codec: &mut Codec, mut input: &[u8]) -> Result<(), TransportError> {
//! loop {
//!     let (n, status) = codec.decode(input)?;
//!     input = input.get(n..).unwrap_or_default();
//!     match status {
//!         Status::Complete(Frame::Payload { data, .. }) => { let _ = data; /* hand to the session */ }
//!         Status::Complete(_) => { /* quick ack, transport error */ }
//!         Status::Partial => break, // all input consumed: read more from the socket
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Encoders append to a caller `Vec<u8>`; padding and obfuscation bytes come from the caller's
//! RNG, so the same seed and payloads give the same bytes.
//!
//! [`detect::Detector`] is the server-side entry point: it recognises the client's transport from
//! its first bytes and hands back the matching [`Transport`].
//!
//! No panics from the wire: indexing, unchecked arithmetic and lossy casts are denied in
//! this module (tests excepted); lengths from the peer go through `get`/`checked_*`/`try_from`.

use alloc::vec::Vec;
use core::fmt;

pub mod detect;
pub mod faketls;
pub mod framing;
pub mod http;
pub mod obfuscated;
pub mod secret;
pub mod websocket;

pub use detect::{Detected, Detector, ServerConfig};
pub use faketls::{ClientHelloTemplate, FakeTlsClient, HelloOp};
pub use framing::Codec;
pub use http::{HttpRequestId, HttpResponse, HttpWaitConfig};
pub use obfuscated::ObfuscatedCodec;
pub use secret::{ProxySecret, SecretKind, SecretParseError};
pub use websocket::{WsCodec, WsError, WsFraming, WsServerMode, WsTransport};

/// Default maximum payload length a decoder accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Result of an incremental decoding step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// A complete item was decoded.
    Complete(T),
    /// Not enough bytes yet: all the input was consumed and buffered. Not an error.
    Partial,
}

/// Which side of the connection a codec plays. Framings are asymmetric: only clients send the
/// protocol tag and request quick acks; only servers send quick-ack tokens and transport errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The connecting side (sends the protocol tag / obfuscation init).
    Client,
    /// The accepting side.
    Server,
}

/// An MTProto transport protocol (framing), `mtproto_mtproto-transports.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Abridged: tag `0xef`, 1-byte or `0x7f` + 3-byte length in 4-byte words.
    Abridged,
    /// Intermediate: tag `0xeeeeeeee`, 4-byte little-endian length.
    Intermediate,
    /// Padded intermediate: tag `0xdddddddd`, 4-byte length, 0..=15 random padding bytes (our
    /// server role sends 0..=3, like MTProxy, for clients that only drop `len % 4` bytes). The
    /// decoder removes the padding itself: [`Frame::Payload`] holds the MTProto message only.
    PaddedIntermediate,
    /// Full: length, TCP sequence number, payload, CRC32; no tag.
    Full,
}

impl Framing {
    /// The 4-byte protocol identifier as placed at offset 56 of an obfuscation init (the 1-byte
    /// abridged tag repeated). `None` for the full transport, which has no identifier.
    pub const fn obfuscation_tag(self) -> Option<[u8; 4]> {
        match self {
            Framing::Abridged => Some([0xef; 4]),
            Framing::Intermediate => Some([0xee; 4]),
            Framing::PaddedIntermediate => Some([0xdd; 4]),
            Framing::Full => None,
        }
    }

    /// The framing announced by an obfuscation protocol identifier.
    pub const fn from_obfuscation_tag(tag: [u8; 4]) -> Option<Self> {
        match tag {
            [0xef, 0xef, 0xef, 0xef] => Some(Framing::Abridged),
            [0xee, 0xee, 0xee, 0xee] => Some(Framing::Intermediate),
            [0xdd, 0xdd, 0xdd, 0xdd] => Some(Framing::PaddedIntermediate),
            _ => None,
        }
    }
}

/// A quick-ack token: a little-endian `u32` whose most significant bit is set.
///
/// The token itself is computed by the crypto layer (the first 32 bits of the msg_key SHA-256,
/// `mtproto_mtproto-transports.md`, "Quick ack"); transports only carry it. It stays `u32`
/// (unlike the TL `long`/`int` protocol fields, which are `i64`/`i32`): it is 32 hash bits with
/// a flag bit, never a TL integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuickAckToken(u32);

impl QuickAckToken {
    /// A token from its 32-bit value; the most significant bit is forced to 1 as the spec requires.
    pub const fn new(value: u32) -> Self {
        Self(value | 0x8000_0000)
    }
    /// A token from the first four bytes of the msg_key SHA-256 (read little-endian, MSB set).
    pub const fn from_hash_prefix(prefix: [u8; 4]) -> Self {
        Self::new(u32::from_le_bytes(prefix))
    }
    /// The token value (MSB always set).
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// One decoded transport event. `data` borrows the decoder's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An MTProto payload.
    Payload {
        /// The payload bytes, exactly as the peer framed them: with the padded intermediate
        /// framing the 0..=15 random padding bytes are already removed, using the length the
        /// MTProto message declares (plain messages carry `message_data_length`; an encrypted
        /// one is its 24-byte header plus whole AES blocks), so a driver never looks at the
        /// framing. Bytes that are not an MTProto message keep their whole 4-byte words.
        data: &'a [u8],
        /// The client asked for a quick ack of this payload (server role only; always false for
        /// a client).
        quick_ack: bool,
    },
    /// A quick-ack token sent by the server (client role only).
    QuickAck(QuickAckToken),
    /// A transport error: a negative little-endian int32 such as -404, -429 or -444, either
    /// framed as a 4-byte payload (client role only: the server sends them) or bare, without
    /// framing, where a frame would start (either role; Telegram has been seen sending them so).
    /// A bare code is recognised in the full and padded framings and by an intermediate server
    /// for any code in -65535..=-1, and only for [`framing::KNOWN_TRANSPORT_ERRORS`] in abridged
    /// and by an intermediate client, where other small negative words are legitimate headers
    /// (see `framing.rs`). A bare code consumes its 4 bytes; decoding continues after it.
    TransportError(i32),
}

/// A decoding failure. The stream is out of sync after any of these; the decoder is poisoned.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A frame declared a length above the configured maximum (checked before buffering).
    FrameTooLarge {
        /// Declared payload length in bytes.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A length field is impossible for this framing (e.g. full-transport length below 12).
    InvalidLength(u32),
    /// A frame declared a payload length that is not a multiple of 4 (MTProto payloads are
    /// whole words). Abridged cannot express one; padded intermediate lengths include padding.
    Unaligned(usize),
    /// The protocol tag sent by the client is not the one of this framing.
    BadTag,
    /// Full transport: the TCP sequence number is not the expected one.
    SeqMismatch {
        /// The sequence number we expected.
        expected: u32,
        /// The sequence number received.
        got: u32,
    },
    /// Full transport: the CRC32 does not match.
    BadCrc {
        /// The CRC32 computed over length, seqno and payload.
        expected: u32,
        /// The CRC32 the frame carried.
        got: u32,
    },
    /// Obfuscation: the decrypted init does not carry a known protocol identifier (wrong secret,
    /// or not an obfuscated stream).
    BadObfuscationInit,
    /// The first bytes match no transport this server accepts.
    UnknownTransport,
    /// The first bytes look like an HTTP request; the HTTP transport is not implemented.
    HttpNotSupported,
    /// Fake TLS: a record header or handshake message is malformed.
    BadTlsRecord,
    /// Fake TLS: the ClientHello digest matches none of the configured secrets.
    BadTlsDigest,
    /// Fake TLS: the ClientHello timestamp is outside the accepted window.
    TlsTimestampOutOfWindow,
    /// Fake TLS: the ServerHello HMAC does not match.
    BadServerHelloDigest,
    /// WebSocket: the upgrade or a frame is invalid, or the peer closed.
    WebSocket(WsError),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            TransportError::InvalidLength(l) => write!(f, "invalid frame length field {l:#x}"),
            TransportError::Unaligned(l) => {
                write!(f, "frame payload length {l} is not a multiple of 4")
            }
            TransportError::BadTag => f.write_str("wrong transport protocol tag"),
            TransportError::SeqMismatch { expected, got } => {
                write!(f, "full transport seqno {got}, expected {expected}")
            }
            TransportError::BadCrc { expected, got } => {
                write!(
                    f,
                    "full transport CRC32 {got:#010x}, expected {expected:#010x}"
                )
            }
            TransportError::BadObfuscationInit => f.write_str("invalid obfuscation init"),
            TransportError::UnknownTransport => f.write_str("unrecognised transport"),
            TransportError::HttpNotSupported => f.write_str("HTTP transport not supported"),
            TransportError::BadTlsRecord => f.write_str("malformed fake-TLS record"),
            TransportError::BadTlsDigest => f.write_str("fake-TLS ClientHello digest mismatch"),
            TransportError::TlsTimestampOutOfWindow => {
                f.write_str("fake-TLS ClientHello timestamp out of window")
            }
            TransportError::BadServerHelloDigest => {
                f.write_str("fake-TLS ServerHello digest mismatch")
            }
            TransportError::WebSocket(e) => write!(f, "WebSocket: {e}"),
        }
    }
}

impl core::error::Error for TransportError {}

/// An encoding failure; nothing was written to the output buffer.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload length is not a multiple of 4 (MTProto payloads are whole words; refused by
    /// every framing).
    Unaligned(usize),
    /// The payload is too long for the framing's length field.
    TooLarge(usize),
    /// The full transport has no quick-ack encoding.
    QuickAckUnsupported,
    /// The operation belongs to the other role (e.g. a client sending a quick-ack token).
    WrongRole,
    /// A transport error code must be negative.
    NotAnError(i32),
    /// The framing cannot be obfuscated (the full transport has no protocol identifier).
    UnsupportedFraming,
    /// An `ee` (fake-TLS) secret needs the [`FakeTlsClient`] handshake first.
    NeedsFakeTlsHandshake,
    /// The fake-TLS domain is empty or too long.
    BadDomain,
    /// The fake-TLS ClientHello template does not produce a usable hello.
    BadHelloTemplate(faketls::HelloTemplateError),
    /// A server codec cannot send before the client's obfuscation init arrived.
    NotReady,
    /// The RNG kept producing forbidden obfuscation inits (it is broken).
    RngFailure,
    /// WebSocket: the host or path is not visible ASCII (or the path does not start with
    /// `/`), or the configuration cannot go over WebSocket (fake TLS).
    BadWebSocketTarget,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Unaligned(n) => {
                write!(f, "payload length {n} is not a multiple of 4")
            }
            EncodeError::TooLarge(n) => write!(f, "payload of {n} bytes too large for the framing"),
            EncodeError::QuickAckUnsupported => {
                f.write_str("quick ack unsupported by the full transport")
            }
            EncodeError::WrongRole => f.write_str("operation not available in this role"),
            EncodeError::NotAnError(c) => write!(f, "transport error code {c} is not negative"),
            EncodeError::UnsupportedFraming => f.write_str("framing cannot be obfuscated"),
            EncodeError::NeedsFakeTlsHandshake => {
                f.write_str("fake-TLS secret needs the TLS handshake")
            }
            EncodeError::BadDomain => f.write_str("invalid fake-TLS domain"),
            EncodeError::BadHelloTemplate(e) => write!(f, "fake-TLS ClientHello template: {e}"),
            EncodeError::NotReady => f.write_str("obfuscation init not received yet"),
            EncodeError::RngFailure => f.write_str("RNG produced only forbidden obfuscation inits"),
            EncodeError::BadWebSocketTarget => f.write_str("invalid WebSocket host, path or setup"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Moves bytes from `input[*consumed..]` to the end of `buf` until `buf` holds `need` bytes or the
/// input runs out, advancing `consumed` (never past `input.len()`). Returns the bytes just appended:
/// empty means the input is exhausted and the decoder answers [`Status::Partial`]. The one buffering
/// step of every incremental decoder here, so none can buffer past what its header asked for.
pub(crate) fn fill_to<'b>(
    buf: &'b mut Vec<u8>,
    need: usize,
    input: &[u8],
    consumed: &mut usize,
) -> &'b mut [u8] {
    let rest = input.get(*consumed..).unwrap_or_default();
    let take = need.saturating_sub(buf.len()).min(rest.len());
    let start = buf.len();
    buf.extend_from_slice(rest.get(..take).unwrap_or_default());
    *consumed = consumed.saturating_add(take); // <= input.len()
    buf.get_mut(start..).unwrap_or_default()
}

/// Either a plain framing or an obfuscated one: what [`detect::Detector`] hands back, and a
/// convenient single type for drivers.
#[derive(Debug)]
pub enum Transport {
    /// A plain framing.
    Plain(Codec),
    /// An obfuscated framing (optionally MTProxy, optionally fake-TLS).
    Obfuscated(ObfuscatedCodec),
    /// An obfuscated framing inside WebSocket frames, after an HTTP upgrade. It has output of
    /// its own (the upgrade, pongs): see [`Transport::poll_output`].
    WebSocket(alloc::boxed::Box<WsTransport>),
}

impl Transport {
    /// Decodes at most one frame from `input`; see the [module docs](self).
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<Frame<'_>>), TransportError> {
        match self {
            Transport::Plain(c) => c.decode(input),
            Transport::Obfuscated(c) => c.decode(input),
            Transport::WebSocket(c) => c.decode(input),
        }
    }

    /// Encodes one payload (client: optionally requesting a quick ack) into `out`.
    pub fn encode<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Transport::Plain(c) => c.encode(payload, quick_ack, rng, out),
            Transport::Obfuscated(c) => c.encode(payload, quick_ack, rng, out),
            Transport::WebSocket(c) => c.encode(payload, quick_ack, rng, out),
        }
    }

    /// Server: encodes a quick-ack token into `out`.
    pub fn encode_quick_ack<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        token: QuickAckToken,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Transport::Plain(c) => c.encode_quick_ack(token, rng, out),
            Transport::Obfuscated(c) => c.encode_quick_ack(token, rng, out),
            Transport::WebSocket(c) => c.encode_quick_ack(token, rng, out),
        }
    }

    /// Server: encodes a transport error (a negative code such as -404) into `out`.
    pub fn encode_transport_error<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        code: i32,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Transport::Plain(c) => c.encode_transport_error(code, rng, out),
            Transport::Obfuscated(c) => c.encode_transport_error(code, rng, out),
            Transport::WebSocket(c) => c.encode_transport_error(code, rng, out),
        }
    }

    /// The framing in use (`None` for an obfuscated server stream whose init has not arrived).
    pub fn framing(&self) -> Option<Framing> {
        match self {
            Transport::Plain(c) => Some(c.framing()),
            Transport::Obfuscated(c) => c.framing(),
            Transport::WebSocket(c) => c.framing(),
        }
    }

    /// Appends bytes the transport itself must send (a WebSocket upgrade request or answer,
    /// pong or close answer) to `out`; whether there were any. Always `false` for the TCP
    /// transports. Call it before sending anything else and after every `decode`.
    pub fn poll_output<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> bool {
        match self {
            Transport::WebSocket(c) => c.poll_output(rng, out),
            _ => false,
        }
    }

    /// Whether payloads may be encoded: `false` only while a WebSocket upgrade is under way.
    pub fn is_open(&self) -> bool {
        match self {
            Transport::WebSocket(c) => c.is_open(),
            _ => true,
        }
    }
}

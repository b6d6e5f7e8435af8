//! The WebSocket transport (`mtproto_transports.md`, "WebSocket"): the MTProto byte stream,
//! obfuscated (mandatory), carried in the binary messages of an RFC 6455 WebSocket.
//!
//! Message boundaries do not matter: the payloads of all received data frames form one byte
//! stream for the obfuscated decoder, and every encoded MTProto frame goes out as one binary
//! WebSocket frame. The handshake asks for the subprotocol `binary`. A close frame carries code
//! 1000 and, as its reason, a decimal error code, possibly space-padded (read here into a
//! transport error).
//!
//! Three layers, usable apart:
//! - [`WsClientHandshake`] / [`WsServerHandshake`]: the HTTP/1.1 upgrade, incremental, with a
//!   bounded header block ([`MAX_UPGRADE_HEADER`]) and typed failures;
//! - [`WsCodec`]: the RFC 6455 frame codec of one role (clients mask, servers do not), with
//!   fragmentation, ping → pong, close → close, and a payload cap;
//! - [`WsTransport`]: both above around an [`ObfuscatedCodec`], with the same
//!   `decode`/`encode` shape as every transport here ([`super::Transport::WebSocket`]).
//!
//! Where something else does the WebSocket part (a browser, `tungstenite`), feed the message
//! payloads to a plain [`ObfuscatedCodec`] instead ([`WsFraming::External`]).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sha1::{Digest, Sha1};

use super::detect::{ServerConfig, obfuscated_from_init};
use super::obfuscated::{INIT_LEN, ObfuscatedCodec};
use super::{
    DEFAULT_MAX_FRAME_LEN, EncodeError, Frame, Framing, QuickAckToken, Role, Status, TransportError,
};

/// The GUID of RFC 6455 §1.3, appended to the key before hashing it into the accept value.
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest HTTP header block (request or response, including the blank line) accepted.
pub const MAX_UPGRADE_HEADER: usize = 8 * 1024;
/// Most header fields parsed in an upgrade request or response.
pub const MAX_UPGRADE_HEADERS: usize = 64;
/// Largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// The subprotocol the spec requires.
pub const SUBPROTOCOL: &str = "binary";
/// The close code the spec says is always used (normal closure).
pub const CLOSE_NORMAL: u16 = 1000;
/// Room a [`WsTransport`] allows in one data frame beyond its MTProto frame cap (the obfuscation
/// init, a framing header and padding travel in the same message).
pub const FRAME_SLACK: usize = 1024;
/// Payload bytes a [`WsTransport`] unmasks ahead of the inner decoder at most.
const STAGE_CHUNK: usize = 16 * 1024;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// How a client connection gets its WebSocket ([`crate::connection::TransportConfig`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WsFraming {
    /// The core does the upgrade and the framing ([`WsTransport`]): a plain TCP (or TLS) socket
    /// to `host`, request target `path` (Telegram: `/apiws`, `/apiws_test` for test DCs).
    Codec {
        /// The `Host` header value (e.g. `venus.web.telegram.org` or `149.154.167.51:80`).
        host: String,
        /// The request target, starting with `/`.
        path: String,
    },
    /// The driver (a browser, `tungstenite`) does the upgrade, with the subprotocol `binary`,
    /// and the framing; the connection sees the concatenated message payloads and only enforces
    /// obfuscation.
    External,
}

/// How a server accepts WebSocket connections ([`super::Detector::with_websocket`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum WsServerMode {
    /// No WebSocket: an input starting with `GET ` is refused (the default).
    #[default]
    Off,
    /// Accept an upgrade (input starting `GET `) besides the TCP transports, answer `101` and
    /// read the obfuscated stream inside the frames ([`WsTransport::server`]).
    Codec {
        /// The only request path accepted (others get `404`); `None` accepts any.
        path: Option<String>,
    },
    /// The driver (e.g. `tungstenite`) did the upgrade and strips the framing: the stream is the
    /// concatenated message payloads, and only obfuscated2 is accepted (no plain framings, no
    /// fake TLS, no HTTP).
    External,
}

/// A WebSocket failure, inside [`TransportError::WebSocket`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsError {
    /// The upgrade's header block exceeds [`MAX_UPGRADE_HEADER`] bytes.
    HeaderTooLarge,
    /// The upgrade request or response is not valid HTTP/1.1 (or has a line ending in a bare
    /// LF: only CRLF is accepted).
    BadHttp,
    /// Server: the request method is not `GET` (answered 400).
    BadMethod,
    /// Server: the request path is not the configured one (answered 404).
    PathNotFound,
    /// Client: the server answered with this status instead of 101.
    Status(u16),
    /// `Upgrade: websocket` or `Connection: Upgrade` is missing (or `Host`, in a request).
    NotAnUpgrade,
    /// Server: `Sec-WebSocket-Version` is not 13.
    BadVersion,
    /// Server: `Sec-WebSocket-Key` is missing, repeated, or not 16 bytes in base64.
    BadKey,
    /// Client: `Sec-WebSocket-Accept` is missing, repeated or wrong.
    BadAccept,
    /// Server: the client does not offer the `binary` subprotocol; client: the server chose
    /// another one.
    NoBinaryProtocol,
    /// Client: the server enabled an extension that was not offered.
    UnexpectedExtension,
    /// A frame's mask bit is wrong for its sender (clients mask, servers do not).
    BadMask,
    /// A reserved bit (RSV1-3) is set; no extension was negotiated.
    ReservedBits,
    /// A reserved opcode.
    BadOpcode(u8),
    /// A text frame: this transport carries binary messages only.
    TextFrame,
    /// A control frame with a payload over 125 bytes.
    ControlTooLarge,
    /// A control frame with FIN clear.
    FragmentedControl,
    /// A continuation frame outside a fragmented message, or a new data frame inside one.
    BadContinuation,
    /// A 64-bit payload length with the most significant bit set.
    BadLength,
    /// An invalid close frame (RFC 6455 §5.5.1, §7.4): a one-byte payload (a code is two), a
    /// code that must not appear on the wire (below 1000, 1004-1006, 1015, 1016-2999, 5000
    /// and up), or a reason that is not UTF-8 (§8.1).
    BadClose,
    /// The WebSocket is closed (the peer's close code, if it sent one); nothing more comes.
    Closed(Option<u16>),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::HeaderTooLarge => write!(f, "upgrade header over {MAX_UPGRADE_HEADER} bytes"),
            WsError::BadHttp => f.write_str("malformed HTTP in the upgrade"),
            WsError::BadMethod => f.write_str("upgrade request is not a GET"),
            WsError::PathNotFound => f.write_str("upgrade request for an unknown path"),
            WsError::Status(s) => write!(f, "server answered the upgrade with status {s}"),
            WsError::NotAnUpgrade => f.write_str("not a WebSocket upgrade"),
            WsError::BadVersion => f.write_str("Sec-WebSocket-Version is not 13"),
            WsError::BadKey => f.write_str("invalid Sec-WebSocket-Key"),
            WsError::BadAccept => f.write_str("invalid Sec-WebSocket-Accept"),
            WsError::NoBinaryProtocol => f.write_str("subprotocol `binary` not agreed"),
            WsError::UnexpectedExtension => f.write_str("unrequested WebSocket extension"),
            WsError::BadMask => f.write_str("frame masking wrong for the sender's role"),
            WsError::ReservedBits => f.write_str("reserved frame bits set"),
            WsError::BadOpcode(o) => write!(f, "reserved opcode {o:#x}"),
            WsError::TextFrame => f.write_str("text frame on a binary transport"),
            WsError::ControlTooLarge => f.write_str("control frame over 125 bytes"),
            WsError::FragmentedControl => f.write_str("fragmented control frame"),
            WsError::BadContinuation => f.write_str("unexpected continuation state"),
            WsError::BadLength => f.write_str("64-bit frame length with the top bit set"),
            WsError::BadClose => f.write_str("invalid close frame (length, code or reason)"),
            WsError::Closed(Some(c)) => write!(f, "WebSocket closed by the peer (code {c})"),
            WsError::Closed(None) => f.write_str("WebSocket closed"),
        }
    }
}

impl From<WsError> for TransportError {
    fn from(e: WsError) -> Self {
        TransportError::WebSocket(e)
    }
}

// ------------------------------------------------------------------------------------ base64

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_char(sextet: u32) -> char {
    char::from(B64.get((sextet & 63) as usize).copied().unwrap_or(b'A'))
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3).saturating_mul(4));
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        s.push(b64_char(n >> 18));
        s.push(b64_char(n >> 12));
        s.push(if chunk.len() > 1 {
            b64_char(n >> 6)
        } else {
            '='
        });
        s.push(if chunk.len() > 2 { b64_char(n) } else { '=' });
    }
    s
}

fn b64_value(c: u8) -> Option<u32> {
    B64.iter()
        .position(|&a| a == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// Decodes a `Sec-WebSocket-Key`: canonical base64 of exactly 16 bytes (24 characters ending
/// `==`, unused bits zero).
pub fn decode_key(text: &[u8]) -> Option<[u8; 16]> {
    let (body, pad) = text.split_at_checked(22)?;
    if pad != b"==" {
        return None;
    }
    let mut out = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut n = 0usize;
    for &c in body {
        acc = ((acc << 6) | b64_value(c)?) & 0x3fff; // at most 14 live bits
        bits = bits.saturating_add(6);
        if bits >= 8 {
            bits = bits.saturating_sub(8);
            *out.get_mut(n)? = u8::try_from((acc >> bits) & 0xff).ok()?;
            n = n.saturating_add(1);
        }
    }
    // 22 sextets = 132 bits: 16 bytes and 4 bits that must be zero.
    (n == 16 && bits == 4 && acc & 0x0f == 0).then_some(out)
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (as sent, base64 text): base64 of
/// SHA-1(key ‖ [`WS_GUID`]).
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(WS_GUID.as_bytes());
    base64_encode(&h.finalize())
}

// ------------------------------------------------------------------------- HTTP header block

/// Collects bytes up to and including the first `\r\n\r\n`, never more, at most
/// [`MAX_UPGRADE_HEADER`] of them. A bare LF is refused: httparse would end the head at
/// `\n\r\n` or `\n\n`, and the frames after it must not be read as header lines.
#[derive(Debug, Default)]
struct HeadReader {
    buf: Vec<u8>,
    matched: usize,
}

impl HeadReader {
    /// Consumes a prefix of `input`; `true` once the blank line is in.
    fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), WsError> {
        const END: &[u8; 4] = b"\r\n\r\n";
        for (i, &b) in input.iter().enumerate() {
            if self.buf.len() >= MAX_UPGRADE_HEADER {
                return Err(WsError::HeaderTooLarge);
            }
            if b == b'\n' && self.buf.last() != Some(&b'\r') {
                return Err(WsError::BadHttp);
            }
            self.buf.push(b);
            self.matched = if END.get(self.matched) == Some(&b) {
                self.matched.saturating_add(1)
            } else {
                usize::from(b == b'\r')
            };
            if self.matched == END.len() {
                return Ok((i.saturating_add(1), true));
            }
        }
        Ok((input.len(), false))
    }
}

fn values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// Whether any `name` field lists `token` (ASCII case-insensitive, comma-separated).
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .any(|h| tokens(h.value).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
}

/// The one `name` field; `None` if absent or repeated.
fn single<'h>(headers: &'h [httparse::Header<'h>], name: &'h str) -> Option<&'h [u8]> {
    let mut it = values(headers, name);
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

fn visible_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

// ------------------------------------------------------------------------------ handshakes

/// The client side of the upgrade: writes the request, then checks the `101` answer.
#[derive(Debug)]
pub struct WsClientHandshake {
    accept: String,
    head: HeadReader,
    poisoned: Option<TransportError>,
}

impl WsClientHandshake {
    /// Writes `GET {path} HTTP/1.1` with `Host: {host}`, `Upgrade: websocket`,
    /// `Connection: Upgrade`, a `Sec-WebSocket-Key` of 16 bytes from `rng`,
    /// `Sec-WebSocket-Version: 13` and `Sec-WebSocket-Protocol: binary` into `out`.
    /// `host` must be visible ASCII; `path` too, starting with `/`
    /// ([`EncodeError::BadWebSocketTarget`] otherwise, nothing written).
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        host: &str,
        path: &str,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<Self, EncodeError> {
        if !visible_ascii(host) || !visible_ascii(path) || !path.starts_with('/') {
            return Err(EncodeError::BadWebSocketTarget);
        }
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let key = base64_encode(&nonce);
        for part in [
            "GET ",
            path,
            " HTTP/1.1\r\nHost: ",
            host,
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ",
            &key,
            "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        Ok(Self {
            accept: accept_key(key.as_bytes()),
            head: HeadReader::default(),
            poisoned: None,
        })
    }

    /// Reads the server's answer: consumes at most its header block (what follows is frames)
    /// and completes once a valid `101` is in.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<()>), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let r = self.decode_inner(input);
        if let Err(e) = r {
            self.poisoned = Some(e);
        }
        r
    }

    fn decode_inner(&mut self, input: &[u8]) -> Result<(usize, Status<()>), TransportError> {
        let (n, done) = self.head.feed(input)?;
        if !done {
            return Ok((n, Status::Partial));
        }
        self.check()?;
        self.head = HeadReader::default();
        Ok((n, Status::Complete(())))
    }

    /// Checks the complete answer.
    fn check(&self) -> Result<(), WsError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_UPGRADE_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&self.head.buf) {
            Ok(httparse::Status::Complete(n))
                if n == self.head.buf.len() && resp.version == Some(1) => {}
            _ => return Err(WsError::BadHttp),
        }
        let code = resp.code.unwrap_or(0);
        if code != 101 {
            return Err(WsError::Status(code));
        }
        let h = &*resp.headers;
        if !has_token(h, "upgrade", "websocket") || !has_token(h, "connection", "upgrade") {
            return Err(WsError::NotAnUpgrade);
        }
        if single(h, "sec-websocket-accept").map(<[u8]>::trim_ascii) != Some(self.accept.as_bytes())
        {
            return Err(WsError::BadAccept);
        }
        let mut protocols = values(h, "sec-websocket-protocol");
        if let Some(p) = protocols.next()
            && (p.trim_ascii() != SUBPROTOCOL.as_bytes() || protocols.next().is_some())
        {
            return Err(WsError::NoBinaryProtocol);
        }
        if values(h, "sec-websocket-extensions").next().is_some() {
            return Err(WsError::UnexpectedExtension);
        }
        Ok(())
    }
}

/// The server side of the upgrade: reads the request and writes the answer (`101`, or
/// `400`/`404` with the error).
#[derive(Debug)]
pub struct WsServerHandshake {
    path: Option<String>,
    head: HeadReader,
    poisoned: Option<TransportError>,
}

impl WsServerHandshake {
    /// Accepts an upgrade for `path` (any path if `None`).
    pub fn new(path: Option<String>) -> Self {
        Self {
            path,
            head: HeadReader::default(),
            poisoned: None,
        }
    }

    /// Reads the client's request: consumes at most its header block (what follows is frames).
    /// Once it is in, writes the answer to `out`: `101 Switching Protocols` (complete) or a
    /// `400`/`404` (and the error; the connection should close after sending it).
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Status<()>), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let r = self.decode_inner(input, out);
        if let Err(e) = r {
            self.poisoned = Some(e);
            self.head = HeadReader::default();
        }
        r
    }

    fn decode_inner(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Status<()>), TransportError> {
        let (n, done) = match self.head.feed(input) {
            Ok(x) => x,
            Err(e) => {
                reject(out, 400, "Bad Request", false);
                return Err(e.into());
            }
        };
        if !done {
            return Ok((n, Status::Partial));
        }
        match self.check() {
            Ok(key) => {
                for part in [
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: ",
                    &accept_key(&key),
                    "\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
                ] {
                    out.extend_from_slice(part.as_bytes());
                }
                self.head = HeadReader::default();
                Ok((n, Status::Complete(())))
            }
            Err(e) => {
                match e {
                    WsError::PathNotFound => reject(out, 404, "Not Found", false),
                    WsError::BadVersion => reject(out, 400, "Bad Request", true),
                    _ => reject(out, 400, "Bad Request", false),
                }
                Err(e.into())
            }
        }
    }

    /// Checks the request; the key text on success.
    fn check(&self) -> Result<Vec<u8>, WsError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_UPGRADE_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.head.buf) {
            Ok(httparse::Status::Complete(n))
                if n == self.head.buf.len() && req.version == Some(1) => {}
            _ => return Err(WsError::BadHttp),
        }
        if req.method != Some("GET") {
            return Err(WsError::BadMethod);
        }
        let target = req.path.unwrap_or("");
        let path = target.split('?').next().unwrap_or("");
        if self.path.as_deref().is_some_and(|want| want != path) {
            return Err(WsError::PathNotFound);
        }
        let h = &*req.headers;
        if single(h, "host").is_none()
            || !has_token(h, "upgrade", "websocket")
            || !has_token(h, "connection", "upgrade")
        {
            return Err(WsError::NotAnUpgrade);
        }
        if single(h, "sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
            return Err(WsError::BadVersion);
        }
        let key = single(h, "sec-websocket-key")
            .map(<[u8]>::trim_ascii)
            .ok_or(WsError::BadKey)?;
        decode_key(key).ok_or(WsError::BadKey)?;
        if !values(h, "sec-websocket-protocol")
            .any(|v| tokens(v).any(|t| t == SUBPROTOCOL.as_bytes()))
        {
            return Err(WsError::NoBinaryProtocol);
        }
        Ok(key.to_vec())
    }
}

fn reject(out: &mut Vec<u8>, code: u16, text: &str, version: bool) {
    let status = match code {
        404 => "404",
        _ => "400",
    };
    for part in ["HTTP/1.1 ", status, " ", text, "\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    if version {
        out.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\nContent-Length: 0\r\n\r\n");
}

// ---------------------------------------------------------------------------------- frames

/// A close frame received: the code (none if the payload was empty) and the reason read as a
/// transport error (`"404"`, `" -404"`, `"  404"` → `-404`; anything else → `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsClose {
    /// The close code.
    pub code: Option<u16>,
    /// The reason as a (negative) transport error code, if it is a decimal number.
    pub error: Option<i32>,
}

/// Reads a close reason: a decimal code, possibly space-padded, as a negative transport error.
pub fn parse_close_reason(reason: &[u8]) -> Option<i32> {
    let text = core::str::from_utf8(reason).ok()?.trim_matches(' ');
    let v: i32 = text.parse().ok()?;
    match v {
        0 => None,
        v if v > 0 => v.checked_neg(),
        v => Some(v),
    }
}

/// Whether a close code may appear in a close frame (RFC 6455 §7.4.1, §7.4.2 and the IANA
/// registry): 1000-1003, 1007-1014 (registered), 3000-4999 (libraries, applications). 1004 is
/// reserved, 1005, 1006 and 1015 must never be sent, the rest of 1000-2999 is unassigned and
/// codes below 1000 or from 5000 are not used.
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The frame being read.
#[derive(Clone, Copy, Debug)]
struct InFrame {
    opcode: u8,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes read so far (the mask position).
    offset: usize,
}

/// The RFC 6455 frame codec of one role: decodes the peer's frames into a byte stream of data
/// payloads, answers pings and closes (queued, see [`WsCodec::poll_output`]) and encodes
/// binary frames (masked by a client with a key from the caller's RNG).
///
/// Enforced on input: the peer's masking (a server requires masked frames, a client unmasked
/// ones), no reserved bits, no text frames or reserved opcodes, control frames unfragmented and
/// at most 125 bytes, continuation frames only inside a fragmented message, 64-bit lengths with
/// the top bit clear, data frames at most [`max_payload`](Self::with_max_payload) bytes
/// (checked from the header, before any payload). After an error or a close the codec is
/// poisoned: every later `decode` returns the same error.
#[derive(Debug)]
pub struct WsCodec {
    role: Role,
    max_payload: usize,
    head: [u8; 14],
    head_len: usize,
    frame: Option<InFrame>,
    in_message: bool,
    control: Vec<u8>,
    pong: Option<Vec<u8>>,
    close_reply: bool,
    close_sent: bool,
    poisoned: Option<TransportError>,
}

impl WsCodec {
    /// A codec for `role` (the peer has the other one), payload cap [`DEFAULT_MAX_FRAME_LEN`].
    pub fn new(role: Role) -> Self {
        Self {
            role,
            max_payload: DEFAULT_MAX_FRAME_LEN,
            head: [0; 14],
            head_len: 0,
            frame: None,
            in_message: false,
            control: Vec::new(),
            pong: None,
            close_reply: false,
            close_sent: false,
            poisoned: None,
        }
    }

    /// Sets the largest data frame payload accepted.
    #[must_use]
    pub fn with_max_payload(mut self, max: usize) -> Self {
        self.max_payload = max;
        self
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether a close frame was sent (nothing more may be).
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Decodes a prefix of `input`, appending the (unmasked) payload bytes of data frames to
    /// `data`. Returns after consuming all of `input` ([`Status::Partial`], never an error) or
    /// right after a close frame ([`Status::Complete`]; a close answer is queued). Any split of
    /// the input gives the same bytes and the same close.
    pub fn decode(
        &mut self,
        input: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<(usize, Status<WsClose>), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let r = self.decode_inner(input, data);
        match r {
            Err(e) => self.poisoned = Some(e),
            Ok((_, Status::Complete(c))) => {
                self.poisoned = Some(WsError::Closed(c.code).into());
            }
            Ok(_) => {}
        }
        r
    }

    fn decode_inner(
        &mut self,
        input: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<(usize, Status<WsClose>), TransportError> {
        let mut consumed = 0usize;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            let Some(mut f) = self.frame else {
                if rest.is_empty() {
                    return Ok((consumed, Status::Partial));
                }
                consumed = consumed.saturating_add(self.read_head(rest)?);
                if let Some(f) = self.frame
                    && f.remaining == 0
                    && let Some(close) = self.finish_frame(f)?
                {
                    return Ok((consumed, Status::Complete(close)));
                }
                continue;
            };
            if rest.is_empty() {
                return Ok((consumed, Status::Partial));
            }
            let take = usize::try_from(f.remaining)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let chunk = rest.get(..take).unwrap_or_default();
            let dst = if f.opcode & 0x8 == 0 {
                &mut *data
            } else {
                &mut self.control
            };
            let start = dst.len();
            dst.extend_from_slice(chunk);
            if let (Some(m), Some(tail)) = (f.mask, dst.get_mut(start..)) {
                apply_mask(tail, m, f.offset);
            }
            f.offset = f.offset.wrapping_add(take);
            f.remaining = f
                .remaining
                .saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
            consumed = consumed.saturating_add(take);
            self.frame = Some(f);
            if f.remaining == 0
                && let Some(close) = self.finish_frame(f)?
            {
                return Ok((consumed, Status::Complete(close)));
            }
        }
    }

    /// Consumes header bytes from `rest` (non-empty); sets `self.frame` once the header is in.
    fn read_head(&mut self, rest: &[u8]) -> Result<usize, TransportError> {
        let need = if self.head_len < 2 {
            2
        } else {
            let [b0, b1] = [self.head[0], self.head[1]];
            self.check_first_bytes(b0, b1)?;
            let ext = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
            2usize.saturating_add(ext).saturating_add(mask)
        };
        let free = self.head.get_mut(self.head_len..need).unwrap_or_default();
        let take = free.len().min(rest.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..take), rest.get(..take)) {
            dst.copy_from_slice(src);
        }
        self.head_len = self.head_len.saturating_add(take);
        if self.head_len == 2 {
            let [b0, b1] = [self.head[0], self.head[1]];
            self.check_first_bytes(b0, b1)?;
            if b1 & 0x7f < 126 && b1 & 0x80 == 0 {
                self.start_frame(2)?;
            }
        } else if self.head_len == need && need > 2 {
            self.start_frame(need)?;
        }
        Ok(take)
    }

    /// Checks what the first two header bytes alone decide.
    fn check_first_bytes(&self, b0: u8, b1: u8) -> Result<(), WsError> {
        if b0 & 0x70 != 0 {
            return Err(WsError::ReservedBits);
        }
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(WsError::BadMask);
        }
        let fin = b0 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        match b0 & 0x0f {
            OP_CONTINUATION if !self.in_message => Err(WsError::BadContinuation),
            OP_BINARY if self.in_message => Err(WsError::BadContinuation),
            OP_CONTINUATION | OP_BINARY => Ok(()),
            OP_TEXT => Err(WsError::TextFrame),
            OP_CLOSE | OP_PING | OP_PONG if !fin => Err(WsError::FragmentedControl),
            OP_CLOSE | OP_PING | OP_PONG if usize::from(len7) > MAX_CONTROL_PAYLOAD => {
                Err(WsError::ControlTooLarge)
            }
            OP_CLOSE | OP_PING | OP_PONG => Ok(()),
            op => Err(WsError::BadOpcode(op)),
        }
    }

    /// The whole header (`len` bytes) is in: the frame starts.
    fn start_frame(&mut self, len: usize) -> Result<(), TransportError> {
        let h = self.head.get(..len).unwrap_or_default();
        let (&b0, rest) = h.split_first().ok_or(WsError::BadLength)?;
        let (&b1, rest) = rest.split_first().ok_or(WsError::BadLength)?;
        let (payload_len, rest) = match b1 & 0x7f {
            126 => {
                let (l, r) = rest.split_first_chunk::<2>().ok_or(WsError::BadLength)?;
                (u64::from(u16::from_be_bytes(*l)), r)
            }
            127 => {
                let (l, r) = rest.split_first_chunk::<8>().ok_or(WsError::BadLength)?;
                let v = u64::from_be_bytes(*l);
                if v >> 63 != 0 {
                    return Err(WsError::BadLength.into());
                }
                (v, r)
            }
            l => (u64::from(l), rest),
        };
        let mask = if b1 & 0x80 != 0 {
            Some(*rest.first_chunk::<4>().ok_or(WsError::BadLength)?)
        } else {
            None
        };
        let opcode = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        if opcode & 0x8 == 0 {
            let max = u64::try_from(self.max_payload).unwrap_or(u64::MAX);
            if payload_len > max {
                return Err(TransportError::FrameTooLarge {
                    len: payload_len,
                    max: self.max_payload,
                });
            }
            self.in_message = !fin;
        } else {
            self.control.clear();
        }
        self.head_len = 0;
        self.frame = Some(InFrame {
            opcode,
            mask,
            remaining: payload_len,
            offset: 0,
        });
        Ok(())
    }

    /// A frame's payload is complete; a close is returned.
    fn finish_frame(&mut self, f: InFrame) -> Result<Option<WsClose>, TransportError> {
        self.frame = None;
        match f.opcode {
            OP_PING => {
                if !self.close_sent {
                    self.pong = Some(core::mem::take(&mut self.control));
                }
                Ok(None)
            }
            OP_CLOSE => {
                let close = match self.control.split_first_chunk::<2>() {
                    None if self.control.is_empty() => WsClose {
                        code: None,
                        error: None,
                    },
                    None => return Err(WsError::BadClose.into()),
                    Some((code, reason)) => {
                        let code = u16::from_be_bytes(*code);
                        if !close_code_allowed(code) || core::str::from_utf8(reason).is_err() {
                            return Err(WsError::BadClose.into());
                        }
                        WsClose {
                            code: Some(code),
                            error: parse_close_reason(reason),
                        }
                    }
                };
                self.close_reply = !self.close_sent;
                Ok(Some(close))
            }
            _ => Ok(None),
        }
    }

    /// Appends the queued control frames (a pong for the latest ping, the close answer) to
    /// `out`; whether there were any. A client masks them with keys from `rng`.
    pub fn poll_output<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> bool {
        let start = out.len();
        if let Some(p) = self.pong.take()
            && !self.close_sent
        {
            write_frame(self.role, OP_PONG, &p, rng, out);
        }
        if self.close_reply && !self.close_sent {
            write_frame(self.role, OP_CLOSE, &CLOSE_NORMAL.to_be_bytes(), rng, out);
            self.close_sent = true;
        }
        self.close_reply = false;
        out.len() > start
    }

    /// Encodes `payload` as one binary frame (FIN set) into `out`; a client masks it with a key
    /// from `rng`. Refused ([`EncodeError::NotReady`]) once a close was sent.
    pub fn encode_binary<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.close_sent {
            return Err(EncodeError::NotReady);
        }
        write_frame(self.role, OP_BINARY, payload, rng, out);
        Ok(())
    }

    /// Encodes a close frame with `code` and `reason` (at most 123 bytes, else
    /// [`EncodeError::TooLarge`]) into `out`; nothing may be sent after it. The spec's form
    /// is code [`CLOSE_NORMAL`] with a decimal error code as the reason.
    pub fn encode_close<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        code: u16,
        reason: &[u8],
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.close_sent {
            return Err(EncodeError::NotReady);
        }
        if reason.len() > MAX_CONTROL_PAYLOAD.saturating_sub(2) {
            return Err(EncodeError::TooLarge(reason.len()));
        }
        let mut payload = Vec::with_capacity(reason.len().saturating_add(2));
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason);
        write_frame(self.role, OP_CLOSE, &payload, rng, out);
        self.close_sent = true;
        Ok(())
    }
}

fn apply_mask(bytes: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= mask.get(offset.wrapping_add(i) % 4).copied().unwrap_or(0);
    }
}

/// One whole frame (FIN set) of `opcode`; masked (key from `rng`) when `role` is the client.
fn write_frame<R: rand_core::CryptoRng + ?Sized>(
    role: Role,
    opcode: u8,
    payload: &[u8],
    rng: &mut R,
    out: &mut Vec<u8>,
) {
    let mask_bit = if role == Role::Client { 0x80 } else { 0 };
    out.push(0x80 | opcode);
    let len = payload.len();
    if let Ok(l) = u8::try_from(len)
        && l < 126
    {
        out.push(mask_bit | l);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&u64::try_from(len).unwrap_or(u64::MAX >> 1).to_be_bytes());
    }
    if role == Role::Client {
        let mut key = [0u8; 4];
        rng.fill_bytes(&mut key);
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(tail) = out.get_mut(start..) {
            apply_mask(tail, key, 0);
        }
    } else {
        out.extend_from_slice(payload);
    }
}

// ------------------------------------------------------------------------------- transport

enum Upgrade {
    Client(WsClientHandshake),
    Server(WsServerHandshake),
    Open,
}

// The small variant lives for the first 64 bytes only; the transport is boxed as a whole.
#[allow(clippy::large_enum_variant)]
enum Inner {
    /// Server: the first 64 bytes of the stream, until the obfuscation init is complete.
    AwaitInit {
        init: Vec<u8>,
        config: Box<ServerConfig>,
    },
    Ready(ObfuscatedCodec),
}

/// What one decoding step ended with.
enum Step {
    Partial,
    /// The inner codec holds a frame.
    Frame,
    /// The peer closed with an error code as the reason.
    CloseError(i32),
}

/// The WebSocket transport: the upgrade, then an obfuscated stream inside binary frames. The
/// decoder and encoders have the shape of every transport here; control frames and the upgrade
/// messages wait in [`poll_output`](Self::poll_output) (an `encode` writes them first, so the
/// order on the wire stays right).
///
/// A close frame from the peer is answered (close 1000); its reason, if a decimal code, is
/// reported as [`Frame::TransportError`], after which (and after a close without one) `decode`
/// fails with [`WsError::Closed`].
pub struct WsTransport {
    upgrade: Upgrade,
    codec: WsCodec,
    inner: Inner,
    max_frame_len: usize,
    /// Unmasked data-frame bytes the inner decoder has not consumed yet (at most
    /// `STAGE_CHUNK`).
    stage: Vec<u8>,
    stage_pos: usize,
    /// A close frame read behind the staged bytes.
    close: Option<WsClose>,
    /// The upgrade request/answer, until sent.
    out: Vec<u8>,
    scratch: Vec<u8>,
    secret_index: Option<usize>,
    poisoned: Option<TransportError>,
}

impl fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsTransport")
            .field("role", &self.codec.role)
            .field("open", &self.is_open())
            .field("framing", &self.framing())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl WsTransport {
    /// A client: writes the upgrade request for `host`/`path` (see [`WsClientHandshake::new`])
    /// to its output, then carries `inner` (a client [`ObfuscatedCodec`]; fake TLS is refused
    /// with [`EncodeError::BadWebSocketTarget`]) in masked binary frames.
    pub fn client<R: rand_core::CryptoRng + ?Sized>(
        host: &str,
        path: &str,
        inner: ObfuscatedCodec,
        rng: &mut R,
    ) -> Result<Self, EncodeError> {
        if inner.is_fake_tls() {
            return Err(EncodeError::BadWebSocketTarget);
        }
        let mut out = Vec::new();
        let hs = WsClientHandshake::new(host, path, rng, &mut out)?;
        let max_frame_len = DEFAULT_MAX_FRAME_LEN;
        Ok(Self {
            upgrade: Upgrade::Client(hs),
            codec: WsCodec::new(Role::Client)
                .with_max_payload(max_frame_len.saturating_add(FRAME_SLACK)),
            inner: Inner::Ready(inner),
            max_frame_len,
            stage: Vec::new(),
            stage_pos: 0,
            close: None,
            out,
            scratch: Vec::new(),
            secret_index: None,
            poisoned: None,
        })
    }

    /// A server: reads the upgrade request (for `path`, any if `None`), answers it, then reads
    /// an obfuscated2 stream inside the frames, accepted as `config` says (no secret if
    /// `allow_unsecured`, else one of the non-fake-TLS `secrets`; `max_frame_len`). Plain
    /// framings are refused: the spec makes obfuscation mandatory here.
    pub fn server(path: Option<String>, config: &ServerConfig) -> Self {
        let max_frame_len = config.max_frame_len;
        Self {
            upgrade: Upgrade::Server(WsServerHandshake::new(path)),
            codec: WsCodec::new(Role::Server)
                .with_max_payload(max_frame_len.saturating_add(FRAME_SLACK)),
            inner: Inner::AwaitInit {
                init: Vec::with_capacity(INIT_LEN),
                config: Box::new(config.clone()),
            },
            max_frame_len,
            stage: Vec::new(),
            stage_pos: 0,
            close: None,
            out: Vec::new(),
            scratch: Vec::new(),
            secret_index: None,
            poisoned: None,
        }
    }

    /// Sets the largest MTProto payload accepted (data frames may be [`FRAME_SLACK`] larger).
    #[must_use]
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self.codec.max_payload = max.saturating_add(FRAME_SLACK);
        self.inner = match self.inner {
            Inner::Ready(c) => Inner::Ready(c.with_max_frame_len(max)),
            Inner::AwaitInit { init, mut config } => {
                config.max_frame_len = max;
                Inner::AwaitInit { init, config }
            }
        };
        self
    }

    /// Whether the upgrade is done (a client may encode only then).
    pub fn is_open(&self) -> bool {
        matches!(self.upgrade, Upgrade::Open)
    }

    /// The framing inside, once known.
    pub fn framing(&self) -> Option<Framing> {
        match &self.inner {
            Inner::Ready(c) => c.framing(),
            Inner::AwaitInit { .. } => None,
        }
    }

    /// Server: the index of the MTProxy secret the client used, once its init is in.
    pub fn secret_index(&self) -> Option<usize> {
        self.secret_index
    }

    /// Bytes buffered by the decoders.
    pub fn buffered(&self) -> usize {
        let inner = match &self.inner {
            Inner::Ready(c) => c.buffered(),
            Inner::AwaitInit { init, .. } => init.len(),
        };
        self.stage
            .len()
            .saturating_sub(self.stage_pos)
            .saturating_add(inner)
    }

    /// Appends what waits to be sent (the upgrade request or answer, a pong, a close answer) to
    /// `out`; whether there was anything.
    pub fn poll_output<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> bool {
        let start = out.len();
        out.append(&mut self.out);
        if self.is_open() {
            self.codec.poll_output(rng, out);
        }
        out.len() > start
    }

    /// Decodes at most one frame of the inner transport from `input`. Same contract as
    /// [`super::Codec::decode`]: a prefix is consumed, [`Status::Partial`] means all of it was.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<Frame<'_>>), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        match self.decode_loop(input) {
            Err(e) => {
                self.poisoned = Some(e);
                Err(e)
            }
            Ok((n, Step::Partial)) => Ok((n, Status::Partial)),
            Ok((n, Step::CloseError(code))) => {
                Ok((n, Status::Complete(Frame::TransportError(code))))
            }
            Ok((n, Step::Frame)) => match &self.inner {
                Inner::Ready(c) => Ok((n, c.take_frame())),
                Inner::AwaitInit { .. } => Ok((n, Status::Partial)),
            },
        }
    }

    fn decode_loop(&mut self, input: &[u8]) -> Result<(usize, Step), TransportError> {
        let mut consumed = 0usize;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match &mut self.upgrade {
                Upgrade::Open => {}
                Upgrade::Client(hs) => {
                    let (n, st) = hs.decode(rest)?;
                    consumed = consumed.saturating_add(n);
                    match st {
                        Status::Partial => return Ok((consumed, Step::Partial)),
                        Status::Complete(()) => self.upgrade = Upgrade::Open,
                    }
                    continue;
                }
                Upgrade::Server(hs) => {
                    let (n, st) = hs.decode(rest, &mut self.out)?;
                    consumed = consumed.saturating_add(n);
                    match st {
                        Status::Partial => return Ok((consumed, Step::Partial)),
                        Status::Complete(()) => self.upgrade = Upgrade::Open,
                    }
                    continue;
                }
            }
            // Staged bytes go to the inner decoder first.
            let staged = self.stage.get(self.stage_pos..).unwrap_or_default();
            if !staged.is_empty() {
                let (used, done) = match &mut self.inner {
                    Inner::Ready(c) => c.decode_step(staged)?,
                    Inner::AwaitInit { init, .. } => {
                        let take = INIT_LEN.saturating_sub(init.len()).min(staged.len());
                        init.extend_from_slice(staged.get(..take).unwrap_or_default());
                        (take, false)
                    }
                };
                self.stage_pos = self.stage_pos.saturating_add(used);
                self.finish_init()?;
                if done {
                    return Ok((consumed, Step::Frame));
                }
                continue;
            }
            self.stage.clear();
            self.stage_pos = 0;
            // The close comes after the data that preceded it.
            if let Some(close) = self.close.take() {
                let closed = TransportError::WebSocket(WsError::Closed(close.code));
                self.poisoned = Some(closed);
                return match close.error {
                    Some(code) => Ok((consumed, Step::CloseError(code))),
                    None => Err(closed),
                };
            }
            if rest.is_empty() {
                return Ok((consumed, Step::Partial));
            }
            let piece = rest.get(..STAGE_CHUNK.min(rest.len())).unwrap_or_default();
            let (n, st) = self.codec.decode(piece, &mut self.stage)?;
            consumed = consumed.saturating_add(n);
            if let Status::Complete(close) = st {
                self.close = Some(close);
            }
        }
    }

    /// Server: once the 64 init bytes are in, find the keys.
    fn finish_init(&mut self) -> Result<(), TransportError> {
        let Inner::AwaitInit { init, config } = &mut self.inner else {
            return Ok(());
        };
        let Ok(bytes) = <[u8; INIT_LEN]>::try_from(init.as_slice()) else {
            return Ok(());
        };
        let (codec, index) = obfuscated_from_init(config, &bytes)?;
        self.secret_index = index;
        self.inner = Inner::Ready(codec.with_max_frame_len(self.max_frame_len));
        Ok(())
    }

    fn encode_with<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut Vec<u8>,
        f: impl FnOnce(&mut ObfuscatedCodec, &mut R, &mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        if !self.is_open() {
            return Err(EncodeError::NotReady);
        }
        let Inner::Ready(inner) = &mut self.inner else {
            return Err(EncodeError::NotReady);
        };
        if self.codec.close_sent {
            return Err(EncodeError::NotReady);
        }
        self.scratch.clear();
        f(inner, rng, &mut self.scratch)?;
        out.append(&mut self.out);
        self.codec.poll_output(rng, out);
        self.codec.encode_binary(&self.scratch, rng, out)
    }

    /// Encodes one payload (client: optionally requesting a quick ack) as one binary frame.
    pub fn encode<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.encode_with(rng, out, |c, rng, buf| {
            c.encode(payload, quick_ack, rng, buf)
        })
    }

    /// Server: encodes a quick-ack token.
    pub fn encode_quick_ack<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        token: QuickAckToken,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.encode_with(rng, out, |c, rng, buf| c.encode_quick_ack(token, rng, buf))
    }

    /// Server: encodes a transport error (a negative code such as -404), in-band as over TCP.
    pub fn encode_transport_error<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        code: i32,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.encode_with(rng, out, |c, rng, buf| {
            c.encode_transport_error(code, rng, buf)
        })
    }

    /// Encodes a close frame (code [`CLOSE_NORMAL`], `reason` such as `b"404"`); nothing more
    /// is sent after it.
    pub fn encode_close<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        reason: &[u8],
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if !self.is_open() {
            return Err(EncodeError::NotReady);
        }
        out.append(&mut self.out);
        self.codec.poll_output(rng, out);
        self.codec.encode_close(CLOSE_NORMAL, reason, rng, out)
    }
}

//! Server-side transport detection: from a new connection's first bytes, recognise abridged
//! (`0xef`), intermediate (`0xeeeeeeee`), padded intermediate (`0xdddddddd`), full (a length then
//! sequence number 0), an obfuscated2 init (with no secret or one of the configured MTProxy
//! secrets) or a fake-TLS ClientHello, and hand back the matching [`Transport`].
//!
//! This relies on the client rules of `mtproto_mtproto-transports.md`: an obfuscation init never
//! starts with `0xef`, `0xeeeeeeee`, `0xdddddddd`, an HTTP method or `16 03 01 02`, and never has
//! zero bytes 4..8.

use alloc::vec::Vec;

use super::faketls::{build_server_hello, check_client_hello, record_len};
use super::framing::Codec;
use super::obfuscated::{INIT_LEN, ObfuscatedCodec};
use super::secret::ProxySecret;
use super::websocket::{WsServerMode, WsTransport};
use super::{DEFAULT_MAX_FRAME_LEN, Framing, Role, Status, Transport, TransportError, fill_to};
use crate::time::UnixTime;

/// Largest ClientHello record accepted (2^14 payload + 5 header bytes).
const MAX_HELLO: usize = 16 * 1024 + 5;

/// What a server accepts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// MTProxy secrets accepted (plain, `dd` and `ee`).
    pub secrets: Vec<ProxySecret>,
    /// Accept connections without a secret: plain framings and obfuscation without a secret (a
    /// Telegram-server-like endpoint). An MTProxy sets this to false.
    pub allow_unsecured: bool,
    /// Largest payload accepted by the codecs handed out.
    pub max_frame_len: usize,
    /// Largest accepted difference between `now` and a fake-TLS ClientHello's timestamp.
    pub tls_window_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            allow_unsecured: true,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            tls_window_secs: 600,
        }
    }
}

/// A recognised connection.
#[derive(Debug)]
pub struct Detected {
    /// The codec for the rest of the stream (feed it the input after the consumed bytes).
    pub transport: Transport,
    /// Index in [`ServerConfig::secrets`] of the secret the client used, if any.
    pub secret_index: Option<usize>,
    /// Bytes to send to the client right away (the fake-TLS answer); usually empty.
    pub reply: Vec<u8>,
}

enum Guess {
    Need(usize),
    WebSocket,
    Plain(Framing),
    Full,
    Obfuscated,
    Tls,
}

/// Server-side auto-detecting decoder for a new connection.
#[derive(Debug)]
pub struct Detector {
    config: ServerConfig,
    websocket: WsServerMode,
    buf: Vec<u8>,
    poisoned: Option<TransportError>,
}

impl Detector {
    /// A detector for one new connection.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            websocket: WsServerMode::Off,
            buf: Vec::new(),
            poisoned: None,
        }
    }

    /// Sets how WebSocket is accepted (default [`WsServerMode::Off`]): with
    /// [`WsServerMode::Codec`] an input starting `GET ` is a WebSocket upgrade (the transport
    /// handed out answers it); with [`WsServerMode::External`] only obfuscated2 streams are
    /// accepted (the payloads of WebSocket messages a driver unwrapped).
    #[must_use]
    pub fn with_websocket(mut self, mode: WsServerMode) -> Self {
        self.websocket = mode;
        self
    }

    /// Bytes buffered while the transport is not known yet: never more than the detection needs
    /// (at most one ClientHello record of 16 KiB + 5 bytes, or 64 bytes of obfuscation init).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Consumes the first bytes of the connection (never more than the detection needs) until
    /// the transport is known. `now` checks fake-TLS timestamps; `rng` draws the fake-TLS answer.
    pub fn decode<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        input: &[u8],
        now: UnixTime,
        rng: &mut R,
    ) -> Result<(usize, Status<Detected>), TransportError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let r = self.decode_inner(input, now, rng);
        if let Err(e) = r {
            self.poisoned = Some(e);
            self.buf.clear();
        }
        r
    }

    fn decode_inner<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        input: &[u8],
        now: UnixTime,
        rng: &mut R,
    ) -> Result<(usize, Status<Detected>), TransportError> {
        let mut consumed = 0usize;
        loop {
            let guess = self.guess()?;
            let need = match guess {
                Guess::Need(n) => n,
                done => {
                    let d = self.finish(done, now, rng)?;
                    return Ok((consumed, Status::Complete(d)));
                }
            };
            if fill_to(&mut self.buf, need, input, &mut consumed).is_empty() {
                return Ok((consumed, Status::Partial));
            }
        }
    }

    fn has_tls_secret(&self) -> bool {
        self.config.secrets.iter().any(ProxySecret::is_fake_tls)
    }

    fn guess(&self) -> Result<Guess, TransportError> {
        let external = self.websocket == WsServerMode::External;
        // Under an external WebSocket only obfuscated2 is accepted.
        let open = self.config.allow_unsecured && !external;
        let b = &self.buf;
        let Some(&first) = b.first() else {
            return Ok(Guess::Need(1));
        };
        if first == 0xef {
            return if open {
                Ok(Guess::Plain(Framing::Abridged))
            } else {
                Err(TransportError::UnknownTransport)
            };
        }
        let Some(&[b0, b1, b2, b3]) = b.get(..4) else {
            return Ok(Guess::Need(4));
        };
        match [b0, b1, b2, b3] {
            [0xee, 0xee, 0xee, 0xee] if open => return Ok(Guess::Plain(Framing::Intermediate)),
            [0xdd, 0xdd, 0xdd, 0xdd] if open => {
                return Ok(Guess::Plain(Framing::PaddedIntermediate));
            }
            [0xee, 0xee, 0xee, 0xee] | [0xdd, 0xdd, 0xdd, 0xdd] => {
                return Err(TransportError::UnknownTransport);
            }
            // A TLS handshake record: 0x16 0x03 0x01 and a length. Since 2025 clients send
            // ClientHellos above 0x2ff bytes (post-quantum key shares), so any record length of
            // 0x200..=0x3fff bytes counts. Only 0x16030102 is forbidden to obfuscated2 inits;
            // another client's random init starting like a longer record is a ~2^-28 event,
            // and only where an `ee` secret is configured.
            [0x16, 0x03, 0x01, 0x02..=0x3f] if b3 == 0x02 || self.has_tls_secret() => {
                if !self.has_tls_secret() || external {
                    return Err(TransportError::UnknownTransport);
                }
                let Some(total) = record_len(b) else {
                    return Ok(Guess::Need(5));
                };
                if total > MAX_HELLO {
                    return Err(TransportError::BadTlsRecord);
                }
                return Ok(if b.len() >= total {
                    Guess::Tls
                } else {
                    Guess::Need(total)
                });
            }
            [b'G', b'E', b'T', b' '] if matches!(self.websocket, WsServerMode::Codec { .. }) => {
                return Ok(Guess::WebSocket);
            }
            ref m if external && [b"HEAD", b"POST", b"GET ", b"OPTI"].contains(&m) => {
                return Err(TransportError::UnknownTransport);
            }
            ref m if [b"HEAD", b"POST", b"GET ", b"OPTI"].contains(&m) => {
                return Err(TransportError::HttpNotSupported);
            }
            _ => {}
        }
        let Some(second) = b.get(4..8) else {
            return Ok(Guess::Need(8));
        };
        if second == [0; 4] {
            return if open {
                Ok(Guess::Full)
            } else {
                Err(TransportError::UnknownTransport)
            };
        }
        if b.len() < INIT_LEN {
            return Ok(Guess::Need(INIT_LEN));
        }
        Ok(Guess::Obfuscated)
    }

    fn finish<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        guess: Guess,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Detected, TransportError> {
        let max = self.config.max_frame_len;
        let plain = |t| Detected {
            transport: t,
            secret_index: None,
            reply: Vec::new(),
        };
        match guess {
            Guess::Need(_) => Err(TransportError::UnknownTransport),
            Guess::WebSocket => {
                let WsServerMode::Codec { path } = &self.websocket else {
                    return Err(TransportError::UnknownTransport);
                };
                // The 4 bytes read (`GET `) begin the upgrade request: hand them over.
                let mut ws = WsTransport::server(path.clone(), &self.config);
                let (_, st) = ws.decode(&self.buf)?;
                if st != Status::Partial {
                    return Err(TransportError::UnknownTransport);
                }
                Ok(plain(Transport::WebSocket(alloc::boxed::Box::new(ws))))
            }
            Guess::Plain(f) => Ok(plain(Transport::Plain(
                Codec::without_tag(f, Role::Server).with_max_frame_len(max),
            ))),
            Guess::Full => {
                // The 8 bytes read are the first frame's length and seqno: hand them over.
                let mut c = Codec::without_tag(Framing::Full, Role::Server).with_max_frame_len(max);
                let (_, st) = c.decode(&self.buf)?;
                if st != Status::Partial {
                    return Err(TransportError::UnknownTransport);
                }
                Ok(plain(Transport::Plain(c)))
            }
            Guess::Obfuscated => {
                let init: [u8; INIT_LEN] = self
                    .buf
                    .get(..INIT_LEN)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(TransportError::BadObfuscationInit)?;
                let (c, secret_index) = obfuscated_from_init(&self.config, &init)?;
                Ok(Detected {
                    transport: Transport::Obfuscated(c),
                    secret_index,
                    reply: Vec::new(),
                })
            }
            Guess::Tls => {
                let info = check_client_hello(
                    &self.buf,
                    &self.config.secrets,
                    now,
                    self.config.tls_window_secs,
                )?;
                let secret = self
                    .config
                    .secrets
                    .get(info.secret_index)
                    .ok_or(TransportError::BadTlsDigest)?;
                let reply = build_server_hello(secret, &info, rng);
                let codec =
                    ObfuscatedCodec::server_inner(Some(secret), true).with_max_frame_len(max);
                Ok(Detected {
                    transport: Transport::Obfuscated(codec),
                    secret_index: Some(info.secret_index),
                    reply,
                })
            }
        }
    }
}

/// The server codec for a complete obfuscation init, as `config` accepts it: without a secret
/// (if `allow_unsecured`) or with one of the non-fake-TLS secrets (its index returned).
pub(crate) fn obfuscated_from_init(
    config: &ServerConfig,
    init: &[u8; INIT_LEN],
) -> Result<(ObfuscatedCodec, Option<usize>), TransportError> {
    let max = config.max_frame_len;
    if config.allow_unsecured
        && let Ok(c) = ObfuscatedCodec::server_from_init(init, None)
    {
        return Ok((c.with_max_frame_len(max), None));
    }
    for (i, s) in config.secrets.iter().enumerate() {
        if s.is_fake_tls() {
            continue;
        }
        if let Ok(c) = ObfuscatedCodec::server_from_init(init, Some(s)) {
            return Ok((c.with_max_frame_len(max), Some(i)));
        }
    }
    Err(TransportError::BadObfuscationInit)
}

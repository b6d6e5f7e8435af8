//! The client [`Connection`]: transport + handshake + message crypto + [`ClientSession`], one
//! sans-IO state machine from socket bytes to RPC results.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;

use crate::crypto::message::{
    self, BODY_OFFSET, DecryptError, MessageHeader, PaddingPolicy, max_encrypted_len,
};
use crate::crypto::{AuthKey, Side};
use crate::handshake::{ClientConfig, ClientHandshake, ClientStep, RsaKeySet, plain};
use crate::session::{
    ClientSession, CloseReason, Event, Incoming, InvokeError, RequestId, SavedSession,
    SessionConfig,
};
use crate::time::{Instant, Now};
use crate::tl::{RemoteCall, Serialize};
use crate::transport::{
    self, Codec, FakeTlsClient, Frame, Framing, ObfuscatedCodec, ProxySecret, Role, Status,
    Transport, TransportError,
};

/// How the client talks to the server at the transport layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The framing (a `dd`/`ee` secret forces padded intermediate).
    pub framing: Framing,
    /// Obfuscate the stream (obfuscated2). Implied by a secret.
    pub obfuscated: bool,
    /// An MTProxy secret (plain, `dd` or `ee`).
    pub secret: Option<ProxySecret>,
    /// Ask the server for quick acks of requests.
    pub quick_ack: bool,
}

impl TransportConfig {
    /// A plain (unobfuscated) framing.
    pub fn plain(framing: Framing) -> Self {
        Self {
            framing,
            obfuscated: false,
            secret: None,
            quick_ack: false,
        }
    }

    /// An obfuscated framing (optionally through an MTProxy secret).
    pub fn obfuscated(framing: Framing, secret: Option<ProxySecret>) -> Self {
        Self {
            framing,
            obfuscated: true,
            secret,
            quick_ack: false,
        }
    }
}

/// Everything a [`Connection`] needs to know.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The data center: written into the obfuscation header and the handshake's inner data
    /// (+10000 for test DCs, negative for media DCs).
    pub dc_id: i16,
    /// The transport.
    pub transport: TransportConfig,
    /// RSA keys the server may offer.
    pub rsa_keys: RsaKeySet,
    /// Session limits and timers.
    pub session: SessionConfig,
    /// Padding policy for encrypted messages.
    pub padding: PaddingPolicy,
    /// The handshake must finish within this many ms.
    pub handshake_timeout_ms: u64,
    /// Largest transport frame accepted.
    pub max_frame_len: usize,
}

impl ConnectionConfig {
    /// Defaults for `dc_id` over `transport` with `rsa_keys`.
    pub fn new(dc_id: i16, transport: TransportConfig, rsa_keys: RsaKeySet) -> Self {
        Self {
            dc_id,
            transport,
            rsa_keys,
            session: SessionConfig::default(),
            padding: PaddingPolicy::default(),
            handshake_timeout_ms: 30_000,
            max_frame_len: transport::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// A key and the session state that goes with it: what a driver persists to continue later.
#[derive(Clone)]
pub struct ResumeState {
    /// The permanent auth key.
    pub auth_key: AuthKey,
    /// The session (salt, time offset, session id, msg_id floor).
    pub session: SavedSession,
}

impl fmt::Debug for ResumeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeState")
            .field("auth_key", &self.auth_key)
            .field("session", &self.session)
            .finish()
    }
}

enum Link {
    /// Waiting for the fake-TLS ServerHello; `hello` still to be sent.
    FakeTls {
        client: FakeTlsClient,
        hello: Vec<u8>,
    },
    Ready(Transport),
}

enum Phase {
    Handshaking {
        hs: ClientHandshake,
        /// The next unencrypted body to send.
        out: Option<Vec<u8>>,
        deadline: Instant,
    },
    Ready,
    Closed,
}

/// Quick-ack tokens remembered at most (oldest forgotten first).
const MAX_QUICK_ACKS: usize = 1024;

/// The client connection. Methods come in the quinn-proto groups:
/// - input: [`handle_input`](Self::handle_input), [`handle_timeout`](Self::handle_timeout);
/// - commands: [`invoke`](Self::invoke), [`cancel`](Self::cancel), [`ping`](Self::ping),
///   [`reconnect`](Self::reconnect), [`close`](Self::close);
/// - output, drained after every input or command: [`poll_transmit`](Self::poll_transmit),
///   [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout).
///
/// Deterministic: the same RNG seed, clock values and input bytes give the same output bytes.
pub struct Connection<R> {
    config: ConnectionConfig,
    rng: R,
    link: Link,
    phase: Phase,
    key: Option<AuthKey>,
    session: ClientSession,
    /// Plaintext/encryption scratch buffer (reused: no allocation per message once grown).
    scratch: Vec<u8>,
    /// Incoming payload scratch buffer.
    rx: Vec<u8>,
    quick_acks: BTreeMap<u32, RequestId>,
    quick_ack_order: VecDeque<u32>,
    events: VecDeque<Event>,
}

impl<R> fmt::Debug for Connection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Handshaking { .. } => "handshaking",
            Phase::Ready => "ready",
            Phase::Closed => "closed",
        };
        f.debug_struct("Connection")
            .field("phase", &phase)
            .field("dc_id", &self.config.dc_id)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn new_link<R: CryptoRng>(
    config: &ConnectionConfig,
    now: Now,
    rng: &mut R,
) -> Result<Link, transport::EncodeError> {
    let t = &config.transport;
    if let Some(secret) = t.secret.as_ref().filter(|s| s.is_fake_tls()) {
        let mut hello = Vec::new();
        let client = FakeTlsClient::new(secret, now.unix, rng, &mut hello)?;
        return Ok(Link::FakeTls { client, hello });
    }
    let transport = if t.obfuscated || t.secret.is_some() {
        Transport::Obfuscated(
            ObfuscatedCodec::client(t.framing, Some(config.dc_id), t.secret.as_ref(), rng)?
                .with_max_frame_len(config.max_frame_len),
        )
    } else {
        Transport::Plain(
            Codec::new(t.framing, Role::Client).with_max_frame_len(config.max_frame_len),
        )
    };
    Ok(Link::Ready(transport))
}

impl<R: CryptoRng> Connection<R> {
    /// A connection that creates a new permanent auth key first.
    pub fn new(config: ConnectionConfig, mut rng: R, now: Now) -> Self {
        let session = ClientSession::new(config.session.clone(), 0, 0, &mut rng);
        let mut c = Self::build(config, rng, session, None, now);
        c.start_handshake(now);
        c
    }

    /// A connection that uses a key made earlier, continuing the saved session.
    pub fn resume(config: ConnectionConfig, state: ResumeState, rng: R, now: Now) -> Self {
        let session = ClientSession::restore(config.session.clone(), &state.session);
        let mut c = Self::build(config, rng, session, Some(state.auth_key), now);
        c.phase = Phase::Ready;
        c.session.on_reconnect(now);
        c.events.push_back(Event::Ready);
        c
    }

    fn build(
        config: ConnectionConfig,
        mut rng: R,
        session: ClientSession,
        key: Option<AuthKey>,
        now: Now,
    ) -> Self {
        let (link, phase) = match new_link(&config, now, &mut rng) {
            Ok(l) => (l, Phase::Ready),
            Err(_) => (
                Link::Ready(Transport::Plain(Codec::new(
                    Framing::Intermediate,
                    Role::Client,
                ))),
                Phase::Closed,
            ),
        };
        let mut c = Self {
            config,
            rng,
            link,
            phase,
            key,
            session,
            scratch: Vec::new(),
            rx: Vec::new(),
            quick_acks: BTreeMap::new(),
            quick_ack_order: VecDeque::new(),
            events: VecDeque::new(),
        };
        if matches!(c.phase, Phase::Closed) {
            c.events.push_back(Event::Closed(CloseReason::Protocol));
        }
        c
    }

    fn start_handshake(&mut self, now: Now) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let mut hs = ClientHandshake::new(ClientConfig::new(
            self.config.rsa_keys.clone(),
            i32::from(self.config.dc_id),
        ));
        match hs.start(&mut self.rng) {
            Ok(first) => {
                self.phase = Phase::Handshaking {
                    hs,
                    out: Some(first),
                    deadline: now.mono.saturating_add_micros(
                        self.config.handshake_timeout_ms.saturating_mul(1000),
                    ),
                };
            }
            Err(_) => self.close_with(CloseReason::HandshakeFailed),
        }
    }

    // ------------------------------------------------------------------------------- getters

    /// Whether requests flow (the key exists and the connection is open).
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Whether the connection is closed ([`reconnect`](Self::reconnect) opens it again).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The auth key, once it exists.
    pub fn auth_key(&self) -> Option<&AuthKey> {
        self.key.as_ref()
    }

    /// The session layer (read-only: counters, clock, pending requests).
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// What to persist to continue later (`None` before the key exists).
    pub fn export(&self) -> Option<ResumeState> {
        Some(ResumeState {
            auth_key: self.key.clone()?,
            session: self.session.export(),
        })
    }

    // ------------------------------------------------------------------------------ commands

    /// Queues a request given as serialized TL; it goes out once the key exists.
    pub fn invoke_raw(&mut self, body: &[u8]) -> Result<RequestId, InvokeError> {
        self.session.invoke_raw(body)
    }

    /// Queues a typed request.
    pub fn invoke<F: RemoteCall>(&mut self, request: &F) -> Result<RequestId, InvokeError> {
        self.session.invoke(request)
    }

    /// Queues a request of any serializable type (e.g. [`crate::tl::Raw`]).
    pub fn invoke_serialize<F: Serialize>(
        &mut self,
        request: &F,
    ) -> Result<RequestId, InvokeError> {
        self.session.invoke(request)
    }

    /// Cancels a request (`rpc_drop_answer` if it was sent). Returns whether it was pending.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        self.session.cancel(id)
    }

    /// Sends a ping; the answer is an [`Event::Pong`].
    pub fn ping(&mut self) -> i64 {
        self.session.ping()
    }

    /// Closes the connection locally. Pending requests stay queued for [`reconnect`](Self::reconnect).
    pub fn close(&mut self) {
        self.close_with(CloseReason::Local);
    }

    /// Starts over on a new socket, keeping the key and the session: a fresh transport
    /// (new obfuscation keys), an unfinished handshake restarted, requests of unknown fate asked
    /// about with `msgs_state_req`.
    pub fn reconnect(&mut self, now: Now) {
        match new_link(&self.config, now, &mut self.rng) {
            Ok(l) => self.link = l,
            Err(_) => {
                self.close_with(CloseReason::Protocol);
                return;
            }
        }
        self.quick_acks.clear();
        self.quick_ack_order.clear();
        if self.key.is_some() {
            self.phase = Phase::Ready;
            self.session.on_reconnect(now);
        } else {
            self.phase = Phase::Ready;
            self.start_handshake(now);
        }
    }

    fn close_with(&mut self, reason: CloseReason) {
        if !matches!(self.phase, Phase::Closed) {
            self.phase = Phase::Closed;
            self.events.push_back(Event::Closed(reason));
        }
    }

    // --------------------------------------------------------------------------------- input

    /// Feeds bytes received from the socket (any split).
    pub fn handle_input(&mut self, now: Now, mut input: &[u8]) {
        while !input.is_empty() && !self.is_closed() {
            let consumed = match &mut self.link {
                Link::FakeTls { client, .. } => match client.decode(input) {
                    Ok((n, Status::Complete(()))) => {
                        let Link::FakeTls { client, .. } = core::mem::replace(
                            &mut self.link,
                            Link::Ready(Transport::Plain(Codec::new(
                                Framing::Intermediate,
                                Role::Client,
                            ))),
                        ) else {
                            return;
                        };
                        match client.into_codec(Some(self.config.dc_id), &mut self.rng) {
                            Ok(codec) => {
                                self.link = Link::Ready(Transport::Obfuscated(
                                    codec.with_max_frame_len(self.config.max_frame_len),
                                ))
                            }
                            Err(_) => self.close_with(CloseReason::Protocol),
                        }
                        n
                    }
                    Ok((n, Status::Partial)) => n,
                    Err(_) => {
                        self.close_with(CloseReason::Protocol);
                        return;
                    }
                },
                Link::Ready(t) => {
                    let padded = t.framing() == Some(Framing::PaddedIntermediate);
                    match t.decode(input) {
                        Ok((n, Status::Complete(frame))) => {
                            match frame {
                                Frame::Payload { data, .. } => {
                                    let data = if padded {
                                        transport::strip_padding(data)
                                    } else {
                                        data
                                    };
                                    self.rx.clear();
                                    self.rx.extend_from_slice(data);
                                    self.on_payload(now);
                                }
                                Frame::QuickAck(token) => {
                                    if let Some(id) = self.quick_acks.remove(&token.get()) {
                                        self.events.push_back(Event::QuickAck { id });
                                    }
                                }
                                Frame::TransportError(code) => self.on_transport_error(code),
                            }
                            n
                        }
                        Ok((n, Status::Partial)) => n,
                        Err(e) => {
                            self.on_decode_error(e);
                            return;
                        }
                    }
                }
            };
            if consumed == 0 {
                break;
            }
            input = input.get(consumed..).unwrap_or_default();
        }
    }

    fn on_decode_error(&mut self, _e: TransportError) {
        self.close_with(CloseReason::Protocol);
    }

    fn on_transport_error(&mut self, code: i32) {
        self.events.push_back(Event::TransportError(code));
        if code == -404 {
            self.events.push_back(Event::AuthKeyUnknown);
        }
        self.close_with(CloseReason::TransportError(code));
    }

    fn on_payload(&mut self, now: Now) {
        let is_plain = self
            .rx
            .get(..8)
            .is_some_and(|id| id.iter().all(|&b| b == 0));
        if is_plain {
            self.on_plain(now);
            return;
        }
        let Some(key) = self.key.as_ref() else {
            return; // encrypted before we have a key: nothing to decrypt it with
        };
        match message::decrypt_message(key, Side::Server, &mut self.rx) {
            Ok(m) => {
                let incoming = Incoming {
                    salt: m.salt.cast_signed(),
                    session_id: m.session_id.cast_signed(),
                    msg_id: m.msg_id.cast_signed(),
                    seq_no: m.seq_no.cast_signed(),
                    body: m.body,
                };
                self.session.handle_message(now, incoming, &mut self.rng);
                if self.session.is_closed() {
                    self.phase = Phase::Closed;
                }
            }
            Err(DecryptError::WrongAuthKeyId) => {
                // Another key's message on our connection: not ours to read; dropped.
            }
            Err(_) => self.close_with(CloseReason::Protocol),
        }
    }

    fn on_plain(&mut self, now: Now) {
        let Phase::Handshaking { hs, out, .. } = &mut self.phase else {
            return; // unencrypted messages are only expected during the handshake
        };
        let Ok((_, body)) = plain::unwrap(&self.rx) else {
            self.close_with(CloseReason::HandshakeFailed);
            return;
        };
        match hs.handle(now.unix, body, &mut self.rng) {
            Ok(ClientStep::Send(next)) => *out = Some(next),
            Ok(ClientStep::Done(result)) => {
                self.session
                    .on_key_created(result.server_salt.cast_signed(), result.time_offset);
                self.key = Some(result.auth_key.clone());
                self.phase = Phase::Ready;
                self.events.push_back(Event::Ready);
                self.events.push_back(Event::TimeSynced {
                    offset_secs: result.time_offset,
                });
            }
            Err(_) => self.close_with(CloseReason::HandshakeFailed),
        }
    }

    // -------------------------------------------------------------------------------- timers

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Handshaking { deadline, .. } => Some(*deadline),
            Phase::Ready => self.session.poll_timeout(),
            Phase::Closed => None,
        }
    }

    /// Runs what is due at `now`. Extra calls are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        match &self.phase {
            Phase::Handshaking { deadline, .. } => {
                if now.mono >= *deadline {
                    self.close_with(CloseReason::HandshakeTimeout);
                }
            }
            Phase::Ready => {
                self.session.handle_timeout(now);
                if self.session.is_closed() {
                    self.phase = Phase::Closed;
                }
            }
            Phase::Closed => {}
        }
    }

    // -------------------------------------------------------------------------------- output

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events
            .pop_front()
            .or_else(|| self.session.poll_event())
    }

    /// Appends the next bytes to send to `out`; `false` when there is nothing to send now.
    /// Call it until it returns `false` after every input, command or timeout.
    pub fn poll_transmit(&mut self, now: Now, out: &mut Vec<u8>) -> bool {
        let transport = match &mut self.link {
            Link::FakeTls { hello, .. } => {
                if hello.is_empty() {
                    return false;
                }
                out.append(hello);
                return true;
            }
            Link::Ready(t) => t,
        };
        match &mut self.phase {
            Phase::Closed => false,
            Phase::Handshaking { out: body, .. } => {
                let Some(body) = body.take() else {
                    return false;
                };
                let wire = plain::wrap(plain::msg_id_from_time(now.unix), &body);
                transport.encode(&wire, false, &mut self.rng, out).is_ok()
            }
            Phase::Ready => {
                let Some(key) = self.key.as_ref() else {
                    return false;
                };
                self.scratch.clear();
                self.scratch.resize(BODY_OFFSET, 0);
                let Some(h) = self.session.poll_message(now, &mut self.scratch) else {
                    return false;
                };
                let body_len = self.scratch.len().saturating_sub(BODY_OFFSET);
                let Some(cap) = max_encrypted_len(body_len, &self.config.padding) else {
                    self.close_with(CloseReason::Protocol);
                    return false;
                };
                self.scratch.resize(cap.max(self.scratch.len()), 0);
                let header = MessageHeader {
                    salt: h.salt.cast_unsigned(),
                    session_id: h.session_id.cast_unsigned(),
                    msg_id: h.msg_id.cast_unsigned(),
                    seq_no: h.seq_no.cast_unsigned(),
                };
                let enc = match message::encrypt_message(
                    key,
                    Side::Client,
                    &header,
                    body_len,
                    &mut self.scratch,
                    &self.config.padding,
                    &mut self.rng,
                ) {
                    Ok(e) => e,
                    Err(_) => {
                        self.close_with(CloseReason::Protocol);
                        return false;
                    }
                };
                let quick_ack = self.config.transport.quick_ack && h.first_request.is_some();
                if let (true, Some(id)) = (quick_ack, h.first_request) {
                    if self.quick_ack_order.len() >= MAX_QUICK_ACKS
                        && let Some(old) = self.quick_ack_order.pop_front()
                    {
                        self.quick_acks.remove(&old);
                    }
                    self.quick_acks.insert(enc.quick_ack_token, id);
                    self.quick_ack_order.push_back(enc.quick_ack_token);
                }
                let wire = self.scratch.get(..enc.len).unwrap_or_default();
                transport
                    .encode(wire, quick_ack, &mut self.rng, out)
                    .is_ok()
            }
        }
    }
}

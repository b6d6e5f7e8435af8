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
use crate::handshake::{ClientConfig, ClientHandshake, ClientStep, RsaKeySet};
use crate::plain;
use crate::session::{
    ClientSession, CloseReason, Event, Incoming, InvokeError, RequestId, SavedSession,
    SessionConfig,
};
use crate::time::{Instant, Now};
use crate::tl::{RemoteCall, Serialize};
use crate::transport::{
    self, Codec, FakeTlsClient, Frame, Framing, HttpRequestId, HttpResponse, HttpWaitConfig,
    ObfuscatedCodec, ProxySecret, Role, Status, Transport, TransportError, WsFraming, WsTransport,
};

/// How the client talks to the server at the transport layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The framing (a `dd`/`ee` secret forces padded intermediate).
    pub framing: Framing,
    /// Obfuscate the stream (obfuscated2). Implied by a secret and by WebSocket.
    pub obfuscated: bool,
    /// An MTProxy secret (plain, `dd` or `ee`).
    pub secret: Option<ProxySecret>,
    /// Ask the server for quick acks of requests.
    pub quick_ack: bool,
    /// Carry the (always obfuscated) stream over WebSocket (`mtproto_transports.md`).
    pub websocket: Option<WsFraming>,
    /// The HTTP transport instead of a byte stream (`framing`, obfuscation, secrets and quick
    /// acks do not apply): the long poll's `http_wait` parameters. See
    /// [`Connection::poll_http_request`].
    pub http: Option<HttpWaitConfig>,
}

impl TransportConfig {
    /// A plain (unobfuscated) framing.
    pub fn plain(framing: Framing) -> Self {
        Self {
            framing,
            obfuscated: false,
            secret: None,
            quick_ack: false,
            websocket: None,
            http: None,
        }
    }

    /// The HTTP transport, with the spec's `http_wait` defaults for the long poll (0, 0,
    /// 25000 ms); set [`http`](Self::http) for others.
    pub fn http() -> Self {
        Self {
            http: Some(HttpWaitConfig::default()),
            ..Self::plain(Framing::Intermediate)
        }
    }

    /// An obfuscated framing (optionally through an MTProxy secret).
    pub fn obfuscated(framing: Framing, secret: Option<ProxySecret>) -> Self {
        Self {
            framing,
            obfuscated: true,
            secret,
            quick_ack: false,
            websocket: None,
            http: None,
        }
    }

    /// Obfuscated `framing` over WebSocket: the connection does the upgrade and the framing
    /// ([`WsFraming::Codec`]; the upgrade must finish within
    /// [`ConnectionConfig::handshake_timeout_ms`]) or the driver does
    /// ([`WsFraming::External`]: feed the message payloads, send each `poll_transmit` output as
    /// one binary message). Obfuscation is implied; [`Framing::Full`] and fake-TLS secrets
    /// cannot be used (the connection closes at once with [`CloseReason::Protocol`]).
    pub fn websocket(framing: Framing, websocket: WsFraming) -> Self {
        Self {
            framing,
            obfuscated: true,
            secret: None,
            quick_ack: false,
            websocket: Some(websocket),
            http: None,
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
    /// Perfect forward secrecy (`api_pfs.md`): encrypt with temporary keys bound to the
    /// permanent one, never with the permanent key itself.
    pub pfs: Option<PfsConfig>,
    /// HTTP transport: a request gets this many ms beyond the `max_wait` it asked for before
    /// it counts as failed (gotd uses 5 s).
    pub http_timeout_margin_ms: u64,
    /// HTTP transport: requests outstanding at most (the long poll included). At least 2 are
    /// used (a smaller value counts as 2): the long poll holds one for up to its `max_wait`,
    /// and the request lane needs another.
    pub http_max_requests: usize,
    /// HTTP transport: the slowest upload rate (bytes/s) a request's deadline allows for: a
    /// body of `n` bytes gets `n * 1000 / rate` ms on top of `max_wait` + the margin, so a large
    /// upload on a slow link is not counted as failed (and sent again) while still in flight.
    pub http_min_upload_rate: u64,
}

/// How temporary keys are made and renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfsConfig {
    /// Lifetime asked for each temporary key, seconds.
    pub expires_in_secs: u32,
    /// A new temporary key is made this many seconds before the current one expires.
    pub renew_before_secs: u32,
    /// `auth.bindTempAuthKey` retries on `ENCRYPTED_MESSAGE_INVALID` for a permanent key made
    /// less than 60 s ago (`api_pfs.md`); for an older key that error closes the connection
    /// with [`CloseReason::BindFailed`] and the application decides (the crate never replaces
    /// a permanent key by itself).
    pub max_bind_retries: u32,
}

impl Default for PfsConfig {
    fn default() -> Self {
        Self {
            expires_in_secs: 86_400,
            renew_before_secs: 600,
            max_bind_retries: 3,
        }
    }
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
            pfs: None,
            http_timeout_margin_ms: 5_000,
            http_max_requests: 8,
            http_min_upload_rate: 16 * 1024,
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
    /// When the permanent key was made (server unix seconds), if known: under PFS a key younger
    /// than 60 s may meet `ENCRYPTED_MESSAGE_INVALID` while the DCs catch up (`api_pfs.md`).
    pub key_created_at: Option<i64>,
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
    /// The HTTP transport: no stream; packets go through `poll_http_request`.
    Http,
}

/// One HTTP request in flight.
struct HttpOutstanding {
    long_poll: bool,
    sent_at: Instant,
    deadline: Instant,
    /// The encrypted message it carried (asked about if the request is lost).
    msg_id: Option<i64>,
    /// It carried an unencrypted (handshake) message.
    plain: bool,
}

/// The HTTP lanes: the requests in flight and the long poll's throttle.
#[derive(Default)]
struct HttpLanes {
    next_id: u64,
    outstanding: BTreeMap<u64, HttpOutstanding>,
    /// The long poll is re-armed no earlier than this (after a fast empty answer or a failure).
    poll_not_before: Option<Instant>,
}

/// A long poll that comes back empty faster than `max_wait / 2` waits this long before the next
/// one (gotd's throttle of servers that answer at once).
const HTTP_THROTTLE_MICROS: u64 = 500_000;

/// Which output is being made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    Stream,
    HttpRequest,
    HttpLongPoll,
}

/// A packet made by `next_packet`.
enum Packet {
    /// An unencrypted message (the handshake).
    Plain(Vec<u8>),
    /// An encrypted message, in `scratch[..len]`.
    Sealed {
        len: usize,
        quick_ack: bool,
        msg_id: i64,
        /// It carries no `http_wait` (the PFS binding): the server's defaults apply.
        no_wait: bool,
    },
}

/// A key being created: the machine, the next unencrypted body to send, its deadline.
struct KeyJob {
    hs: ClientHandshake,
    out: Option<Vec<u8>>,
    deadline: Instant,
    temp: bool,
}

enum Phase {
    Handshaking(KeyJob),
    Ready,
    Closed,
}

/// The temporary key in use (PFS) and its binding.
struct Temp {
    expires_at: i64,
    bind: Bind,
    retries: u32,
    renew_at: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bind {
    /// `auth.bindTempAuthKey` must be sent (again, with the id of the earlier attempt).
    Send(Option<RequestId>),
    Sent(RequestId),
    Bound,
}

const MSG_CONTAINER_ID: u32 = crate::tl::schema::types::MsgContainer::CONSTRUCTOR_ID;

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
    /// The key messages are encrypted with (the temporary key under PFS).
    key: Option<AuthKey>,
    /// The permanent key.
    perm_key: Option<AuthKey>,
    /// When the permanent key was made, server unix seconds (for the 60 s rule of PFS).
    perm_made_at: Option<i64>,
    temp: Option<Temp>,
    /// A temporary key being made ahead of expiry while the current one serves.
    renewal: Option<KeyJob>,
    session: ClientSession,
    /// Plaintext/encryption scratch buffer (reused: no allocation per message once grown).
    scratch: Vec<u8>,
    /// Incoming payload scratch buffer.
    rx: Vec<u8>,
    quick_acks: BTreeMap<u32, RequestId>,
    quick_ack_order: VecDeque<u32>,
    events: VecDeque<Event>,
    /// Deadline of a transport's own handshake (a WebSocket upgrade, a fake-TLS ServerHello).
    link_deadline: Option<Instant>,
    http: HttpLanes,
    /// The last encrypted message handled was an empty `msg_container` (an expired long poll).
    last_was_empty: bool,
}

impl<R> fmt::Debug for Connection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Handshaking(_) => "handshaking",
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
    if t.http.is_some() {
        return Ok(Link::Http);
    }
    if let Some(ws) = &t.websocket {
        // The spec makes obfuscation mandatory over WebSocket: always obfuscated here.
        if t.secret.as_ref().is_some_and(ProxySecret::is_fake_tls) {
            return Err(transport::EncodeError::BadWebSocketTarget);
        }
        let codec = ObfuscatedCodec::client(t.framing, Some(config.dc_id), t.secret.as_ref(), rng)?
            .with_max_frame_len(config.max_frame_len);
        return Ok(Link::Ready(match ws {
            WsFraming::External => Transport::Obfuscated(codec),
            WsFraming::Codec { host, path } => Transport::WebSocket(alloc::boxed::Box::new(
                WsTransport::client(host, path, codec, rng)?
                    .with_max_frame_len(config.max_frame_len),
            )),
        }));
    }
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
        c.start_handshake(now, false);
        c
    }

    /// A connection that uses a key made earlier, continuing the saved session.
    /// Under PFS a new temporary key is made and bound first; the saved session belonged to an
    /// earlier temporary key, so only its time offset is kept.
    pub fn resume(config: ConnectionConfig, state: ResumeState, rng: R, now: Now) -> Self {
        let session = ClientSession::restore(config.session.clone(), &state.session);
        let pfs = config.pfs.is_some();
        let mut c = Self::build(config, rng, session, Some(state.auth_key), now);
        c.perm_made_at = state.key_created_at;
        if matches!(c.phase, Phase::Closed) {
            return c;
        }
        if pfs {
            c.start_handshake(now, true);
        } else {
            c.key = c.perm_key.clone();
            c.session.on_reconnect(now);
            c.events.push_back(Event::Ready);
        }
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
            key: None,
            perm_key: key,
            perm_made_at: None,
            temp: None,
            renewal: None,
            session,
            scratch: Vec::new(),
            rx: Vec::new(),
            quick_acks: BTreeMap::new(),
            quick_ack_order: VecDeque::new(),
            events: VecDeque::new(),
            link_deadline: None,
            http: HttpLanes::default(),
            last_was_empty: false,
        };
        c.set_link_deadline(now);
        if matches!(c.phase, Phase::Closed) {
            c.events.push_back(Event::Closed(CloseReason::Protocol));
        }
        c
    }

    fn new_key_job(&mut self, now: Now, temp: bool) -> Option<KeyJob> {
        let mut config =
            ClientConfig::new(self.config.rsa_keys.clone(), i32::from(self.config.dc_id));
        if temp {
            let expires_in = self.config.pfs.map_or(86_400, |p| p.expires_in_secs);
            config = config.temporary(expires_in);
        }
        let mut hs = ClientHandshake::new(config);
        let first = hs.start(&mut self.rng).ok()?;
        Some(KeyJob {
            hs,
            out: Some(first),
            deadline: now
                .mono
                .saturating_add_micros(self.config.handshake_timeout_ms.saturating_mul(1000)),
            temp,
        })
    }

    fn start_handshake(&mut self, now: Now, temp: bool) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        match self.new_key_job(now, temp) {
            Some(job) => self.phase = Phase::Handshaking(job),
            None => self.close_with(CloseReason::HandshakeFailed),
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

    /// The permanent auth key, once it exists.
    pub fn auth_key(&self) -> Option<&AuthKey> {
        self.perm_key.as_ref()
    }

    /// The key messages are encrypted with now (under PFS, the bound temporary key).
    pub fn message_key(&self) -> Option<&AuthKey> {
        self.key.as_ref()
    }

    /// Under PFS: whether the current temporary key is bound.
    pub fn is_bound(&self) -> bool {
        self.temp.as_ref().is_some_and(|t| t.bind == Bind::Bound)
    }

    /// The session layer (read-only: counters, clock, pending requests).
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// What to persist to continue later (`None` before the key exists).
    pub fn export(&self) -> Option<ResumeState> {
        Some(ResumeState {
            auth_key: self.perm_key.clone()?,
            session: self.session.export(),
            key_created_at: self.perm_made_at,
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
        self.set_link_deadline(now);
        self.quick_acks.clear();
        self.quick_ack_order.clear();
        self.http = HttpLanes::default();
        self.renewal = None;
        self.phase = Phase::Ready;
        // Whatever comes next, the session lives on: forget pings, ask about requests in
        // flight, reopen it if a pong timeout closed it.
        self.session.on_reconnect(now);
        let server_secs = self.session.clock().server_nanos(now.unix) / 1_000_000_000;
        match (&self.perm_key, &self.temp, self.config.pfs.is_some()) {
            (None, _, _) => self.start_handshake(now, false),
            // PFS: a temporary key that is gone (-404), expired or never bound is replaced.
            (Some(_), None, true) => self.start_handshake(now, true),
            (Some(_), Some(t), true) if t.bind != Bind::Bound || t.expires_at <= server_secs => {
                self.temp = None;
                self.start_handshake(now, true);
            }
            _ => {}
        }
    }

    /// Whether the transport still runs its own handshake (WebSocket upgrade, fake TLS).
    fn link_pending(&self) -> bool {
        match &self.link {
            Link::FakeTls { .. } => true,
            Link::Http => false,
            Link::Ready(t) => !t.is_open(),
        }
    }

    fn set_link_deadline(&mut self, now: Now) {
        self.link_deadline = self.link_pending().then(|| {
            now.mono
                .saturating_add_micros(self.config.handshake_timeout_ms.saturating_mul(1000))
        });
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
                // HTTP: bodies come through `handle_http_response`.
                Link::Http => return,
                Link::Ready(t) => match t.decode(input) {
                    Ok((n, Status::Complete(frame))) => {
                        match frame {
                            Frame::Payload { data, .. } => {
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
                },
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
            if self.config.pfs.is_some() && self.temp.is_some() {
                // The server forgot the temporary key (allowed at any time): the next
                // connection makes and binds a new one. The permanent key is not in question.
                self.temp = None;
            } else {
                self.events.push_back(Event::AuthKeyUnknown);
            }
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
                self.last_was_empty = m.body.len() == 8
                    && m.body.get(..4) == Some(&MSG_CONTAINER_ID.to_le_bytes()[..])
                    && m.body.get(4..8) == Some(&[0u8; 4][..]);
                let incoming = Incoming {
                    salt: m.salt,
                    session_id: m.session_id,
                    msg_id: m.msg_id,
                    seq_no: m.seq_no,
                    body: m.body,
                };
                self.session.handle_message(now, incoming, &mut self.rng);
                self.on_internal_results(now);
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
        let job = match &mut self.phase {
            Phase::Handshaking(job) => job,
            Phase::Ready => match self.renewal.as_mut() {
                Some(job) => job,
                None => return, // unencrypted messages are only expected during a handshake
            },
            Phase::Closed => return,
        };
        let Ok((_, body)) = plain::unwrap(&self.rx) else {
            self.close_with(CloseReason::HandshakeFailed);
            return;
        };
        let temp = job.temp;
        match job.hs.handle(now.unix, body, &mut self.rng) {
            Ok(ClientStep::Send(next)) => job.out = Some(next),
            Ok(ClientStep::Done(result)) => {
                self.renewal = None;
                let salt = result.server_salt;
                if !temp {
                    self.perm_key = Some(result.auth_key.clone());
                    self.perm_made_at = Some(self.server_secs(now));
                    if self.config.pfs.is_some() {
                        // The permanent key only signs bindings: make the temporary key now.
                        self.session.on_key_created(salt, result.time_offset);
                        self.start_handshake(now, true);
                        return;
                    }
                    self.key = Some(result.auth_key.clone());
                    self.session.on_key_created(salt, result.time_offset);
                    self.phase = Phase::Ready;
                    self.events.push_back(Event::Ready);
                } else {
                    // A temporary key: its own session; nothing but the binding until bound.
                    let renewing = self.key.is_some();
                    self.key = Some(result.auth_key.clone());
                    self.session.on_key_created(salt, result.time_offset);
                    if renewing || self.session.export().last_msg_id != 0 {
                        self.session.new_session(&mut self.rng);
                    }
                    self.session.set_hold_requests(true);
                    self.temp = Some(Temp {
                        expires_at: result.expires_at.unwrap_or(0),
                        bind: Bind::Send(None),
                        retries: 0,
                        renew_at: None,
                    });
                    self.phase = Phase::Ready;
                }
                self.events.push_back(Event::TimeSynced {
                    offset_secs: result.time_offset,
                });
            }
            Err(_) => {
                if matches!(self.phase, Phase::Ready) {
                    // A failed renewal: the current key still serves; try again later.
                    self.renewal = None;
                    self.schedule_renewal(now, 30);
                } else {
                    self.close_with(CloseReason::HandshakeFailed);
                }
            }
        }
    }

    fn server_secs(&self, now: Now) -> i64 {
        self.session.clock().server_nanos(now.unix) / 1_000_000_000
    }

    fn schedule_renewal(&mut self, now: Now, min_delay_secs: u64) {
        let Some(pfs) = self.config.pfs else {
            return;
        };
        let server_secs = self.session.clock().server_nanos(now.unix) / 1_000_000_000;
        if let Some(t) = self.temp.as_mut() {
            let at = t
                .expires_at
                .saturating_sub(i64::from(pfs.renew_before_secs))
                .saturating_sub(server_secs);
            let secs = u64::try_from(at).unwrap_or(0).max(min_delay_secs);
            t.renew_at = Some(
                now.mono
                    .saturating_add_micros(secs.saturating_mul(1_000_000)),
            );
        }
    }

    fn on_internal_results(&mut self, now: Now) {
        while let Some((id, result)) = self.session.take_internal_result() {
            let Some(t) = self.temp.as_mut() else {
                continue;
            };
            if t.bind != Bind::Sent(id) {
                continue;
            }
            match result {
                Ok(body) if body.get(..4) == Some(&crate::tl::BOOL_TRUE_ID.to_le_bytes()[..]) => {
                    t.bind = Bind::Bound;
                    self.session.set_hold_requests(false);
                    self.schedule_renewal(now, 0);
                    self.events.push_back(Event::Ready);
                }
                Err(e) if e.is("ENCRYPTED_MESSAGE_INVALID") => {
                    let server_now = self.session.clock().server_nanos(now.unix) / 1_000_000_000;
                    let fresh_perm = self
                        .perm_made_at
                        .is_some_and(|at| server_now.saturating_sub(at) < 60);
                    let max = self.config.pfs.map_or(0, |p| p.max_bind_retries);
                    if fresh_perm && t.retries < max {
                        t.retries = t.retries.saturating_add(1);
                        t.bind = Bind::Send(Some(id));
                    } else {
                        // api_pfs.md: for a permanent key older than 60 s this error means the
                        // key is gone; the application decides what to do about it.
                        self.close_with(CloseReason::BindFailed {
                            error: e,
                            permanent_key_invalid: !fresh_perm,
                        });
                    }
                }
                Ok(_) => self.close_with(CloseReason::BindFailed {
                    error: crate::session::RpcError::new(-500, "BIND_NOT_TRUE"),
                    permanent_key_invalid: false,
                }),
                Err(error) => self.close_with(CloseReason::BindFailed {
                    error,
                    permanent_key_invalid: false,
                }),
            }
        }
    }

    // -------------------------------------------------------------------------------- timers

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = self.link_deadline.filter(|_| self.link_pending());
        let http = self.http_timeout();
        let phase = match &self.phase {
            Phase::Handshaking(job) => Some(http.map_or(job.deadline, |h| h.min(job.deadline))),
            Phase::Ready => {
                let renew = self
                    .renewal
                    .as_ref()
                    .map(|j| j.deadline)
                    .or_else(|| self.temp.as_ref().and_then(|t| t.renew_at));
                [self.session.poll_timeout(), renew, http]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Phase::Closed => return None,
        };
        [phase, link].into_iter().flatten().min()
    }

    /// Runs what is due at `now`. Extra calls are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.link_pending() && self.link_deadline.is_some_and(|d| now.mono >= d) {
            self.close_with(CloseReason::HandshakeTimeout);
            return;
        }
        self.http_expire(now);
        match &self.phase {
            Phase::Handshaking(job) => {
                if now.mono >= job.deadline {
                    self.close_with(CloseReason::HandshakeTimeout);
                }
            }
            Phase::Ready => {
                if self
                    .renewal
                    .as_ref()
                    .is_some_and(|j| now.mono >= j.deadline)
                {
                    self.renewal = None;
                    self.schedule_renewal(now, 30);
                }
                let due = self
                    .temp
                    .as_ref()
                    .and_then(|t| t.renew_at)
                    .is_some_and(|at| now.mono >= at);
                if due && self.renewal.is_none() {
                    if let Some(t) = self.temp.as_mut() {
                        t.renew_at = None;
                    }
                    self.renewal = self.new_key_job(now, true);
                }
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
    /// Call it until it returns `false` after every input, command or timeout. (HTTP
    /// transport: always `false`; see [`poll_http_request`](Self::poll_http_request).)
    pub fn poll_transmit(&mut self, now: Now, out: &mut Vec<u8>) -> bool {
        match &mut self.link {
            Link::FakeTls { hello, .. } => {
                if hello.is_empty() {
                    return false;
                }
                out.append(hello);
                return true;
            }
            Link::Http => return false,
            Link::Ready(transport) => {
                // The transport's own bytes (WebSocket upgrade, pong, close answer) go first.
                if transport.poll_output(&mut self.rng, out) {
                    return true;
                }
                if !transport.is_open() {
                    return false;
                }
            }
        }
        let Some(packet) = self.next_packet(now, Lane::Stream) else {
            return false;
        };
        let Link::Ready(transport) = &mut self.link else {
            return false;
        };
        match packet {
            Packet::Plain(wire) => transport.encode(&wire, false, &mut self.rng, out).is_ok(),
            Packet::Sealed { len, quick_ack, .. } => {
                let wire = self.scratch.get(..len).unwrap_or_default();
                transport
                    .encode(wire, quick_ack, &mut self.rng, out)
                    .is_ok()
            }
        }
    }

    /// The next MTProto packet: an unencrypted handshake message, or an encrypted one left in
    /// `scratch`.
    fn next_packet(&mut self, now: Now, lane: Lane) -> Option<Packet> {
        let job = match &mut self.phase {
            Phase::Closed => return None,
            Phase::Handshaking(job) => Some(job),
            Phase::Ready => self.renewal.as_mut(),
        };
        if lane != Lane::HttpLongPoll
            && let Some(body) = job.and_then(|j| j.out.take())
        {
            return Some(Packet::Plain(plain::wrap(
                plain::msg_id_from_time(now.unix),
                &body,
            )));
        }
        if !matches!(self.phase, Phase::Ready) {
            return None;
        }
        let key = self.key.as_ref()?;
        self.scratch.clear();
        self.scratch.resize(BODY_OFFSET, 0);
        // Under PFS the binding goes first, alone, built around its own msg_id.
        let rebuild = if lane == Lane::HttpLongPoll {
            None
        } else {
            self.session.take_rebuild()
        };
        let bind_now = match (self.temp.as_mut(), rebuild) {
            (_, _) if lane == Lane::HttpLongPoll => None,
            (Some(t), Some(id)) if t.bind == Bind::Sent(id) => Some(Some(id)),
            (Some(t), _) => match t.bind {
                Bind::Send(id) => Some(id),
                _ => None,
            },
            _ => None,
        };
        let http_wait = self.config.transport.http;
        let h = match (bind_now, self.perm_key.as_ref(), self.temp.as_mut()) {
            (Some(prev), Some(perm), Some(t)) => {
                let rng = &mut self.rng;
                let expires_at = i32::try_from(t.expires_at).unwrap_or(i32::MAX);
                let mut build = |msg_id: i64, session_id: i64| {
                    crate::handshake::pfs::bind_temp_auth_key(
                        perm, key, session_id, expires_at, msg_id, rng,
                    )
                    .ok()
                };
                match self
                    .session
                    .send_built(now, &mut self.scratch, prev, &mut build)
                {
                    Some((h, id)) => {
                        t.bind = Bind::Sent(id);
                        h
                    }
                    None => {
                        self.close_with(CloseReason::Protocol);
                        return None;
                    }
                }
            }
            _ => {
                let polled = match (lane, http_wait) {
                    (Lane::Stream, _) | (_, None) => {
                        self.session.poll_message(now, &mut self.scratch)
                    }
                    (Lane::HttpRequest, Some(w)) => {
                        // The request lane is answered at once (max_wait 0); what the server
                        // has later comes on the long poll.
                        let w = HttpWaitConfig { max_wait: 0, ..w };
                        self.session
                            .poll_message_http(now, &mut self.scratch, w, false)
                    }
                    (Lane::HttpLongPoll, Some(w)) => {
                        self.session
                            .poll_message_http(now, &mut self.scratch, w, true)
                    }
                };
                polled?
            }
        };
        let no_wait = bind_now.is_some();
        let body_len = self.scratch.len().saturating_sub(BODY_OFFSET);
        let Some(cap) = max_encrypted_len(body_len, &self.config.padding) else {
            self.close_with(CloseReason::Protocol);
            return None;
        };
        self.scratch.resize(cap.max(self.scratch.len()), 0);
        let header = MessageHeader {
            salt: h.salt,
            session_id: h.session_id,
            msg_id: h.msg_id,
            seq_no: h.seq_no,
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
                return None;
            }
        };
        // No quick acks over HTTP: there is no frame to ask with nor one to carry the token.
        let quick_ack =
            self.config.transport.quick_ack && http_wait.is_none() && h.first_request.is_some();
        if let (true, Some(id)) = (quick_ack, h.first_request) {
            if self.quick_ack_order.len() >= MAX_QUICK_ACKS
                && let Some(old) = self.quick_ack_order.pop_front()
            {
                self.quick_acks.remove(&old);
            }
            self.quick_acks.insert(enc.quick_ack_token, id);
            self.quick_ack_order.push_back(enc.quick_ack_token);
        }
        Some(Packet::Sealed {
            len: enc.len,
            quick_ack,
            msg_id: h.msg_id,
            no_wait,
        })
    }
}

/// # The HTTP transport ([`TransportConfig::http`])
///
/// No byte stream: every MTProto packet is the body of one HTTP `POST` (to `/api`), and every
/// response body is one packet (`mtproto_mtproto-transports.md`; field notes §4). The
/// connection never opens anything; the driver owns an HTTP client and runs this loop:
///
/// ```text
/// while let Some(id) = conn.poll_http_request(now, &mut body) { POST body; remember id }
/// a response arrived    -> conn.handle_http_response(now, id, HttpResponse::Body(&bytes))
///   (non-2xx status)    -> conn.handle_http_response(now, id, HttpResponse::Status(code))
///   (error, no answer)  -> conn.handle_http_response(now, id, HttpResponse::Failed)
/// timer                 -> conn.handle_timeout(now) at conn.poll_timeout()
/// events                -> conn.poll_event(), as over TCP
/// ```
///
/// Requests are independent: the driver sends them concurrently (at most
/// [`ConnectionConfig::http_max_requests`] are out at once), on one keep-alive connection or
/// several. Two kinds come out:
/// - **request lane**: the handshake's unencrypted messages (each in its own POST, the answer
///   in its response), and every encrypted message the session has to send, with
///   `http_wait(max_delay, wait_after, 0)` so that the server answers at once with what it
///   has (acks, answers already made);
/// - **the long poll**: exactly one outstanding while the key is ready, carrying pending acks
///   and `http_wait` with the configured `max_wait`: the server holds it until it has
///   something to send (answers that came late, updates) or `max_wait` passed (an empty
///   container). It is re-armed as soon as its response arrives or fails; after an empty one
///   that came faster than `max_wait / 2`, or after a failure, only 500 ms later.
///
/// Every request has a deadline (its `max_wait`, plus
/// [`ConnectionConfig::http_timeout_margin_ms`], plus its upload time at
/// [`ConnectionConfig::http_min_upload_rate`]):
/// past it, it counts as [`HttpResponse::Failed`]. A failed request loses nothing: the
/// requests it carried are asked about with `msgs_state_req` (re-sent, or their answers
/// fetched again). A failed handshake message closes the connection
/// ([`CloseReason::HandshakeFailed`]; [`reconnect`](Connection::reconnect) starts over). A
/// status ≥ 300 is transport error `-status` (−404: the server does not know the key), and so
/// is a 4-byte body holding a negative code: the connection closes as over TCP; except
/// `502`/`503`/`504` on the long poll (a proxy cutting a long wait), which count as
/// [`HttpResponse::Failed`]. No quick acks.
impl<R: CryptoRng> Connection<R> {
    /// HTTP transport: the next request to send. Its body (one MTProto packet) is appended to
    /// `out`; the returned id names it in [`handle_http_response`](Self::handle_http_response).
    /// `None`: nothing to send now (or not in HTTP mode). Call until `None` after every input,
    /// command or timeout.
    pub fn poll_http_request(&mut self, now: Now, out: &mut Vec<u8>) -> Option<HttpRequestId> {
        let wait = self.config.transport.http?;
        if !matches!(self.link, Link::Http)
            || self.http.outstanding.len() >= self.config.http_max_requests.max(2)
        {
            return None;
        }
        let margin = self.config.http_timeout_margin_ms;
        let start = out.len();
        let (packet, long_poll) = match self.next_packet(now, Lane::HttpRequest) {
            Some(p) => (p, false),
            None => {
                let poll_wanted = matches!(self.phase, Phase::Ready)
                    && !self.http.outstanding.values().any(|o| o.long_poll)
                    && self.http.poll_not_before.is_none_or(|t| now.mono >= t);
                if !poll_wanted {
                    return None;
                }
                (self.next_packet(now, Lane::HttpLongPoll)?, true)
            }
        };
        let (msg_id, max_wait, plain) = match packet {
            Packet::Plain(wire) => {
                out.extend_from_slice(&wire);
                (None, 0, true)
            }
            Packet::Sealed {
                len,
                msg_id,
                no_wait,
                ..
            } => {
                out.extend_from_slice(self.scratch.get(..len).unwrap_or_default());
                let max_wait = if no_wait {
                    HttpWaitConfig::default().max_wait
                } else if long_poll {
                    wait.max_wait
                } else {
                    0
                };
                (Some(msg_id), max_wait, false)
            }
        };
        let body_len = u64::try_from(out.len().saturating_sub(start)).unwrap_or(u64::MAX);
        let upload = body_len
            .saturating_mul(1000)
            .checked_div(self.config.http_min_upload_rate)
            .unwrap_or(0);
        let ms = u64::try_from(max_wait)
            .unwrap_or(0)
            .saturating_add(margin)
            .saturating_add(upload);
        let id = self.http.next_id;
        self.http.next_id = self.http.next_id.wrapping_add(1);
        self.http.outstanding.insert(
            id,
            HttpOutstanding {
                long_poll,
                sent_at: now.mono,
                deadline: now.mono.saturating_add_micros(ms.saturating_mul(1000)),
                msg_id,
                plain,
            },
        );
        if long_poll {
            self.http.poll_not_before = None;
        }
        Some(HttpRequestId(id))
    }

    /// HTTP transport: what became of request `id`. A body is one MTProto packet (empty:
    /// nothing; 4 bytes: a transport error code); a status ≥ 300 is transport error `-status`;
    /// [`HttpResponse::Failed`] re-arms what the request was for. A late body (its request
    /// already timed out) is still read: messages are authenticated and deduplicated.
    pub fn handle_http_response(
        &mut self,
        now: Now,
        id: HttpRequestId,
        response: HttpResponse<'_>,
    ) {
        if !matches!(self.link, Link::Http) {
            return;
        }
        let sent = self.http.outstanding.remove(&id.0);
        let body = match response {
            HttpResponse::Status(code) if code < 300 => Some(&[][..]),
            HttpResponse::Body(body) => Some(body),
            _ => None,
        };
        match (response, body) {
            (_, Some(body)) => {
                let empty = self.on_http_body(now, body);
                if let Some(o) = sent.filter(|o| o.long_poll) {
                    let half = self
                        .config
                        .transport
                        .http
                        .map_or(0, |w| u64::try_from(w.max_wait).unwrap_or(0))
                        .saturating_mul(500);
                    let fast = now.mono.saturating_micros_since(o.sent_at) < half;
                    self.http.poll_not_before = (empty && fast)
                        .then(|| now.mono.saturating_add_micros(HTTP_THROTTLE_MICROS));
                }
            }
            // A proxy on the way may end a long poll it finds too long with a gateway error:
            // the poll failed, the connection did not.
            (HttpResponse::Status(502..=504), None)
                if sent.as_ref().is_some_and(|o| o.long_poll) =>
            {
                if let Some(o) = sent {
                    self.http_lost(now, &o);
                }
            }
            (HttpResponse::Status(code), None) => {
                self.on_transport_error(i32::from(code).saturating_neg());
            }
            (_, None) => {
                if let Some(o) = sent {
                    self.http_lost(now, &o);
                }
            }
        }
    }

    /// Requests sent and not answered yet (the long poll included).
    pub fn http_requests_outstanding(&self) -> usize {
        self.http.outstanding.len()
    }

    /// Reads one response body; whether it carried nothing (empty, a 4-byte code, an empty
    /// container).
    fn on_http_body(&mut self, now: Now, body: &[u8]) -> bool {
        if body.is_empty() {
            return true;
        }
        if let Ok(code) = <[u8; 4]>::try_from(body) {
            let code = i32::from_le_bytes(code);
            if code < 0 {
                self.on_transport_error(code);
            }
            return true;
        }
        if body.len() > self.config.max_frame_len || !body.len().is_multiple_of(4) {
            self.close_with(CloseReason::Protocol);
            return true;
        }
        self.last_was_empty = false;
        self.rx.clear();
        self.rx.extend_from_slice(body);
        self.on_payload(now);
        self.last_was_empty
    }

    /// A request that got no answer.
    fn http_lost(&mut self, now: Now, o: &HttpOutstanding) {
        if o.long_poll {
            self.http.poll_not_before = Some(now.mono.saturating_add_micros(HTTP_THROTTLE_MICROS));
        }
        if let Some(msg_id) = o.msg_id {
            self.session.on_message_lost(now, msg_id);
        }
        if o.plain {
            match self.phase {
                Phase::Handshaking(_) => self.close_with(CloseReason::HandshakeFailed),
                Phase::Ready if self.renewal.is_some() => {
                    self.renewal = None;
                    self.schedule_renewal(now, 30);
                }
                _ => {}
            }
        }
    }

    /// The earliest HTTP deadline: a request's, or the long poll's re-arm.
    fn http_timeout(&self) -> Option<Instant> {
        if !matches!(self.link, Link::Http) {
            return None;
        }
        let deadline = self.http.outstanding.values().map(|o| o.deadline).min();
        let rearm = self
            .http
            .poll_not_before
            .filter(|_| !self.http.outstanding.values().any(|o| o.long_poll));
        [deadline, rearm].into_iter().flatten().min()
    }

    /// Requests past their deadline count as failed; a due re-arm needs no action here
    /// (`poll_http_request` makes it).
    fn http_expire(&mut self, now: Now) {
        if self.http.poll_not_before.is_some_and(|t| now.mono >= t) {
            self.http.poll_not_before = None;
        }
        let expired: Vec<u64> = self
            .http
            .outstanding
            .iter()
            .filter(|(_, o)| now.mono >= o.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(o) = self.http.outstanding.remove(&id) {
                self.http_lost(now, &o);
            }
        }
    }
}

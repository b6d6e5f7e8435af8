//! What the blocking and the tokio client share: the configuration, the errors, and the
//! [`Engine`] — the core [`Connection`] plus the driver's own state machine (connecting →
//! handshaking → ready → draining), the attempt limiter and the key file. The engine holds no
//! MTProto rule: it forwards bytes, time and commands to the core and sorts the core's events.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant as StdInstant};

use mtproto_core::connection::{CloseReason, Connection, ConnectionConfig, Event, RequestId};
use mtproto_core::session::RpcError;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::clock::Clock;
use crate::keyfile::{KeyFile, KeyFileError};
use crate::limiter::AttemptLimiter;

/// The driver's state (one explicit state machine; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No socket: waiting for the attempt limiter, or connecting.
    Connecting,
    /// Socket open, the auth key is being created.
    Handshaking,
    /// Requests flow.
    Ready,
    /// Closing: the last bytes (acks) go out, then the socket closes.
    Draining,
    /// Closed for good (by the application, or after a fatal error).
    Closed,
}

/// Driver settings around a core [`ConnectionConfig`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server: `host:port` (TCP), or with feature `websocket` a `ws://host[:port]/apiws`
    /// or `wss://…` URL (the transport must then be obfuscated), or with feature `http` an
    /// `http://host[:port][/api]` or `https://…` URL (the transport must then be
    /// `TransportConfig::http()`). Resolved at every attempt.
    pub addr: String,
    /// The core connection's settings (DC, transport, RSA keys, session limits and timers).
    pub connection: ConnectionConfig,
    /// Where the auth key lives; `None` keeps it in memory only.
    pub key_file: Option<PathBuf>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Default timeout of one request.
    pub request_timeout: Duration,
    /// Requests in flight at most; further callers wait.
    pub max_in_flight: usize,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_failures: Option<u32>,
    /// A fixed seed for the random source (tests, `--seed`); `None` seeds from the OS.
    pub seed: Option<[u8; 32]>,
    /// TLS settings for `wss://` and `https://` (feature `tls`); `None` trusts Mozilla's root certificates.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl ClientConfig {
    /// Defaults around `connection` for `addr`.
    pub fn new(addr: impl Into<String>, connection: ConnectionConfig) -> Self {
        Self {
            addr: addr.into(),
            connection,
            key_file: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 64,
            max_failures: Some(5),
            seed: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Where to connect, checked: a WebSocket URL must parse and the transport inside must be
    /// obfuscated (`mtproto_transports.md`: "transport obfuscation is required").
    pub(crate) fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let http_mode = self.connection.transport.http.is_some();
        if !self.addr.contains("://") {
            if http_mode {
                return Err(ClientError::Config(format!(
                    "{}: the HTTP transport needs an http:// or https:// URL",
                    self.addr
                )));
            }
            return Ok(Endpoint::Tcp(self.addr.clone()));
        }
        #[cfg(feature = "http")]
        if crate::http::HttpUrl::is_http(&self.addr) {
            let url = crate::http::HttpUrl::parse(&self.addr).map_err(ClientError::Config)?;
            if !http_mode {
                return Err(ClientError::Config(format!(
                    "{}: an http(s):// URL needs the HTTP transport (TransportConfig::http())",
                    self.addr
                )));
            }
            #[cfg(not(feature = "tls"))]
            if url.secure {
                return Err(ClientError::Config(format!(
                    "{}: https:// needs the `tls` feature",
                    self.addr
                )));
            }
            return Ok(Endpoint::Http(url));
        }
        if http_mode {
            return Err(ClientError::Config(format!(
                "{}: the HTTP transport needs an http:// or https:// URL (feature `http`)",
                self.addr
            )));
        }
        #[cfg(feature = "websocket")]
        {
            let url = crate::ws::WsUrl::parse(&self.addr).map_err(ClientError::Config)?;
            if !self.connection.transport.obfuscated {
                return Err(ClientError::Config(format!(
                    "{}: the WebSocket transport needs an obfuscated transport inside",
                    self.addr
                )));
            }
            #[cfg(not(feature = "tls"))]
            if url.secure {
                return Err(ClientError::Config(format!(
                    "{}: wss:// needs the `tls` feature",
                    self.addr
                )));
            }
            Ok(Endpoint::Ws(url))
        }
        #[cfg(not(feature = "websocket"))]
        Err(ClientError::Config(format!(
            "{}: only host:port is supported (ws:// and wss:// need the `websocket` feature)",
            self.addr
        )))
    }
}

/// A checked [`ClientConfig::addr`].
#[derive(Clone, Debug)]
pub(crate) enum Endpoint {
    /// `host:port` over TCP.
    Tcp(String),
    /// A WebSocket URL.
    #[cfg(feature = "websocket")]
    Ws(crate::ws::WsUrl),
    /// An HTTP URL (`POST` per packet).
    #[cfg(feature = "http")]
    Http(crate::http::HttpUrl),
}

impl Endpoint {
    /// The `host:port` the TCP connection goes to.
    pub(crate) fn authority(&self) -> String {
        match self {
            Endpoint::Tcp(a) => a.clone(),
            #[cfg(feature = "websocket")]
            Endpoint::Ws(u) => u.authority(),
            #[cfg(feature = "http")]
            Endpoint::Http(u) => u.authority(),
        }
    }
}

/// Why the client stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The key file cannot be used.
    KeyFile(KeyFileError),
    /// The server does not know our permanent auth key (`-404`). Never answered by making a
    /// new key: delete the key file to start over.
    AuthKeyUnknown,
    /// The server destroyed our auth key.
    AuthKeyDestroyed,
    /// Too many failed connection attempts in a row.
    GaveUp {
        /// Attempts that failed.
        failures: u32,
        /// The last failure.
        last: String,
    },
    /// The client was closed.
    Closed,
    /// The operating system gave no entropy to seed the random source.
    Entropy(String),
    /// The configuration cannot work (a malformed URL, a plain transport inside a WebSocket).
    Config(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::KeyFile(e) => e.fmt(f),
            ClientError::AuthKeyUnknown => f.write_str(
                "the server does not know our auth key (-404); delete the key file to create a new one",
            ),
            ClientError::AuthKeyDestroyed => f.write_str("the server destroyed our auth key"),
            ClientError::GaveUp { failures, last } => {
                write!(f, "gave up after {failures} failed connection attempts: {last}")
            }
            ClientError::Closed => f.write_str("the client is closed"),
            ClientError::Entropy(e) => write!(f, "no OS entropy to seed the random source: {e}"),
            ClientError::Config(e) => write!(f, "configuration: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<KeyFileError> for ClientError {
    fn from(e: KeyFileError) -> Self {
        ClientError::KeyFile(e)
    }
}

/// Why a request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError {
    /// The server answered with `rpc_error`.
    Rpc(RpcError),
    /// No answer within the request timeout (the request was cancelled in the core).
    Timeout,
    /// The core refused the request (empty, unaligned or too large body).
    Invoke(mtproto_core::connection::InvokeError),
    /// The connection is over.
    Client(ClientError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rpc(e) => write!(f, "rpc_error {} {}", e.code, e.message),
            CallError::Timeout => f.write_str("request timed out"),
            CallError::Invoke(e) => e.fmt(f),
            CallError::Client(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

/// A fatal condition, kept so every later call reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fatal {
    AuthKeyUnknown,
    AuthKeyDestroyed,
    GaveUp(u32, String),
    Closed,
}

impl Fatal {
    pub(crate) fn to_error(&self) -> ClientError {
        match self {
            Fatal::AuthKeyUnknown => ClientError::AuthKeyUnknown,
            Fatal::AuthKeyDestroyed => ClientError::AuthKeyDestroyed,
            Fatal::GaveUp(n, s) => ClientError::GaveUp {
                failures: *n,
                last: s.clone(),
            },
            Fatal::Closed => ClientError::Closed,
        }
    }
}

/// What the engine reports to its driver.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A request finished.
    Answer(RequestId, Result<Vec<u8>, RpcError>),
    /// An update (a message that answers no request).
    Update(Vec<u8>),
    /// A pong.
    Pong { ping_id: i64, rtt: Duration },
    /// The core closed the connection: drop the socket (the engine decides whether to retry).
    Disconnect(CloseReason),
}

/// The core connection and the driver's state around it.
pub(crate) struct Engine {
    pub(crate) conn: Connection<ChaCha20Rng>,
    pub(crate) clock: Clock,
    pub(crate) state: State,
    pub(crate) fatal: Option<Fatal>,
    limiter: AttemptLimiter,
    jitter: ChaCha20Rng,
    key_file: Option<KeyFile>,
    max_failures: Option<u32>,
    /// The transport state `Connection::new`/`resume` built is for the first socket.
    first_socket: bool,
    /// The server answered on the current socket (something authenticated arrived).
    proven: bool,
    /// Whether the key came from the key file.
    pub(crate) resumed: bool,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("state", &self.state)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// ChaCha20 from a fixed seed (tests, `--seed`) or seeded from the OS (`None`).
pub(crate) fn seeded_rng(seed: Option<[u8; 32]>, stream: u64) -> Result<ChaCha20Rng, ClientError> {
    let mut r = match seed {
        Some(s) => ChaCha20Rng::from_seed(s),
        None => ChaCha20Rng::try_from_rng(&mut rand::rngs::SysRng)
            .map_err(|e| ClientError::Entropy(e.to_string()))?,
    };
    r.set_stream(stream);
    Ok(r)
}

impl Engine {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        config.endpoint()?;
        let key_file = config.key_file.as_ref().map(KeyFile::open).transpose()?;
        let saved = match &key_file {
            Some(k) => k.load()?,
            None => None,
        };
        let clock = Clock::new();
        let now = clock.now();
        let conn_rng = seeded_rng(config.seed, 0)?;
        let resumed = saved.is_some();
        let conn = match saved {
            Some(state) => {
                tracing::info!(auth_key_id = %format_args!("{:016x}", state.auth_key.id()), "reusing the saved auth key");
                Connection::resume(config.connection.clone(), state, conn_rng, now)
            }
            None => Connection::new(config.connection.clone(), conn_rng, now),
        };
        Ok(Self {
            conn,
            clock,
            state: State::Connecting,
            fatal: None,
            limiter: AttemptLimiter::new(),
            jitter: seeded_rng(config.seed, 1)?,
            key_file,
            max_failures: config.max_failures,
            first_socket: true,
            proven: false,
            resumed,
        })
    }

    /// How long to wait before the next connection attempt.
    pub(crate) fn connect_delay(&mut self) -> Duration {
        let j = self.jitter.next_u32();
        self.limiter.delay(StdInstant::now(), j)
    }

    pub(crate) fn on_attempt(&mut self) {
        self.limiter.attempt(StdInstant::now());
    }

    /// A TCP connect failed: counts against the limiter; may give up.
    pub(crate) fn on_connect_failed(&mut self, e: &io::Error) {
        tracing::info!(error = %e, "connection attempt failed");
        self.fail(e.to_string());
    }

    fn fail(&mut self, why: String) {
        self.limiter.failure(StdInstant::now());
        let n = self.limiter.consecutive_failures();
        if self.max_failures.is_some_and(|max| n >= max) {
            self.fatal = Some(Fatal::GaveUp(n, why));
            self.state = State::Closed;
        }
    }

    /// A socket is open: the core starts a fresh transport on it.
    pub(crate) fn on_connected(&mut self) {
        let now = self.clock.now();
        if !self.first_socket {
            self.conn.reconnect(now);
        }
        self.first_socket = false;
        self.proven = false;
        self.state = if self.conn.is_ready() {
            // Ask for a pong at once: the answer proves the server knows our key.
            self.conn.ping();
            State::Ready
        } else {
            State::Handshaking
        };
        tracing::debug!(state = ?self.state, "connected");
    }

    /// The socket closed or failed under us (`why` for the log).
    pub(crate) fn on_socket_closed(&mut self, why: &str) {
        if matches!(self.state, State::Closed | State::Draining) {
            self.state = State::Closed;
            return;
        }
        tracing::info!(why, "connection lost");
        self.conn.close();
        // Drain the core's own Closed(Local) event: it is ours.
        self.lost(why.to_string());
    }

    fn lost(&mut self, why: String) {
        self.save();
        if !self.proven {
            self.fail(why);
        }
        if self.fatal.is_none() {
            self.state = State::Connecting;
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let now = self.clock.now();
        self.conn.handle_input(now, bytes);
    }

    /// Runs the core's timers if they are due.
    pub(crate) fn on_timer(&mut self) {
        let now = self.clock.now();
        if self.conn.poll_timeout().is_some_and(|t| t <= now.mono) {
            self.conn.handle_timeout(now);
        }
    }

    /// When the core next needs [`on_timer`](Self::on_timer).
    pub(crate) fn next_timer(&self) -> Option<StdInstant> {
        self.conn.poll_timeout().map(|t| self.clock.to_std(t))
    }

    /// Appends everything the core wants to send to `out`.
    pub(crate) fn transmit(&mut self, out: &mut Vec<u8>) {
        let now = self.clock.now();
        while self.conn.poll_transmit(now, out) {}
    }

    /// Persists the key and session (no-op without a key file or a key, and once the server
    /// rejected or destroyed the key: the file is left as it was for the user to decide).
    pub(crate) fn save(&mut self) {
        if matches!(
            self.fatal,
            Some(Fatal::AuthKeyUnknown | Fatal::AuthKeyDestroyed)
        ) {
            return;
        }
        if let (Some(kf), Some(state)) = (&self.key_file, self.conn.export())
            && let Err(e) = kf.save(&state)
        {
            tracing::error!(error = %e, "saving the auth key failed");
        }
    }

    /// The application closes the client: what is queued goes out, then the socket closes.
    pub(crate) fn start_draining(&mut self) {
        self.save();
        if self.fatal.is_none() {
            self.fatal = Some(Fatal::Closed);
        }
        self.state = State::Draining;
    }

    /// Sorts the core's events into outcomes for the driver.
    pub(crate) fn drain(&mut self, mut out: impl FnMut(Outcome)) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                Event::Ready if self.state == State::Handshaking => {
                    tracing::info!(
                        auth_key_id = %format_args!("{:016x}", self.conn.auth_key().map_or(0, |k| k.id())),
                        "auth key ready"
                    );
                    self.proven = true;
                    self.limiter.success();
                    self.state = State::Ready;
                    self.save();
                }
                Event::RpcResult { id, body } => {
                    self.prove();
                    out(Outcome::Answer(id, Ok(body)));
                }
                Event::RpcError { id, error } => {
                    self.prove();
                    out(Outcome::Answer(id, Err(error)));
                }
                Event::Update { body } => {
                    self.prove();
                    out(Outcome::Update(body));
                }
                Event::Pong {
                    ping_id,
                    rtt_micros,
                } => {
                    self.prove();
                    out(Outcome::Pong {
                        ping_id,
                        rtt: Duration::from_micros(rtt_micros),
                    });
                }
                Event::TimeSynced { offset_secs } => {
                    tracing::debug!(offset_secs, "server time offset");
                    self.save();
                }
                Event::AuthKeyUnknown => {
                    tracing::error!("the server does not know our auth key (-404)");
                    self.fatal = Some(Fatal::AuthKeyUnknown);
                }
                Event::AuthKeyDestroyed => {
                    self.fatal = Some(Fatal::AuthKeyDestroyed);
                }
                Event::TransportError(code) => {
                    tracing::warn!(code, "transport error from the server");
                }
                Event::UpdatesGapPossible | Event::QuickAck { .. } => {}
                Event::Closed(reason) => {
                    if matches!(self.state, State::Connecting | State::Closed) {
                        continue; // the Closed(Local) of a socket loss we already handled
                    }
                    tracing::info!(?reason, "connection closed by the core");
                    if self.fatal.is_some() {
                        self.save();
                        self.state = State::Closed;
                    } else {
                        self.lost(format!("{reason:?}"));
                    }
                    out(Outcome::Disconnect(reason));
                }
                _ => {}
            }
        }
    }

    fn prove(&mut self) {
        if !self.proven {
            self.proven = true;
            self.limiter.success();
        }
    }
}

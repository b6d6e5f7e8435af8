//! The server driver: a thread per TCP connection around the core's `ServerConnection`, one
//! key store shared by every connection. It answers `ping` (the core's session layer does),
//! [`test.echo`](crate::echo), and `rpc_error 400 METHOD_NOT_IMPLEMENTED` for anything else;
//! [`ServerHandle::push_update`] sends an update to every connection with a session.
//!
//! With feature `websocket` and [`ServerOptions::websocket`], the same port also upgrades
//! `GET /apiws` to a WebSocket (the first bytes tell: `GET ` is HTTP, which an obfuscated or plain
//! MTProto stream never starts with); with feature `tls`, [`ServerOptions::wss`] adds a TLS port
//! for `wss://`. Inside a WebSocket the stream must be obfuscated. With feature `http` and
//! [`ServerOptions::http`], `POST` joins the same sniff (and, on the TLS port, a sniff of the
//! first bytes inside TLS): the HTTP transport's `POST /api`, served by one shared endpoint (see
//! the `http` module).
//!
//! Log lines on stdout (machine-readable, `tests/interop/run.sh` reads them; no secrets):
//! `handshake: auth_key_id=… transport=…`, `failed: <reason>` and `closed: …` per connection.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use mtproto_core::connection::server::{
    CloseReason, KeyStore, MemoryKeyStore, ServerConnection, ServerConnectionConfig, ServerEvent,
    StoreError, StoredKey,
};
use mtproto_core::handshake::{RsaPrivateKey, ServerConfig};
use mtproto_core::session::server::ServerSession;
use mtproto_core::transport::{self, Framing, ProxySecret};
use rand_chacha::ChaCha20Rng;

use crate::clock::Clock;
use crate::echo;
use crate::wire::{Recv, Wire};

/// Server settings.
#[derive(Default)]
pub struct ServerOptions {
    /// RSA private keys offered in `resPQ` (at least one).
    pub rsa_keys: Vec<RsaPrivateKey>,
    /// MTProxy secrets accepted (plain, `dd`, `ee`); plain transports are always accepted.
    pub secrets: Vec<ProxySecret>,
    /// Accept the legacy (pre-RSA_PAD) `p_q_inner_data` encryption of older clients.
    pub legacy_rsa: bool,
    /// Accept `p_q_inner_data` without a `dc` under RSA_PAD (GramJS); implied by `legacy_rsa`.
    pub accept_no_dc: bool,
    /// Stop accepting after this many connections (and return once they are done).
    pub max_conns: Option<u64>,
    /// A fixed seed (tests); `None` seeds from the OS.
    pub seed: Option<[u8; 32]>,
    /// Print one line per handshake and per ended connection on stdout (`mtproto serve`).
    pub print_events: bool,
    /// The key store to start with (e.g. [`ServerHandle::key_store`] of a server that
    /// stopped); `None`: an empty one.
    pub key_store: Option<SharedKeyStore>,
    /// Also upgrade `GET /apiws` on the MTProto port to a WebSocket (feature `websocket`).
    #[cfg(feature = "websocket")]
    pub websocket: bool,
    /// A second port for `wss://` (feature `tls`): TLS, then `/apiws` WebSocket upgrades
    /// (and `POST /api` for `https://` with [`http`](Self::http)).
    #[cfg(feature = "tls")]
    pub wss: Option<WssOptions>,
    /// Also serve the HTTP transport, `POST /api`, on the MTProto port (and on the TLS port
    /// for `https://`): feature `http`. One shared endpoint serves every HTTP client.
    #[cfg(feature = "http")]
    pub http: bool,
    /// Hold every answer of the HTTP endpoint this long before giving it to the core (tests:
    /// an answer made after its request's own response went out can only come back through
    /// the long poll). Zero: answer at once.
    #[cfg(feature = "http")]
    pub http_answer_delay: Duration,
}

/// The `wss://` port of a server (feature `tls`).
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
pub struct WssOptions {
    /// Address to listen on (e.g. `127.0.0.1:0`).
    pub listen: String,
    /// The certificate and key presented (e.g. [`SelfSigned::server_config`]).
    ///
    /// [`SelfSigned::server_config`]: crate::tls::SelfSigned::server_config
    pub config: std::sync::Arc<rustls::ServerConfig>,
}

/// The auth keys (and sessions) a server knows, shared by its connection threads (and across
/// restarts in tests): the core's [`MemoryKeyStore`] behind a mutex.
///
/// A connection takes a session out of the store for the length of one call and puts it back.
/// Another thread asking for the same session meanwhile waits for it (bounded), as the core's
/// `KeyStore` contract asks, instead of being told it does not exist (which would start it
/// afresh with an empty replay window).
#[derive(Clone, Debug, Default)]
pub struct SharedKeyStore(Arc<StoreCell>);

#[derive(Debug, Default)]
struct StoreCell {
    store: Mutex<Inner>,
    returned: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    keys: MemoryKeyStore,
    /// Sessions out of the store right now: (auth_key_id, session_id).
    out: std::collections::BTreeSet<(i64, i64)>,
}

/// How long a thread waits for a session another thread has out (a call's length, normally).
const SESSION_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl SharedKeyStore {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> KeysGuard<'_> {
        KeysGuard(self.inner())
    }

    /// Keys held.
    pub fn key_count(&self) -> usize {
        self.lock().key_count()
    }
}

impl KeyStore for SharedKeyStore {
    fn get(&self, auth_key_id: i64) -> Option<StoredKey> {
        self.lock().get(auth_key_id)
    }
    fn insert(&mut self, key: StoredKey) -> Result<(), StoreError> {
        self.lock().insert(key)
    }
    fn bind(&mut self, temp: i64, perm: i64, expires_at: i32) -> bool {
        self.lock().bind(temp, perm, expires_at)
    }
    fn take_session(&mut self, auth_key_id: i64, session_id: i64) -> Option<ServerSession> {
        let id = (auth_key_id, session_id);
        let mut inner = self.inner();
        let deadline = std::time::Instant::now() + SESSION_WAIT;
        while inner.out.contains(&id) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break; // the other thread is stuck: do not hang this one forever
            }
            inner = self
                .0
                .returned
                .wait_timeout(inner, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let session = inner.keys.take_session(auth_key_id, session_id);
        if session.is_some() {
            inner.out.insert(id);
        }
        session
    }
    fn put_session(&mut self, auth_key_id: i64, session: ServerSession) {
        let mut inner = self.inner();
        inner.out.remove(&(auth_key_id, session.session_id()));
        inner.keys.put_session(auth_key_id, session);
        drop(inner);
        self.0.returned.notify_all();
    }
    fn remove_session(&mut self, auth_key_id: i64, session_id: i64) -> bool {
        let mut inner = self.inner();
        let was_out = inner.out.remove(&(auth_key_id, session_id));
        let removed = inner.keys.remove_session(auth_key_id, session_id) || was_out;
        drop(inner);
        self.0.returned.notify_all();
        removed
    }
    fn remove_key(&mut self, auth_key_id: i64) -> bool {
        let mut inner = self.inner();
        inner.out.retain(|(k, _)| *k != auth_key_id);
        let removed = inner.keys.remove_key(auth_key_id);
        drop(inner);
        self.0.returned.notify_all();
        removed
    }
}

/// The locked key store (deref to [`MemoryKeyStore`]).
struct KeysGuard<'a>(std::sync::MutexGuard<'a, Inner>);

impl std::ops::Deref for KeysGuard<'_> {
    type Target = MemoryKeyStore;
    fn deref(&self) -> &MemoryKeyStore {
        &self.0.keys
    }
}

impl std::ops::DerefMut for KeysGuard<'_> {
    fn deref_mut(&mut self) -> &mut MemoryKeyStore {
        &mut self.0.keys
    }
}

/// What the server did.
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections that ended with an error (bad transport, handshake or message).
    pub failed: u64,
    /// Auth keys created.
    pub handshakes: u64,
    /// Requests answered (echo and errors; pings not counted).
    pub requests: u64,
    /// CPU time of the connection threads that have ended (`None` where not measurable).
    pub cpu: Option<Duration>,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    failed: AtomicU64,
    handshakes: AtomicU64,
    requests: AtomicU64,
    cpu_nanos: AtomicU64,
    cpu_known: AtomicBool,
}

impl Counters {
    fn snapshot(&self) -> ServerStats {
        ServerStats {
            connections: self.connections.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            handshakes: self.handshakes.load(Ordering::SeqCst),
            requests: self.requests.load(Ordering::SeqCst),
            cpu: self
                .cpu_known
                .load(Ordering::SeqCst)
                .then(|| Duration::from_nanos(self.cpu_nanos.load(Ordering::SeqCst))),
        }
    }
}

/// CPU time of the calling thread (Linux: `/proc/thread-self/schedstat`).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

struct Shared {
    counters: Counters,
    /// Stop accepting.
    stop: AtomicBool,
    /// Drop every open connection.
    killed: AtomicBool,
    /// Per live connection: a channel for pushed updates.
    pushers: Mutex<Vec<mpsc::Sender<Vec<u8>>>>,
    state: ServerState,
    /// The shared HTTP endpoint (feature `http`, [`ServerOptions::http`]).
    #[cfg(feature = "http")]
    http: Option<HttpEndpoint>,
}

/// The shared HTTP endpoint's handle: its command channel and its thread.
#[cfg(feature = "http")]
struct HttpEndpoint {
    tx: mpsc::Sender<crate::http::Cmd>,
    rx: Mutex<Option<mpsc::Receiver<crate::http::Cmd>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    next_token: AtomicU64,
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    /// The `wss://` port.
    tls: Option<TlsListener>,
    shared: Arc<Shared>,
    max_conns: Option<u64>,
}

/// The `wss://` listener and its TLS settings (without feature `tls` there is none).
struct TlsListener {
    listener: TcpListener,
    #[cfg(feature = "tls")]
    config: Arc<rustls::ServerConfig>,
}

/// What a listener's connections speak.
#[derive(Clone)]
enum Kind {
    /// MTProto over TCP (and `/apiws` upgrades if enabled).
    Plain,
    /// TLS, then `/apiws` upgrades.
    #[cfg(feature = "tls")]
    Tls(Arc<rustls::ServerConfig>),
}

/// A running server (see [`Server::spawn`]).
pub struct ServerHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    accept: Option<thread::JoinHandle<Vec<thread::JoinHandle<()>>>>,
    tls_accept: Option<thread::JoinHandle<Vec<thread::JoinHandle<()>>>>,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:0`).
    pub fn bind(addr: &str, options: ServerOptions) -> io::Result<Server> {
        if options.rsa_keys.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no RSA key"));
        }
        let listener = TcpListener::bind(addr)?;
        let max_conns = options.max_conns;
        #[cfg(feature = "tls")]
        let tls = match &options.wss {
            Some(w) => Some(TlsListener {
                listener: TcpListener::bind(&w.listen)?,
                config: w.config.clone(),
            }),
            None => None,
        };
        #[cfg(not(feature = "tls"))]
        let tls = None;
        #[cfg(feature = "http")]
        let http = options.http.then(|| {
            let (tx, rx) = mpsc::channel();
            HttpEndpoint {
                tx,
                rx: Mutex::new(Some(rx)),
                thread: Mutex::new(None),
                next_token: AtomicU64::new(1),
            }
        });
        Ok(Server {
            listener,
            tls,
            shared: Arc::new(Shared {
                counters: Counters::default(),
                stop: AtomicBool::new(false),
                killed: AtomicBool::new(false),
                pushers: Mutex::new(Vec::new()),
                state: ServerState::new(options),
                #[cfg(feature = "http")]
                http,
            }),
            max_conns,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound `wss://` address (feature `tls`, with [`ServerOptions::wss`]).
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|t| t.listener.local_addr().ok())
    }

    /// Accepts on background threads.
    pub fn spawn(mut self) -> ServerHandle {
        let addr = self
            .listener
            .local_addr()
            .unwrap_or(([127, 0, 0, 1], 0).into());
        let tls_addr = self.tls_local_addr();
        let tls_accept = self.spawn_tls();
        #[cfg(feature = "http")]
        start_http_endpoint(&self.shared);
        let shared = self.shared.clone();
        let accept = thread::spawn(move || {
            accept_loop(&self.listener, Kind::Plain, &self.shared, self.max_conns)
        });
        ServerHandle {
            shared,
            addr,
            tls_addr,
            accept: Some(accept),
            tls_accept,
        }
    }

    fn spawn_tls(&mut self) -> Option<thread::JoinHandle<Vec<thread::JoinHandle<()>>>> {
        let tls = self.tls.take()?;
        let shared = self.shared.clone();
        #[cfg(feature = "tls")]
        let kind = Kind::Tls(tls.config.clone());
        #[cfg(not(feature = "tls"))]
        let kind = Kind::Plain;
        Some(thread::spawn(move || {
            accept_loop(&tls.listener, kind, &shared, None)
        }))
    }

    /// Accepts on this thread until `max_conns` connections are done (forever without it);
    /// `max_conns` counts the MTProto port only.
    pub fn run_foreground(mut self) -> ServerStats {
        let shared = self.shared.clone();
        let tls_addr = self.tls_local_addr();
        let tls_accept = self.spawn_tls();
        #[cfg(feature = "http")]
        start_http_endpoint(&shared);
        for h in accept_loop(&self.listener, Kind::Plain, &shared, self.max_conns) {
            let _ = h.join();
        }
        if let (Some(t), Some(a)) = (tls_accept, tls_addr) {
            shared.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
            if let Ok(threads) = t.join() {
                for h in threads {
                    let _ = h.join();
                }
            }
        }
        shared.stop.store(true, Ordering::SeqCst);
        #[cfg(feature = "http")]
        join_http_endpoint(&shared);
        shared.counters.snapshot()
    }
}

fn accept_loop(
    listener: &TcpListener,
    kind: Kind,
    shared: &Arc<Shared>,
    max_conns: Option<u64>,
) -> Vec<thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    let mut n = 0u64;
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        n += 1;
        let id = shared.counters.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let shared = shared.clone();
        let kind = kind.clone();
        threads.retain(|h: &thread::JoinHandle<()>| !h.is_finished());
        threads.push(thread::spawn(move || {
            serve_socket(stream, kind, id, &shared);
            if let Some(cpu) = thread_cpu() {
                let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
                shared.counters.cpu_nanos.fetch_add(ns, Ordering::SeqCst);
                shared.counters.cpu_known.store(true, Ordering::SeqCst);
            }
        }));
        if max_conns.is_some_and(|m| n >= m) {
            break;
        }
    }
    threads
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `wss://` port's address, if there is one.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The server's key store (to start another server with the same keys).
    pub fn key_store(&self) -> SharedKeyStore {
        self.shared.state.keys.clone()
    }

    /// Counters so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.counters.snapshot()
    }

    /// Sends `body` (a TL update) to every connection that has a session; returns how many.
    pub fn push_update(&self, body: &[u8]) -> usize {
        let mut p = self
            .shared
            .pushers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.retain(|tx| tx.send(body.to_vec()).is_ok());
        p.len()
    }

    /// Stops accepting, waits for the open connections to end (their clients hang up or the
    /// idle timeout closes them) and returns the counters.
    pub fn stop(mut self) -> ServerStats {
        self.shutdown();
        self.shared.counters.snapshot()
    }

    /// Stops accepting and drops every open connection at once (a server crash, for tests).
    pub fn kill(mut self) -> ServerStats {
        self.shared.killed.store(true, Ordering::SeqCst);
        self.shutdown();
        self.shared.counters.snapshot()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loops.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.tls_addr {
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
        for a in [self.accept.take(), self.tls_accept.take()]
            .into_iter()
            .flatten()
        {
            if let Ok(threads) = a.join() {
                for t in threads {
                    let _ = t.join();
                }
            }
        }
        #[cfg(feature = "http")]
        join_http_endpoint(&self.shared);
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shared.killed.store(true, Ordering::SeqCst);
            self.shutdown();
        }
    }
}

/// The protocol side, shared by every connection (key store, sessions, RSA keys).
struct ServerState {
    config: ServerConnectionConfig,
    keys: SharedKeyStore,
    seed: Option<[u8; 32]>,
    print: bool,
    /// Upgrade `GET /apiws` on the MTProto port.
    websocket: bool,
    /// [`ServerOptions::http_answer_delay`].
    #[cfg(feature = "http")]
    http_answer_delay: Duration,
}

impl ServerState {
    fn new(options: ServerOptions) -> Self {
        let mut handshake = ServerConfig::new(options.rsa_keys);
        handshake.accept_legacy_padding = options.legacy_rsa;
        handshake.accept_inner_data_without_dc = options.accept_no_dc;
        let mut config = ServerConnectionConfig::new(handshake);
        config.transport = transport::ServerConfig {
            secrets: options.secrets,
            ..transport::ServerConfig::default()
        };
        #[cfg(feature = "websocket")]
        let websocket = options.websocket;
        #[cfg(not(feature = "websocket"))]
        let websocket = false;
        Self {
            config,
            #[cfg(feature = "http")]
            http_answer_delay: options.http_answer_delay,
            keys: options.key_store.unwrap_or_default(),
            seed: options.seed,
            print: options.print_events,
            websocket,
        }
    }

    fn rng(&self, n: u64) -> Option<ChaCha20Rng> {
        match crate::driver::seeded_rng(self.seed, n) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "connection dropped");
                None
            }
        }
    }
}

impl ServerState {
    fn print_line(&self, line: std::fmt::Arguments<'_>) {
        if self.print {
            println!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
}

fn framing_label(f: Option<Framing>) -> &'static str {
    match f {
        Some(Framing::Abridged) => "abridged",
        Some(Framing::Intermediate) => "intermediate",
        Some(Framing::PaddedIntermediate) => "padded_intermediate",
        Some(Framing::Full) => "full",
        None => "unknown",
    }
}

/// How often a connection thread looks at pushed updates and the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// How long a new connection may take to show what it speaks: the first bytes, the TLS
/// handshake, the WebSocket upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// One accepted socket: TLS and the WebSocket upgrade where they apply, then the MTProto loop.
fn serve_socket(stream: TcpStream, kind: Kind, n: u64, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let methods = shared.sniffed_methods();
    let upgraded = match kind {
        Kind::Plain => match sniff_http(&stream, &methods) {
            Some(b"GET ") => upgrade(stream, None),
            #[cfg(feature = "http")]
            Some(b"POST") => {
                match stream.try_clone() {
                    Ok(raw) => serve_http(&stream, Box::new(raw), shared, &peer),
                    Err(e) => tracing::warn!(error = %e, "socket clone failed"),
                }
                return;
            }
            _ => {
                serve_connection(Wire::Tcp(stream), false, n, shared);
                return;
            }
        },
        #[cfg(all(feature = "tls", feature = "http"))]
        Kind::Tls(config) if shared.http.is_some() => {
            match tls_sniff(stream, config, shared, &peer) {
                Some(r) => r,
                None => return,
            }
        }
        #[cfg(feature = "tls")]
        Kind::Tls(config) => upgrade(stream, Some(config)),
    };
    match upgraded {
        Ok(wire) => serve_connection(wire, true, n, shared),
        Err(e) => {
            shared.counters.failed.fetch_add(1, Ordering::SeqCst);
            shared
                .state
                .print_line(format_args!("failed: websocket upgrade: {e} peer={peer}"));
        }
    }
}

impl Shared {
    /// HTTP request starts the MTProto port listens for: `GET ` (the WebSocket upgrade) with
    /// [`ServerOptions::websocket`], `POST` (the HTTP transport) with [`ServerOptions::http`];
    /// dispatched in [`serve_socket`].
    fn sniffed_methods(&self) -> Vec<&'static [u8; 4]> {
        let mut m: Vec<&'static [u8; 4]> = Vec::new();
        if self.state.websocket {
            m.push(b"GET ");
        }
        #[cfg(feature = "http")]
        if self.http.is_some() {
            m.push(b"POST");
        }
        m
    }
}

/// Which of `methods` the connection starts with, if any: an HTTP request, which no MTProto
/// transport starts with (`mtproto_transports.md`, obfuscation init rules; a full transport
/// length that large is refused anyway). Looks without consuming; waits at most
/// [`UPGRADE_TIMEOUT`] for the first 4 bytes, and no longer than the first byte that rules
/// every method out.
fn sniff_http(stream: &TcpStream, methods: &[&'static [u8; 4]]) -> Option<&'static [u8; 4]> {
    if methods.is_empty() {
        return None;
    }
    let deadline = std::time::Instant::now() + UPGRADE_TIMEOUT;
    let mut b = [0u8; 4];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        let n = match stream.peek(&mut b) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None, // timeout or error: the MTProto path sees it too
        };
        let got = b.get(..n).unwrap_or_default();
        if n == 0 || !methods.iter().any(|m| m.starts_with(got)) {
            return None;
        }
        if n == 4 {
            return methods.iter().copied().find(|m| m[..] == b[..]);
        }
        thread::sleep(Duration::from_millis(2)); // a partial request line: look again
    }
}

/// The TLS settings of the `wss://` port (nothing without feature `tls`).
#[cfg(feature = "tls")]
type TlsConfig = Arc<rustls::ServerConfig>;
#[cfg(not(feature = "tls"))]
type TlsConfig = std::convert::Infallible;

/// TLS (on the `wss://` port) and the WebSocket upgrade.
#[cfg(feature = "websocket")]
fn upgrade(stream: TcpStream, tls: Option<TlsConfig>) -> io::Result<Wire> {
    let raw = stream.try_clone()?;
    let inner: Box<dyn crate::ws::ByteStream> = match tls {
        #[cfg(feature = "tls")]
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
            Box::new(rustls::StreamOwned::new(conn, raw))
        }
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
        None => Box::new(raw),
    };
    crate::ws::accept_blocking(stream, UPGRADE_TIMEOUT, inner).map(|w| Wire::Ws(Box::new(w)))
}

#[cfg(not(feature = "websocket"))]
fn upgrade(_: TcpStream, _: Option<TlsConfig>) -> io::Result<Wire> {
    Err(io::Error::other("built without the `websocket` feature"))
}

/// Inside a WebSocket the transport must be obfuscated: the core's own detector classifies the
/// first bytes (a copy of them; the connection gets the same bytes) and a plain framing is
/// refused.
struct ObfuscationGate(Option<transport::detect::Detector>);

impl ObfuscationGate {
    /// `false` once the stream is known to be a plain framing.
    fn admit(&mut self, bytes: &[u8], now: mtproto_core::time::UnixTime) -> bool {
        let Some(d) = self.0.as_mut() else {
            return true;
        };
        // The detector draws randomness only for a fake-TLS answer, which is thrown away.
        let mut rng = <ChaCha20Rng as rand_core::SeedableRng>::from_seed([0; 32]);
        match d.decode(bytes, now, &mut rng) {
            Ok((_, transport::Status::Partial)) => true,
            Ok((_, transport::Status::Complete(det))) => {
                self.0 = None;
                matches!(det.transport, transport::Transport::Obfuscated(_))
            }
            Err(_) => {
                self.0 = None; // the connection's own detector fails the same way
                true
            }
        }
    }
}

/// One connection: bytes and time into the core, its events answered, its bytes out.
fn serve_connection(mut stream: Wire, websocket: bool, n: u64, shared: &Shared) {
    let clock = Clock::new();
    let state = &shared.state;
    let Some(rng) = state.rng(n) else { return };
    let mut conn = ServerConnection::new(state.config.clone(), state.keys.clone(), rng);
    let (tx, updates) = mpsc::channel::<Vec<u8>>();
    shared
        .pushers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(tx);
    let peer = stream.peer();
    let mut gate = ObfuscationGate(
        websocket.then(|| transport::detect::Detector::new(state.config.transport.clone())),
    );
    let mut refused = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut eof = false;
    let mut requests = 0u64;
    loop {
        let now = clock.now();
        if conn.poll_timeout().is_some_and(|t| t <= now.mono) {
            conn.handle_timeout(now);
        }
        while let Ok(body) = updates.try_recv() {
            if let Err(e) = conn.push_update(now, &body) {
                tracing::debug!(?e, "update not sent");
            }
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                ServerEvent::Request { id, body } => {
                    requests += 1;
                    shared.counters.requests.fetch_add(1, Ordering::SeqCst);
                    answer_request(&mut conn, now, id, &body);
                }
                ServerEvent::AuthKeyCreated {
                    auth_key_id,
                    temporary,
                } => {
                    shared.counters.handshakes.fetch_add(1, Ordering::SeqCst);
                    state.print_line(format_args!(
                        "handshake: auth_key_id={:016x} transport={} temporary={temporary} peer={peer}",
                        auth_key_id.cast_unsigned(),
                        framing_label(conn.framing()),
                    ));
                }
                ServerEvent::MessageRejected { msg_id, reason } => {
                    tracing::info!(msg_id, ?reason, "message rejected");
                }
                ServerEvent::Closed(_) => {}
                other => tracing::debug!(event = ?other, "server event"),
            }
        }
        out.clear();
        while conn.poll_transmit(now, &mut out) {}
        if !out.is_empty() && stream.send(&out).is_err() {
            eof = true;
        }
        if eof || refused || conn.is_closed() || shared.killed.load(Ordering::SeqCst) {
            break;
        }
        let wait = conn
            .poll_timeout()
            .map_or(POLL, |t| clock.until(t).min(POLL))
            .max(Duration::from_millis(1));
        match stream.recv(wait, &mut buf) {
            Ok(Recv::Eof) | Err(_) => eof = true,
            Ok(Recv::Idle) => {}
            #[cfg(feature = "http")]
            Ok(Recv::Http(..)) => {} // client lanes only
            Ok(Recv::Data(data)) => {
                let now = clock.now();
                if gate.admit(data, now.unix) {
                    conn.handle_input(now, data);
                } else {
                    refused = true;
                }
            }
        }
    }
    if !eof && !shared.killed.load(Ordering::SeqCst) {
        stream.close();
    }
    if refused {
        shared.counters.failed.fetch_add(1, Ordering::SeqCst);
        state.print_line(format_args!(
            "failed: a plain transport inside a WebSocket (obfuscation is required) peer={peer}"
        ));
        return;
    }
    match conn.close_reason() {
        None
        | Some(CloseReason::Local | CloseReason::IdleTimeout | CloseReason::PingDelayDisconnect) => {
            state.print_line(format_args!(
                "closed: transport={} requests={requests} peer={peer}",
                framing_label(conn.framing())
            ));
        }
        Some(reason) => {
            shared.counters.failed.fetch_add(1, Ordering::SeqCst);
            state.print_line(format_args!("failed: {reason} peer={peer}"));
        }
    }
    // Dropping the connection parks its session in the store for the client's next connection.
}

/// The TLS port with HTTP on: the TLS handshake, then the first 4 bytes inside tell `POST` (the
/// HTTP transport, served here; `None` returned) from anything else (a WebSocket upgrade, the
/// stream returned).
#[cfg(all(feature = "tls", feature = "http"))]
fn tls_sniff(
    stream: TcpStream,
    config: TlsConfig,
    shared: &Shared,
    peer: &str,
) -> Option<io::Result<Wire>> {
    use std::io::Read;
    let setup = || -> io::Result<(TcpStream, rustls::StreamOwned<rustls::ServerConnection, TcpStream>, [u8; 4])> {
        stream.set_read_timeout(Some(UPGRADE_TIMEOUT))?;
        stream.set_write_timeout(Some(UPGRADE_TIMEOUT))?;
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, stream.try_clone()?);
        let mut head = [0u8; 4];
        tls.read_exact(&mut head)?;
        Ok((stream.try_clone()?, tls, head))
    };
    let (sock, tls, head) = match setup() {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let inner = crate::http::Prefixed {
        head: head.to_vec(),
        inner: tls,
    };
    if &head == b"POST" {
        serve_http(&sock, Box::new(inner), shared, peer);
        return None;
    }
    Some(
        crate::ws::accept_blocking(sock, UPGRADE_TIMEOUT, Box::new(inner))
            .map(|w| Wire::Ws(Box::new(w))),
    )
}

/// One TCP connection speaking the HTTP transport: requests to the shared endpoint.
#[cfg(feature = "http")]
fn serve_http(
    sock: &TcpStream,
    mut stream: Box<dyn crate::http::ByteStream>,
    shared: &Shared,
    peer: &str,
) {
    let Some(ep) = shared.http.as_ref() else {
        return;
    };
    let _ = sock.set_write_timeout(None);
    let stopping = || shared.stop.load(Ordering::SeqCst) || shared.killed.load(Ordering::SeqCst);
    let ctx = crate::http::ServeCtx {
        endpoint: ep.tx.clone(),
        next_token: &ep.next_token,
        stopping: &stopping,
    };
    let (served, failure) = crate::http::serve(sock, &mut *stream, &ctx);
    match failure {
        Some(why) => {
            shared.counters.failed.fetch_add(1, Ordering::SeqCst);
            shared
                .state
                .print_line(format_args!("failed: {why} peer={peer}"));
        }
        None => shared.state.print_line(format_args!(
            "closed: transport=http requests={served} peer={peer}"
        )),
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// Starts the shared HTTP endpoint's thread (once).
#[cfg(feature = "http")]
fn start_http_endpoint(shared: &Arc<Shared>) {
    let Some(ep) = shared.http.as_ref() else {
        return;
    };
    let Some(rx) = ep.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let s = shared.clone();
    let h = thread::Builder::new()
        .name("mtproto-http-endpoint".into())
        .spawn(move || run_http_endpoint(&rx, &s));
    match h {
        Ok(h) => *ep.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(h),
        Err(e) => tracing::error!(error = %e, "no thread for the HTTP endpoint"),
    }
}

/// Waits for the HTTP endpoint's thread (it ends within [`POLL`] of the stop flag).
#[cfg(feature = "http")]
fn join_http_endpoint(shared: &Shared) {
    shared.stop.store(true, Ordering::SeqCst);
    if let Some(ep) = shared.http.as_ref()
        && let Some(h) = ep.thread.lock().unwrap_or_else(|e| e.into_inner()).take()
    {
        let _ = h.join();
    }
}

/// The shared HTTP endpoint: every HTTP request of the server goes through one
/// `ServerConnection::new_http`, with its timers, pushed updates and the echo service.
#[cfg(feature = "http")]
fn run_http_endpoint(rx: &mpsc::Receiver<crate::http::Cmd>, shared: &Shared) {
    use crate::http::{Cmd, Exchanges};
    let clock = Clock::new();
    let state = &shared.state;
    let Some(rng) = state.rng(u64::MAX) else {
        return;
    };
    let mut conn = ServerConnection::new_http(state.config.clone(), state.keys.clone(), rng);
    let (tx, updates) = mpsc::channel::<Vec<u8>>();
    shared
        .pushers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(tx);
    let mut exchanges = Exchanges::default();
    let mut out = Vec::new();
    // Answers held back by `http_answer_delay`: (due, request, answer), oldest first; bounded
    // by the requests the core lets in.
    let mut delayed: std::collections::VecDeque<(
        std::time::Instant,
        mtproto_core::connection::server::ServerRequestId,
        Vec<u8>,
    )> = std::collections::VecDeque::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) || shared.killed.load(Ordering::SeqCst) {
            break;
        }
        let now = clock.now();
        if conn.poll_timeout().is_some_and(|t| t <= now.mono) {
            conn.handle_timeout(now);
        }
        while let Ok(body) = updates.try_recv() {
            if let Err(e) = conn.push_update(now, &body) {
                tracing::debug!(?e, "update not sent");
            }
        }
        while delayed
            .front()
            .is_some_and(|(due, _, _)| *due <= std::time::Instant::now())
        {
            if let Some((_, id, body)) = delayed.pop_front() {
                answer_request(&mut conn, now, id, &body);
            }
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                ServerEvent::Request { id, body } => {
                    shared.counters.requests.fetch_add(1, Ordering::SeqCst);
                    if state.http_answer_delay.is_zero() {
                        answer_request(&mut conn, now, id, &body);
                    } else {
                        let due = std::time::Instant::now() + state.http_answer_delay;
                        delayed.push_back((due, id, body));
                    }
                }
                ServerEvent::AuthKeyCreated {
                    auth_key_id,
                    temporary,
                } => {
                    shared.counters.handshakes.fetch_add(1, Ordering::SeqCst);
                    state.print_line(format_args!(
                        "handshake: auth_key_id={:016x} transport=http temporary={temporary}",
                        auth_key_id.cast_unsigned(),
                    ));
                }
                ServerEvent::MessageRejected { msg_id, reason } => {
                    tracing::info!(msg_id, ?reason, "message rejected");
                }
                other => tracing::debug!(event = ?other, "server event"),
            }
        }
        loop {
            out.clear();
            match conn.poll_http_response(now, &mut out) {
                Some((id, status)) => exchanges.answer(id, status, out.clone()),
                None => break,
            }
        }
        let wait = conn
            .poll_timeout()
            .map_or(POLL, |t| clock.until(t).min(POLL))
            .min(delayed.front().map_or(POLL, |(due, _, _)| {
                due.saturating_duration_since(std::time::Instant::now())
            }))
            .max(Duration::from_millis(1));
        let mut cmd = rx.recv_timeout(wait).ok();
        while let Some(c) = cmd {
            let now = clock.now();
            match c {
                Cmd::Request { token, body, reply } => match conn.handle_http_request(now, &body) {
                    Some(id) => exchanges.insert(id, token, reply),
                    None => {
                        let _ = reply.send((503, Vec::new()));
                    }
                },
                Cmd::Cancel(token) => {
                    if let Some(id) = exchanges.cancel(token) {
                        conn.cancel_http_request(id);
                    }
                }
            }
            cmd = rx.try_recv().ok();
        }
    }
}

/// The endpoint's answer to one request: `test.echo` echoed, anything else
/// `METHOD_NOT_IMPLEMENTED`.
fn answer_request(
    conn: &mut ServerConnection<ChaCha20Rng, SharedKeyStore>,
    now: mtproto_core::time::Now,
    id: mtproto_core::connection::server::ServerRequestId,
    body: &[u8],
) {
    let r = match echo::parse_request(body).map(echo::answer) {
        Some(Ok(answer)) => conn.respond(now, id, &answer),
        _ => {
            let (code, msg) = echo::NOT_IMPLEMENTED;
            conn.respond_error(now, id, code, msg)
        }
    };
    if let Err(e) = r {
        tracing::warn!(?e, "answer not sent");
    }
}

#[cfg(test)]
mod shared_store_tests {
    use super::*;
    use mtproto_core::session::server::{ServerSession, ServerSessionConfig};

    /// A second thread asking for a session another thread has out waits for it to come back
    /// instead of being told it does not exist (which would restart the session).
    #[test]
    fn a_session_out_on_another_thread_is_waited_for() {
        let mut store = SharedKeyStore::default();
        store.put_session(7, ServerSession::new(ServerSessionConfig::default(), 9, 0));
        let taken = store.take_session(7, 9).expect("parked");
        let mut other = store.clone();
        let waiter = std::thread::spawn(move || other.take_session(7, 9).is_some());
        std::thread::sleep(std::time::Duration::from_millis(100));
        store.put_session(7, taken);
        assert!(waiter.join().unwrap(), "got the session once it was back");
    }
}

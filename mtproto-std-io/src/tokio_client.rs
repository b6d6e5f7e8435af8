//! The tokio client (feature `tokio`): one task owns the socket (TCP, or with feature
//! `websocket` a WebSocket to a `ws://`/`wss://` URL, on tokio-tungstenite) and the core connection;
//! [`TokioClient`] handles send it commands. [`TokioClient::invoke`] returns a future; dropping
//! it before the answer cancels the request in the core (`rpc_drop_answer` if it was sent).
//! At most [`ClientConfig::max_in_flight`] requests are in flight: further callers wait for a
//! permit, so memory does not grow with the number of callers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mtproto_core::connection::{CloseReason, RequestId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::driver::{CallError, ClientConfig, ClientError, Endpoint, Engine, Outcome, State};

type Answer = Result<Bytes, CallError>;

enum Command {
    Invoke {
        token: u64,
        body: Bytes,
        reply: oneshot::Sender<Answer>,
    },
    Cancel {
        token: u64,
    },
    Ping {
        reply: oneshot::Sender<Result<Duration, CallError>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// A handle to the client task (cheap to clone).
#[derive(Clone, Debug)]
pub struct TokioClient {
    commands: mpsc::UnboundedSender<Command>,
    permits: Arc<Semaphore>,
    next_token: Arc<std::sync::atomic::AtomicU64>,
    request_timeout: Duration,
    auth_key_id: i64,
    updates: Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>,
}

/// Updates held for [`TokioClient::next_update`] at most; further ones are dropped (and logged)
/// until the application takes some.
const MAX_UPDATES: usize = 1024;

/// Cancels the request if the future is dropped before its answer.
struct CancelOnDrop {
    token: u64,
    commands: mpsc::UnboundedSender<Command>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.commands.send(Command::Cancel { token: self.token });
        }
    }
}

impl TokioClient {
    /// Opens (and locks) the key file, connects and waits until requests can flow; the task
    /// runs on the current runtime until [`close`](Self::close) or a fatal error.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let engine = Engine::new(&config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (updates_tx, updates_rx) = mpsc::channel(MAX_UPDATES);
        let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        let request_timeout = config.request_timeout;
        let task = Task {
            endpoint: config.endpoint()?,
            #[cfg(feature = "tls")]
            tls: config.tls.clone(),
            connect_timeout: config.connect_timeout,
            #[cfg(feature = "http")]
            config: config.clone(),
            engine,
            rx,
            ready: Some(ready_tx),
            updates: updates_tx,
            pending: HashMap::new(),
            by_id: HashMap::new(),
            pings: HashMap::new(),
        };
        tokio::spawn(task.run());
        let auth_key_id = ready_rx.await.map_err(|_| ClientError::Closed)??;
        Ok(Self {
            commands: tx,
            permits,
            next_token: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            request_timeout,
            auth_key_id,
            updates: Arc::new(tokio::sync::Mutex::new(updates_rx)),
        })
    }

    /// The auth key id.
    pub fn auth_key_id(&self) -> i64 {
        self.auth_key_id
    }

    /// Sends a request (serialized TL) and waits for its answer (the configured timeout).
    pub async fn invoke(&self, body: impl Into<Bytes>) -> Result<Bytes, CallError> {
        self.invoke_timeout(body, self.request_timeout).await
    }

    /// [`invoke`](Self::invoke) with its own timeout.
    pub async fn invoke_timeout(
        &self,
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Client(ClientError::Closed))?;
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let closed = || CallError::Client(ClientError::Closed);
        self.commands
            .send(Command::Invoke {
                token,
                body: body.into(),
                reply,
            })
            .map_err(|_| closed())?;
        let mut guard = CancelOnDrop {
            token,
            commands: self.commands.clone(),
            armed: true,
        };
        let r = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => Err(closed()),
            Err(_) => return Err(CallError::Timeout), // the guard cancels it
        };
        guard.armed = false;
        r
    }

    /// The next update (the body of a message that answers no request), waiting for one;
    /// `None` once the client task has ended. Handles share one queue: each update goes to one
    /// caller.
    pub async fn next_update(&self) -> Option<Bytes> {
        self.updates.lock().await.recv().await
    }

    /// Pings the server; the round-trip time.
    pub async fn ping(&self) -> Result<Duration, CallError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Ping { reply })
            .map_err(|_| CallError::Client(ClientError::Closed))?;
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(CallError::Client(ClientError::Closed)),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// Saves the key, sends what is queued and closes the socket.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Close { reply }).is_ok() {
            let _ = done.await;
        }
    }
}

struct Task {
    endpoint: Endpoint,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    /// The settings HTTP lanes are made with (feature `http`).
    #[cfg(feature = "http")]
    config: ClientConfig,
    engine: Engine,
    rx: mpsc::UnboundedReceiver<Command>,
    ready: Option<oneshot::Sender<Result<i64, ClientError>>>,
    pending: HashMap<u64, (RequestId, oneshot::Sender<Answer>)>,
    by_id: HashMap<RequestId, u64>,
    pings: HashMap<i64, oneshot::Sender<Result<Duration, CallError>>>,
    updates: mpsc::Sender<Bytes>,
}

impl Task {
    async fn run(mut self) {
        let mut read_buf = BytesMut::with_capacity(64 * 1024);
        let mut out = Vec::new();
        let mut stream: Option<Link> = None;
        loop {
            if let Some(f) = self.engine.fatal.clone()
                && self.engine.state == State::Closed
            {
                self.fail_all(|| f.to_error());
                return;
            }
            if stream.is_none() && self.engine.state != State::Draining {
                tokio::time::sleep(self.engine.connect_delay()).await;
                self.engine.on_attempt();
                let attempt = tokio::time::timeout(self.connect_timeout, self.connect())
                    .await
                    .unwrap_or_else(|_| {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connect timeout",
                        ))
                    });
                match attempt {
                    Ok(s) => {
                        stream = Some(s);
                        self.engine.on_connected();
                    }
                    Err(e) => {
                        self.engine.on_connect_failed(&e);
                        continue;
                    }
                }
            }
            // Send what the core has.
            out.clear();
            self.engine.transmit(&mut out);
            #[cfg(feature = "http")]
            if let Some(Link::Http(h, _)) = stream.as_mut() {
                let now = self.engine.clock.now();
                loop {
                    let mut body = Vec::new();
                    match self.engine.conn.poll_http_request(now, &mut body) {
                        Some(id) => h.submit(id, body),
                        None => break,
                    }
                }
            }
            if !out.is_empty()
                && let Some(s) = stream.as_mut()
                && let Err(e) = s.send(&out).await
            {
                stream = None;
                self.engine.on_socket_closed(&format!("write: {e}"));
            }
            if self.engine.state == State::Draining {
                if let Some(s) = stream.take() {
                    s.close().await;
                }
                self.engine.state = State::Closed;
                continue;
            }
            self.sort_outcomes(&mut stream);
            if self.engine.state == State::Ready
                && let Some(tx) = self.ready.take()
            {
                let _ = tx.send(Ok(self.engine.conn.auth_key().map_or(0, |k| k.id())));
            }
            let Some(s) = stream.as_mut() else { continue };
            let timer = self.engine.next_timer();
            let sleep = async {
                match timer {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = s.recv(&mut read_buf) => match r {
                    Ok(Got::Eof) => {
                        stream = None;
                        self.engine.on_socket_closed("closed by the server");
                    }
                    Ok(Got::Idle) => {}
                    #[cfg(feature = "http")]
                    Ok(Got::Http(id, reply)) => {
                        let now = self.engine.clock.now();
                        self.engine.conn.handle_http_response(now, id, reply.as_response());
                    }
                    Ok(Got::Data) => {
                        self.engine.feed(&read_buf);
                        read_buf.clear();
                    }
                    Err(e) => {
                        stream = None;
                        self.engine.on_socket_closed(&format!("read: {e}"));
                    }
                },
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => self.engine.start_draining(), // every handle is gone
                },
                () = sleep => {}
            }
            self.engine.on_timer();
            self.sort_outcomes(&mut stream);
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Invoke { token, body, reply } => match self.engine.conn.invoke_raw(&body) {
                Ok(id) => {
                    self.pending.insert(token, (id, reply));
                    self.by_id.insert(id, token);
                }
                Err(e) => {
                    let _ = reply.send(Err(CallError::Invoke(e)));
                }
            },
            Command::Cancel { token } => {
                if let Some((id, _)) = self.pending.remove(&token) {
                    self.by_id.remove(&id);
                    self.engine.conn.cancel(id);
                }
            }
            Command::Ping { reply } => {
                let id = self.engine.conn.ping();
                self.pings.insert(id, reply);
            }
            Command::Close { reply } => {
                self.engine.start_draining();
                let _ = reply.send(());
            }
        }
    }

    /// Opens the pipe: TCP, or a WebSocket (TLS, upgrade) over it.
    async fn connect(&self) -> std::io::Result<Link> {
        #[cfg(feature = "http")]
        if let Endpoint::Http(url) = &self.endpoint {
            // No connection up front: hyper connections open with the first requests.
            let (tx, rx) = mpsc::unbounded_channel();
            return Ok(Link::Http(
                Box::new(crate::http::AsyncLanes::new(url.clone(), &self.config, tx)),
                rx,
            ));
        }
        let s = TcpStream::connect(self.endpoint.authority()).await?;
        let _ = s.set_nodelay(true);
        match &self.endpoint {
            Endpoint::Tcp(_) => Ok(Link::Tcp(s)),
            #[cfg(feature = "websocket")]
            Endpoint::Ws(url) => {
                let io: Box<dyn AsyncIo> = if url.secure {
                    #[cfg(feature = "tls")]
                    {
                        let config = match &self.tls {
                            Some(c) => c.clone(),
                            None => crate::tls::default_client_config()?,
                        };
                        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                            .map_err(|e| {
                                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                            })?;
                        Box::new(
                            tokio_rustls::TlsConnector::from(config)
                                .connect(name, s)
                                .await?,
                        )
                    }
                    #[cfg(not(feature = "tls"))]
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "wss:// needs the `tls` feature",
                    ));
                } else {
                    Box::new(s)
                };
                let request = crate::ws::client_request(url)?;
                let (ws, response) = tokio_tungstenite::client_async_with_config(
                    request,
                    io,
                    Some(crate::ws::config()),
                )
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Http(r) => std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!("WebSocket upgrade refused: HTTP {}", r.status()),
                    ),
                    other => crate::ws::io_error(other),
                })?;
                crate::ws::check_response(&response)?;
                Ok(Link::Ws(Box::new(ws)))
            }
            #[cfg(feature = "http")]
            Endpoint::Http(_) => Err(std::io::Error::other("unreachable: HTTP has no socket")),
        }
    }

    fn sort_outcomes(&mut self, stream: &mut Option<Link>) {
        let mut outcomes = Vec::new();
        self.engine.drain(|o| outcomes.push(o));
        for o in outcomes {
            match o {
                Outcome::Answer(id, a) => {
                    if let Some(token) = self.by_id.remove(&id)
                        && let Some((_, reply)) = self.pending.remove(&token)
                    {
                        let _ = reply.send(a.map(Bytes::from).map_err(CallError::Rpc));
                    }
                }
                Outcome::Update(body) => {
                    if self.updates.try_send(Bytes::from(body)).is_err() {
                        tracing::warn!("update dropped: {MAX_UPDATES} are waiting to be taken");
                    }
                }
                Outcome::Pong { ping_id, rtt } => {
                    if let Some(reply) = self.pings.remove(&ping_id) {
                        let _ = reply.send(Ok(rtt));
                    }
                }
                Outcome::Disconnect(reason) => {
                    *stream = None;
                    if reason == CloseReason::PongTimeout {
                        for (_, reply) in self.pings.drain() {
                            let _ = reply.send(Err(CallError::Timeout));
                        }
                    }
                }
            }
        }
        if let Some(f) = self.engine.fatal.clone()
            && self.engine.state == State::Closed
        {
            self.fail_all(|| f.to_error());
        }
    }

    fn fail_all(&mut self, err: impl Fn() -> ClientError) {
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(Err(err()));
        }
        for (_, (_, reply)) in self.pending.drain() {
            let _ = reply.send(Err(CallError::Client(err())));
        }
        self.by_id.clear();
        for (_, reply) in self.pings.drain() {
            let _ = reply.send(Err(CallError::Client(err())));
        }
    }
}

/// A byte stream under the WebSocket: TCP, or TLS over TCP.
#[cfg(feature = "websocket")]
trait AsyncIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
#[cfg(feature = "websocket")]
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncIo for T {}

/// The task's byte pipe.
enum Link {
    Tcp(TcpStream),
    #[cfg(feature = "websocket")]
    Ws(Box<tokio_tungstenite::WebSocketStream<Box<dyn AsyncIo>>>),
    /// HTTP lanes and the channel their results come back on.
    #[cfg(feature = "http")]
    Http(
        Box<crate::http::AsyncLanes>,
        mpsc::UnboundedReceiver<(
            mtproto_core::transport::http::HttpRequestId,
            crate::http::Reply,
        )>,
    ),
}

/// What one [`Link::recv`] got.
enum Got {
    /// Bytes appended to the buffer.
    Data,
    /// A control message.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    Idle,
    /// The peer closed.
    Eof,
    /// An HTTP exchange ended.
    #[cfg(feature = "http")]
    Http(
        mtproto_core::transport::http::HttpRequestId,
        crate::http::Reply,
    ),
}

impl Link {
    /// Appends received bytes to `buf`. Cancel-safe (the only await takes a whole read or
    /// message, or nothing).
    async fn recv(&mut self, buf: &mut BytesMut) -> std::io::Result<Got> {
        match self {
            Link::Tcp(s) => Ok(match s.read_buf(buf).await? {
                0 => Got::Eof,
                _ => Got::Data,
            }),
            #[cfg(feature = "http")]
            Link::Http(_, rx) => Ok(match rx.recv().await {
                Some((id, reply)) => Got::Http(id, reply),
                None => Got::Eof,
            }),
            #[cfg(feature = "websocket")]
            Link::Ws(ws) => {
                use futures_util::{SinkExt, StreamExt};
                use tungstenite::Message;
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        buf.extend_from_slice(&b);
                        Ok(Got::Data)
                    }
                    Some(Ok(Message::Text(_))) => Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "text message on an MTProto WebSocket",
                    )),
                    Some(Ok(Message::Close(_))) => {
                        // Send the answering close frame tungstenite queued.
                        let _ = ws.flush().await;
                        Ok(Got::Eof)
                    }
                    Some(Ok(_)) => Ok(Got::Idle),
                    Some(Err(
                        tungstenite::Error::ConnectionClosed
                        | tungstenite::Error::AlreadyClosed
                        | tungstenite::Error::Protocol(
                            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                        ),
                    ))
                    | None => Ok(Got::Eof),
                    Some(Err(e)) => Err(crate::ws::io_error(e)),
                }
            }
        }
    }

    /// Sends all of `data` (WebSocket: binary messages of at most
    /// [`SEND_CHUNK`](crate::ws::SEND_CHUNK) bytes).
    async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Tcp(s) => s.write_all(data).await,
            #[cfg(feature = "http")]
            Link::Http(..) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "HTTP carries packets, not a byte stream",
            )),
            #[cfg(feature = "websocket")]
            Link::Ws(ws) => {
                use futures_util::SinkExt;
                for chunk in data.chunks(crate::ws::SEND_CHUNK) {
                    ws.feed(tungstenite::Message::Binary(Bytes::copy_from_slice(chunk)))
                        .await
                        .map_err(crate::ws::io_error)?;
                }
                ws.flush().await.map_err(crate::ws::io_error)
            }
        }
    }

    /// Closes (a WebSocket with code 1000, waiting briefly for the peer's close frame).
    async fn close(self) {
        match self {
            Link::Tcp(mut s) => {
                let _ = s.shutdown().await;
            }
            #[cfg(feature = "http")]
            Link::Http(..) => {} // dropping the lanes ends them
            #[cfg(feature = "websocket")]
            Link::Ws(mut ws) => {
                use futures_util::StreamExt;
                let frame = tungstenite::protocol::CloseFrame {
                    code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: "".into(),
                };
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    if ws.close(Some(frame)).await.is_ok() {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                })
                .await;
            }
        }
    }
}

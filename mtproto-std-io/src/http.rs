//! The HTTP transport (feature `http`; `https://` with feature `tls`): `POST /api` bodies, one
//! MTProto packet each (`mtproto_transports.md`; field notes §4.1, §4.2).
//!
//! Every protocol rule lives in the core: the client [`Connection`] in HTTP mode says which
//! bodies to POST (one of them the long poll) and reads what comes back; the server's
//! [`ServerConnection::new_http`] endpoint says what to answer and when. The HTTP/1.1 bytes are
//! the core's codec too ([`mtproto_core::transport::http`]: `write_request`, `ResponseParser`,
//! `RequestParser`, `write_response`). This module only moves them:
//!
//! - client: `HttpLanes`, a pool of lanes, each a thread owning one keep-alive connection
//!   (TCP, or TLS over it for `https://`) and doing one exchange at a time. A request never
//!   waits behind another: a new lane starts when none is idle (the core bounds the requests
//!   out at once by `http_max_requests`), so the long poll held by the server blocks only its
//!   own lane. Each exchange has a deadline of `max_wait` + `http_timeout_margin_ms`; a 2xx is
//!   a body, another status is [`HttpResponse::Status`], anything else
//!   [`HttpResponse::Failed`]. The blocking client uses it; the tokio client does the same with
//!   `AsyncLanes`: hyper 1's HTTP/1.1 client connections, a task per exchange, idle keep-alive
//!   connections reused;
//! - server: one shared [`ServerConnection::new_http`] endpoint on its own thread (with the
//!   timers) serves every HTTP client of the server: a client's requests come over several TCP
//!   connections (one per lane), and the long poll on one must be answered with what a request
//!   on another produced, so the endpoint cannot be per TCP connection. Each TCP connection's
//!   thread parses requests (keep-alive, bodies capped at the transport's frame cap; other
//!   paths 404, other methods 405 and close), hands bodies to the endpoint and writes its
//!   answers back; a client that hangs up has its held requests cancelled.
//!
//! [`Connection`]: mtproto_core::connection::Connection
//! [`ServerConnection::new_http`]: mtproto_core::connection::server::ServerConnection::new_http

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use mtproto_core::transport::Status;
use mtproto_core::transport::http::{
    HttpError, HttpRequestId, HttpResponse, RequestParser, ResponseParser, write_request,
    write_response,
};

/// The paths the server answers (`/apiw1` is what Telegram's web hosts use).
pub const PATHS: [&str; 2] = ["/api", "/apiw1"];
/// The largest body accepted (request or response): the core's frame cap.
pub const MAX_BODY: usize = mtproto_core::transport::DEFAULT_MAX_FRAME_LEN;

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://` (TLS).
    pub secure: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 for `http://`, 443 for `https://`).
    pub port: u16,
    /// Path (default `/api`).
    pub path: String,
}

impl HttpUrl {
    /// Whether `s` is an `http://` or `https://` URL.
    pub fn is_http(s: &str) -> bool {
        crate::url::has_scheme(s, "http", "https")
    }

    /// Parses `http://host[:port][/path]` or `https://…`; IPv6 hosts in brackets.
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = crate::url::parse(s, "http", "https", "/api")?;
        Ok(Self {
            secure: p.secure,
            host: p.host,
            port: p.port,
            path: p.path,
        })
    }

    /// `host:port` to connect to (IPv6 in brackets); also the `Host` header.
    pub fn authority(&self) -> String {
        crate::url::authority(&self.host, self.port)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// A byte stream under HTTP: TCP, or TLS over TCP.
pub(crate) trait ByteStream: Read + Write + Send {}
impl<T: Read + Write + Send> ByteStream for T {}

/// What became of one exchange (the owned form of [`HttpResponse`]).
#[derive(Debug)]
pub(crate) enum Reply {
    /// A 2xx response body.
    Body(Vec<u8>),
    /// Another status.
    Status(u16),
    /// No response.
    Failed,
}

impl Reply {
    /// The core's view of it.
    pub(crate) fn as_response(&self) -> HttpResponse<'_> {
        match self {
            Reply::Body(b) => HttpResponse::Body(b),
            Reply::Status(s) => HttpResponse::Status(*s),
            Reply::Failed => HttpResponse::Failed,
        }
    }
}

/// Where lanes deliver their results (a std or a tokio channel); `false`: nobody listens.
pub(crate) type Sink = Arc<dyn Fn(HttpRequestId, Reply) -> bool + Send + Sync>;

struct Job {
    id: HttpRequestId,
    body: Vec<u8>,
}

/// What every lane of a client needs.
struct LaneConfig {
    url: HttpUrl,
    connect_timeout: Duration,
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The client's lanes (see the module docs). Dropping it lets every lane end after its
/// current exchange (whose result nobody reads any more).
pub(crate) struct HttpLanes {
    jobs: mpsc::Sender<Job>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    idle: Arc<AtomicUsize>,
    lanes: usize,
    config: Arc<LaneConfig>,
    sink: Sink,
}

impl fmt::Debug for HttpLanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLanes")
            .field("url", &self.config.url.to_string())
            .field("lanes", &self.lanes)
            .finish_non_exhaustive()
    }
}

impl HttpLanes {
    /// Lanes for `url` with the driver's settings; results go to `sink`.
    pub(crate) fn new(url: HttpUrl, config: &crate::ClientConfig, sink: Sink) -> Self {
        let (jobs, queue) = mpsc::channel();
        let wait = config
            .connection
            .transport
            .http
            .map_or(0, |w| u64::try_from(w.max_wait).unwrap_or(0));
        Self {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            idle: Arc::new(AtomicUsize::new(0)),
            lanes: 0,
            config: Arc::new(LaneConfig {
                url,
                connect_timeout: config.connect_timeout,
                timeout: Duration::from_millis(
                    wait.saturating_add(config.connection.http_timeout_margin_ms),
                ),
                #[cfg(feature = "tls")]
                tls: config.tls.clone(),
            }),
            sink,
        }
    }

    /// POSTs `body` as request `id` on an idle lane, or on a new one.
    pub(crate) fn submit(&mut self, id: HttpRequestId, body: Vec<u8>) {
        // Reserve a lane for this job: an idle one, else a new one. Each job queued thus has a
        // lane that will take it, so nothing waits behind a held long poll.
        let reserved = self
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !reserved {
            self.spawn_lane();
        }
        if self.jobs.send(Job { id, body }).is_err() {
            (self.sink)(id, Reply::Failed);
        }
    }

    fn spawn_lane(&mut self) {
        self.lanes += 1;
        let queue = self.queue.clone();
        let idle = self.idle.clone();
        let config = self.config.clone();
        let sink = self.sink.clone();
        let spawned = thread::Builder::new()
            .name("mtproto-http-lane".into())
            .spawn(move || lane(&queue, &idle, &config, &sink));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no thread for an HTTP lane");
            self.lanes -= 1;
        }
    }
}

/// One lane: takes jobs until the client drops the lanes.
fn lane(queue: &Mutex<mpsc::Receiver<Job>>, idle: &AtomicUsize, config: &LaneConfig, sink: &Sink) {
    let mut conn: Option<LaneConn> = None;
    loop {
        let job = {
            let q = queue.lock().unwrap_or_else(|e| e.into_inner());
            q.recv()
        };
        let Ok(job) = job else { return };
        let reply = exchange(&mut conn, config, &job.body);
        idle.fetch_add(1, Ordering::SeqCst);
        if !sink(job.id, reply) {
            return;
        }
    }
}

/// One keep-alive connection of a lane.
struct LaneConn {
    sock: TcpStream,
    stream: Box<dyn ByteStream>,
    parser: ResponseParser,
    /// Bytes read past the last response (none from a well-behaved server).
    rest: Vec<u8>,
}

fn open(config: &LaneConfig) -> io::Result<LaneConn> {
    let sock = crate::client::connect_tcp(&config.url.authority(), config.connect_timeout)?;
    let raw = sock.try_clone()?;
    let stream: Box<dyn ByteStream> = if config.url.secure {
        #[cfg(feature = "tls")]
        {
            let tls = crate::tls::client_connection(config.tls.as_ref(), &config.url.host)?;
            Box::new(rustls::StreamOwned::new(tls, raw))
        }
        #[cfg(not(feature = "tls"))]
        {
            drop(raw);
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "https:// needs the `tls` feature",
            ));
        }
    } else {
        Box::new(raw)
    };
    Ok(LaneConn {
        sock,
        stream,
        parser: ResponseParser::new(MAX_BODY),
        rest: Vec::new(),
    })
}

/// POSTs `body` and reads the answer; a connection kept from before that turns out closed is
/// replaced once (MTProto deduplicates a message that did arrive).
fn exchange(conn: &mut Option<LaneConn>, config: &LaneConfig, body: &[u8]) -> Reply {
    let deadline = Instant::now() + config.timeout;
    let mut request = Vec::with_capacity(body.len() + 256);
    if write_request(
        &mut request,
        &config.url.authority(),
        &config.url.path,
        body,
    )
    .is_err()
    {
        return Reply::Failed;
    }
    for attempt in 0..2 {
        let reused = conn.is_some();
        let c = match conn.take() {
            Some(c) => c,
            None => match open(config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP connect failed");
                    return Reply::Failed;
                }
            },
        };
        match round_trip(c, &request, deadline) {
            Ok((reply, keep)) => {
                *conn = keep;
                return reply;
            }
            Err((e, nothing_read)) => {
                tracing::debug!(error = %e, attempt, "HTTP exchange failed");
                if !(reused && nothing_read) {
                    return Reply::Failed;
                }
            }
        }
    }
    Reply::Failed
}

type RoundTrip = Result<(Reply, Option<LaneConn>), (io::Error, bool)>;

fn round_trip(mut c: LaneConn, request: &[u8], deadline: Instant) -> RoundTrip {
    let timeout = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let _ = c.sock.set_write_timeout(Some(timeout(deadline)));
    if let Err(e) = c.stream.write_all(request).and_then(|()| c.stream.flush()) {
        return Err((e, true));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = std::mem::take(&mut c.rest);
    let mut read_any = !pending.is_empty();
    loop {
        let (n, done) = match c.parser.decode(&pending) {
            Ok((n, Status::Complete(r))) => (n, Some((r.status, r.body.to_vec(), r.keep_alive))),
            Ok((n, Status::Partial)) => (n, None),
            Err(e) => return Err((io::Error::new(io::ErrorKind::InvalidData, e), false)),
        };
        pending.drain(..n.min(pending.len()));
        if let Some((status, body, keep_alive)) = done {
            let reply = if (200..300).contains(&status) {
                Reply::Body(body)
            } else {
                Reply::Status(status)
            };
            c.rest = pending;
            return Ok((reply, keep_alive.then_some(c)));
        }
        if Instant::now() >= deadline {
            return Err((
                io::Error::new(io::ErrorKind::TimedOut, "no HTTP response in time"),
                false,
            ));
        }
        let _ = c.sock.set_read_timeout(Some(timeout(deadline)));
        match c.stream.read(&mut buf) {
            Ok(0) => {
                // A body running to the end of the stream is complete now.
                return match c.parser.finish() {
                    Ok(Some(r)) if (200..300).contains(&r.status) => {
                        Ok((Reply::Body(r.body.to_vec()), None))
                    }
                    Ok(Some(r)) => Ok((Reply::Status(r.status), None)),
                    _ => Err((
                        io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the server"),
                        !read_any,
                    )),
                };
            }
            Ok(n) => {
                read_any = true;
                pending.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, !read_any)),
        }
    }
}

/// The tokio client's lanes: hyper 1 HTTP/1.1 client connections, a task per exchange (the
/// core bounds how many are out), idle keep-alive connections reused. Dropping it aborts every
/// exchange still running (a held long poll included).
#[cfg(feature = "tokio")]
pub(crate) struct AsyncLanes {
    config: Arc<LaneConfig>,
    idle: Arc<Mutex<Vec<AsyncSender>>>,
    tasks: tokio::task::JoinSet<()>,
    results: tokio::sync::mpsc::UnboundedSender<(HttpRequestId, Reply)>,
}

#[cfg(feature = "tokio")]
type AsyncSender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

#[cfg(feature = "tokio")]
impl fmt::Debug for AsyncLanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncLanes")
            .field("url", &self.config.url.to_string())
            .field("exchanges", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

/// Idle keep-alive connections kept at most (more than the core ever has out is no use).
#[cfg(feature = "tokio")]
const MAX_IDLE: usize = 16;

#[cfg(feature = "tokio")]
impl AsyncLanes {
    /// Lanes for `url` with the driver's settings; results go to `results`.
    pub(crate) fn new(
        url: HttpUrl,
        config: &crate::ClientConfig,
        results: tokio::sync::mpsc::UnboundedSender<(HttpRequestId, Reply)>,
    ) -> Self {
        let sync = HttpLanes::new(url, config, Arc::new(|_, _| false));
        Self {
            config: sync.config.clone(),
            idle: Arc::new(Mutex::new(Vec::new())),
            tasks: tokio::task::JoinSet::new(),
            results,
        }
    }

    /// POSTs `body` as request `id` on a task of its own.
    pub(crate) fn submit(&mut self, id: HttpRequestId, body: Vec<u8>) {
        while self.tasks.try_join_next().is_some() {}
        let config = self.config.clone();
        let idle = self.idle.clone();
        let results = self.results.clone();
        self.tasks.spawn(async move {
            let deadline = tokio::time::Instant::now() + config.timeout;
            let reply = tokio::time::timeout_at(deadline, exchange_async(&config, &idle, body))
                .await
                .unwrap_or(Reply::Failed);
            let _ = results.send((id, reply));
        });
    }
}

#[cfg(feature = "tokio")]
trait AsyncStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A new HTTP/1.1 connection (TLS for `https://`); its driver runs on a task of its own and
/// ends when the sender is dropped.
#[cfg(feature = "tokio")]
async fn open_async(config: &LaneConfig) -> io::Result<AsyncSender> {
    let tcp = tokio::time::timeout(
        config.connect_timeout,
        tokio::net::TcpStream::connect(config.url.authority()),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))??;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn AsyncStream> = if config.url.secure {
        #[cfg(feature = "tls")]
        {
            let tls = match &config.tls {
                Some(c) => c.clone(),
                None => crate::tls::default_client_config()?,
            };
            let name = rustls::pki_types::ServerName::try_from(config.url.host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            Box::new(
                tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await?,
            )
        }
        #[cfg(not(feature = "tls"))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "https:// needs the `tls` feature",
        ));
    } else {
        Box::new(tcp)
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "HTTP connection ended");
        }
    });
    Ok(sender)
}

/// One POST through hyper: an idle connection if one is ready (replaced once if it turns out
/// closed), else a new one.
#[cfg(feature = "tokio")]
async fn exchange_async(
    config: &LaneConfig,
    idle: &Mutex<Vec<AsyncSender>>,
    body: Vec<u8>,
) -> Reply {
    use http_body_util::BodyExt;
    let body = bytes::Bytes::from(body);
    for _ in 0..2 {
        let kept = {
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain(|s| !s.is_closed());
            idle.pop()
        };
        let reused = kept.is_some();
        let mut sender = match kept {
            Some(s) => s,
            None => match open_async(config).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP connect failed");
                    return Reply::Failed;
                }
            },
        };
        if sender.ready().await.is_err() {
            if reused {
                continue;
            }
            return Reply::Failed;
        }
        let request = hyper::Request::post(config.url.path.as_str())
            .header(hyper::header::HOST, config.url.authority())
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .body(http_body_util::Full::new(body.clone()));
        let Ok(request) = request else {
            return Reply::Failed;
        };
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP exchange failed");
                // A kept connection the server closed meanwhile: once more on a fresh one.
                if reused && e.is_canceled() {
                    continue;
                }
                return Reply::Failed;
            }
        };
        let status = response.status().as_u16();
        let collected = http_body_util::Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await;
        let Ok(collected) = collected else {
            return Reply::Failed;
        };
        if !sender.is_closed() {
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
        return if (200..300).contains(&status) {
            Reply::Body(collected.to_bytes().to_vec())
        } else {
            Reply::Status(status)
        };
    }
    Reply::Failed
}

// ---------------------------------------------------------------------------------------------
// Server side.

/// A command to the server's shared HTTP endpoint thread.
pub(crate) enum Cmd {
    /// A request body; the answer (status, body) goes to `reply`.
    Request {
        token: u64,
        body: Vec<u8>,
        reply: mpsc::Sender<(u16, Vec<u8>)>,
    },
    /// The client of exchange `token` went away.
    Cancel(u64),
}

/// Where a connection thread waits for the answer to its request: (status, body).
pub(crate) type ReplyTx = mpsc::Sender<(u16, Vec<u8>)>;

/// The exchanges the endpoint holds: its ids to the connection threads' tokens and channels.
#[derive(Default)]
pub(crate) struct Exchanges {
    by_id: HashMap<u64, (u64, ReplyTx)>,
    by_token: HashMap<u64, HttpRequestId>,
}

impl Exchanges {
    pub(crate) fn insert(&mut self, id: HttpRequestId, token: u64, reply: ReplyTx) {
        self.by_id.insert(id.0, (token, reply));
        self.by_token.insert(token, id);
    }

    /// Delivers an answer (a connection thread that went away meanwhile is ignored).
    pub(crate) fn answer(&mut self, id: HttpRequestId, status: u16, body: Vec<u8>) {
        if let Some((token, tx)) = self.by_id.remove(&id.0) {
            self.by_token.remove(&token);
            let _ = tx.send((status, body));
        }
    }

    /// The endpoint's id of exchange `token`, forgotten.
    pub(crate) fn cancel(&mut self, token: u64) -> Option<HttpRequestId> {
        let id = self.by_token.remove(&token)?;
        self.by_id.remove(&id.0);
        Some(id)
    }
}

/// Bytes already read (the sniffed method) in front of a stream.
#[cfg(feature = "tls")]
pub(crate) struct Prefixed<S> {
    pub(crate) head: Vec<u8>,
    pub(crate) inner: S,
}

#[cfg(feature = "tls")]
impl<S: Read> Read for Prefixed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.head.is_empty() {
            return self.inner.read(buf);
        }
        let n = self.head.len().min(buf.len());
        buf[..n].copy_from_slice(&self.head[..n]);
        self.head.drain(..n);
        Ok(n)
    }
}

#[cfg(feature = "tls")]
impl<S: Write> Write for Prefixed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How a connection thread sees the server.
pub(crate) struct ServeCtx<'a> {
    pub(crate) endpoint: mpsc::Sender<Cmd>,
    pub(crate) next_token: &'a std::sync::atomic::AtomicU64,
    /// Stop serving (the server stops or is killed).
    pub(crate) stopping: &'a dyn Fn() -> bool,
}

/// How long a keep-alive connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(90);
/// How often a waiting connection thread looks at the stop flag and its client.
const TICK: Duration = Duration::from_millis(100);

/// Serves HTTP requests on one TCP connection until it closes (or the server stops). Returns
/// how many requests it answered and the failure, if it ended with one.
pub(crate) fn serve(
    sock: &TcpStream,
    stream: &mut dyn ByteStream,
    ctx: &ServeCtx<'_>,
) -> (u64, Option<String>) {
    let mut parser = RequestParser::new(MAX_BODY);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut served = 0u64;
    let mut idle_since = Instant::now();
    loop {
        let req = match parser.decode(&pending) {
            Ok((n, Status::Complete(r))) => {
                let req = (r.path.to_string(), r.body.to_vec(), r.keep_alive);
                pending.drain(..n.min(pending.len()));
                Some(req)
            }
            Ok((n, Status::Partial)) => {
                pending.drain(..n.min(pending.len()));
                None
            }
            Err(e) => {
                let status = match e {
                    HttpError::UnsupportedMethod => 405,
                    HttpError::BodyTooLarge { .. } => 413,
                    _ => 400,
                };
                out.clear();
                write_response(&mut out, status, &[], true);
                let _ = stream.write_all(&out).and_then(|()| stream.flush());
                return (served, Some(format!("http: {e:?}")));
            }
        };
        let Some((path, body, keep_alive)) = req else {
            if (ctx.stopping)() {
                return (served, None);
            }
            if idle_since.elapsed() >= IDLE {
                return (served, None);
            }
            let _ = sock.set_read_timeout(Some(TICK));
            match stream.read(&mut buf) {
                Ok(0) => {
                    return match parser.finish() {
                        Ok(()) => (served, None),
                        Err(e) => (served, Some(format!("http: {e:?}"))),
                    };
                }
                Ok(n) => pending.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if crate::wire::transient(&e) => {}
                // Between requests a client may hang up any way it likes (a reset, TLS without
                // close_notify): that is the end of the connection, not a failure.
                Err(e) if pending.is_empty() && hung_up(&e) => return (served, None),
                Err(e) => return (served, Some(format!("read: {e}"))),
            }
            continue;
        };
        let (status, answer) = if PATHS.contains(&path.as_str()) {
            match ask(sock, ctx, body) {
                Some(a) => a,
                None => return (served, None), // the client left, or the server stops
            }
        } else {
            (404, Vec::new())
        };
        served += 1;
        out.clear();
        write_response(&mut out, status, &answer, !keep_alive);
        let _ = sock.set_write_timeout(Some(Duration::from_secs(30)));
        if let Err(e) = stream.write_all(&out).and_then(|()| stream.flush()) {
            // A client that left while its request was held (its answer is lost; the core
            // asks about the messages again).
            if hung_up(&e) {
                return (served, None);
            }
            return (served, Some(format!("write: {e}")));
        }
        if !keep_alive {
            return (served, None);
        }
        idle_since = Instant::now();
    }
}

/// Whether `e` says the client went away (rather than spoke wrongly).
fn hung_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Hands `body` to the endpoint and waits for its answer; `None` if the client hung up (the
/// request is cancelled) or the server stops.
fn ask(sock: &TcpStream, ctx: &ServeCtx<'_>, body: Vec<u8>) -> Option<(u16, Vec<u8>)> {
    let token = ctx.next_token.fetch_add(1, Ordering::SeqCst);
    let (tx, rx) = mpsc::channel();
    ctx.endpoint
        .send(Cmd::Request {
            token,
            body,
            reply: tx,
        })
        .ok()?;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(a) => return Some(a),
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if (ctx.stopping)() || peer_gone(sock) {
            let _ = ctx.endpoint.send(Cmd::Cancel(token));
            return None;
        }
    }
}

/// Whether the client closed its side (a clean FIN, or a reset).
fn peer_gone(sock: &TcpStream) -> bool {
    let _ = sock.set_nonblocking(true);
    let mut b = [0u8; 1];
    let gone = match sock.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    };
    let _ = sock.set_nonblocking(false);
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/api").unwrap();
        assert_eq!(
            u,
            HttpUrl {
                secure: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/api".into()
            }
        );
        let u = HttpUrl::parse("HTTPS://venus.web.telegram.org/apiw1").unwrap();
        assert!(u.secure);
        assert_eq!((u.port, u.path.as_str()), (443, "/apiw1"));
        let u = HttpUrl::parse("http://[::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 80, "/api")
        );
        assert_eq!(u.to_string(), "http://[::1]:80/api");
        for bad in [
            "ws://x/api",
            "http://",
            "http://:80/api",
            "http://h:99999/",
            "http://[::1/",
            "http://u@h/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(HttpUrl::is_http("https://a") && !HttpUrl::is_http("ws://a"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn prefixed_reads_the_head_first() {
        let mut p = Prefixed {
            head: b"POST".to_vec(),
            inner: &b" /api"[..],
        };
        let mut s = String::new();
        p.read_to_string(&mut s).unwrap();
        assert_eq!(s, "POST /api");
    }
}

//! The HTTP transport (`mtproto_mtproto-transports.md`; field notes §4.1, §4.2): one MTProto
//! packet per `POST /api` body, one per response body. No framing, no obfuscation, no quick
//! ack; a transport error comes back as an HTTP status (`404` → `-404`), and a 4-byte body is
//! read as a transport error code too.
//!
//! Two parts:
//! - the vocabulary the connections use in HTTP mode ([`HttpRequestId`], [`HttpResponse`],
//!   [`HttpWaitConfig`]): the client [`Connection`](crate::connection::Connection) yields
//!   "send this body as a request" and accepts "this was a response body (or status)"; the
//!   server [`ServerConnection`](crate::connection::server::ServerConnection) takes request
//!   bodies and yields response bodies. Neither ever opens a connection: the driver owns the
//!   HTTP client or server (ureq, hyper, a browser's `fetch`, or the codec below);
//! - a small HTTP/1.1 codec for `no_std` drivers that move bytes themselves: a request writer
//!   ([`write_request`]) and an incremental response parser ([`ResponseParser`]) for the
//!   client; an incremental request parser ([`RequestParser`]) and a response writer
//!   ([`write_response`]) for the server. Heads are parsed with `httparse`; bodies may use
//!   `Content-Length` or `chunked`; heads are capped at [`MAX_HEAD_LEN`], bodies at the
//!   transport's frame cap.
//!
//! The parsers have the shape of every decoder here: `decode(&mut self, input)` consumes a
//! prefix of `input` and either completes one message or answers [`Status::Partial`] after
//! consuming all of it. They never consume bytes of the next message (pipelined or keep-alive
//! input is safe). After an error a parser is poisoned.
//!
//! ```
//! use mtproto_core::transport::http::{write_request, write_response, RequestParser, ResponseParser};
//! use mtproto_core::transport::Status;
//! let (mut wire, mut back) = (Vec::new(), Vec::new());
//! write_request(&mut wire, "149.154.167.40", "/api", &[1, 2, 3, 4]).unwrap();
//! let mut server = RequestParser::new(1 << 20);
//! let (n, Status::Complete(req)) = server.decode(&wire).unwrap() else { panic!() };
//! assert_eq!((n, req.path, req.body), (wire.len(), "/api", &[1, 2, 3, 4][..]));
//! write_response(&mut back, 200, &[5, 6, 7, 8], !req.keep_alive);
//! let mut client = ResponseParser::new(1 << 20);
//! let (_, Status::Complete(resp)) = client.decode(&back).unwrap() else { panic!() };
//! assert_eq!((resp.status, resp.body, resp.keep_alive), (200, &[5, 6, 7, 8][..], true));
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::Status;

/// Names one HTTP request of a connection in HTTP mode (unique per connection object).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpRequestId(pub u64);

/// What became of an HTTP request, as the client driver reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpResponse<'a> {
    /// A `2xx` response and its whole body (empty: nothing to read).
    Body(&'a [u8]),
    /// A status without a body to read: `≥ 300` is transport error `-status`, its body
    /// ignored (`mtproto_mtproto-transports.md`: "returned as normal HTTP status codes (and
    /// the HTTP payload must be ignored)"); below 300 it counts as an empty body.
    Status(u16),
    /// No response: the request could not be sent, the connection broke, or the driver's own
    /// timeout fired. The request is treated as lost (its messages are asked about again).
    Failed,
}

/// The parameters of `http_wait#9299359f max_delay:int wait_after:int max_wait:int`
/// (`mtproto_service_messages.md`, "HTTP Wait/Long Poll"), milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpWaitConfig {
    /// The most ms between the first message queued for the session and the response.
    pub max_delay: i32,
    /// After the latest message queued, the server waits this long (ms) for more.
    pub wait_after: i32,
    /// With nothing to send, the server holds the request at most this long (ms), then
    /// answers with an empty container. Has priority over the other two.
    pub max_wait: i32,
}

impl Default for HttpWaitConfig {
    /// The spec's defaults for a request without `http_wait`: 0, 0, 25000.
    fn default() -> Self {
        Self {
            max_delay: 0,
            wait_after: 0,
            max_wait: 25_000,
        }
    }
}

/// Largest HTTP head (request or status line plus headers) accepted: 16 KiB.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Largest chunk-size line accepted (with extensions).
const MAX_CHUNK_LINE: usize = 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;
/// Body bytes reserved up front from a declared length, and the capacity a parser keeps
/// between messages: a head claiming a large body makes the parser hold no more than this
/// until the body's bytes arrive.
const BODY_RESERVE: usize = 64 * 1024;

/// An HTTP/1 framing failure. The stream is out of sync; the parser is poisoned.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The head (or the trailer section of a chunked body) exceeds [`MAX_HEAD_LEN`].
    HeadTooLarge,
    /// The head is not valid HTTP/1.x (or has more than 64 headers, or a line ending in a
    /// bare LF: only CRLF line ends are accepted).
    Malformed,
    /// The body is (or announces to be) larger than the cap.
    BodyTooLarge {
        /// Declared (or reached) body length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// `Content-Length` is not a number, or given twice with different values, or given with
    /// `Transfer-Encoding` (a request-smuggling shape).
    BadContentLength,
    /// A `Transfer-Encoding` other than `chunked`, or any `Transfer-Encoding` in an HTTP/1.0
    /// message (RFC 9112 §6.1: faulty framing).
    UnsupportedTransferEncoding,
    /// A chunk-size line, chunk terminator or trailer line is malformed (or ends in a bare
    /// LF).
    BadChunk,
    /// A request method other than `POST`.
    UnsupportedMethod,
    /// A host or path to write contains bytes that cannot go into a request line or header.
    BadTarget,
    /// The stream ended inside a message.
    UnexpectedEof,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeadTooLarge => write!(f, "HTTP head larger than {MAX_HEAD_LEN} bytes"),
            Self::Malformed => f.write_str("malformed HTTP head"),
            Self::BodyTooLarge { len, max } => {
                write!(f, "HTTP body of {len} bytes exceeds the maximum of {max}")
            }
            Self::BadContentLength => f.write_str("invalid Content-Length"),
            Self::UnsupportedTransferEncoding => f.write_str("unsupported Transfer-Encoding"),
            Self::BadChunk => f.write_str("malformed chunked body"),
            Self::UnsupportedMethod => f.write_str("HTTP method other than POST"),
            Self::BadTarget => f.write_str("host or path not writable in an HTTP request"),
            Self::UnexpectedEof => f.write_str("stream ended inside an HTTP message"),
        }
    }
}

impl core::error::Error for HttpError {}

fn writable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i = i.saturating_sub(1);
        if let Some(d) = digits.get_mut(i) {
            // n % 10 < 10: the cast cannot truncate.
            *d = b'0'.saturating_add(u8::try_from(n % 10).unwrap_or(0));
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

fn usize_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Appends `POST {path} HTTP/1.1` with `Host`, `Content-Length`, `Connection: keep-alive` and
/// `Content-Type: application/octet-stream`, then `body` (one MTProto packet), to `out`.
/// `path` is `/api` for Telegram (`/apiw1` through its web hosts); a proxy form
/// (`http://1.2.3.4:80/api`) works too. Nothing is written on error.
pub fn write_request(
    out: &mut Vec<u8>,
    host: &str,
    path: &str,
    body: &[u8],
) -> Result<(), HttpError> {
    if !writable(host) || !writable(path) {
        return Err(HttpError::BadTarget);
    }
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: application/octet-stream\r\nContent-Length: ");
    push_decimal(out, usize_u64(body.len()));
    out.extend_from_slice(b"\r\nConnection: keep-alive\r\n\r\n");
    out.extend_from_slice(body);
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Appends an `HTTP/1.1 {status}` response with `Content-Length`, `Content-Type:
/// application/octet-stream` and `Connection: keep-alive` (or `close`), then `body`, to `out`.
/// A status outside 100..=999 is written as 500.
pub fn write_response(out: &mut Vec<u8>, status: u16, body: &[u8], close: bool) {
    let status = if (100..=999).contains(&status) {
        status
    } else {
        500
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: application/octet-stream\r\nContent-Length: ");
    push_decimal(out, usize_u64(body.len()));
    out.extend_from_slice(if close {
        &b"\r\nConnection: close\r\n\r\n"[..]
    } else {
        &b"\r\nConnection: keep-alive\r\n\r\n"[..]
    });
    out.extend_from_slice(body);
}

/// A parsed response. `body` borrows the parser until its next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The body (chunked encoding removed).
    pub body: &'a [u8],
    /// Whether the connection may carry another request (HTTP/1.1 without `Connection:
    /// close`, or HTTP/1.0 with `Connection: keep-alive`; never after a body read to EOF).
    pub keep_alive: bool,
}

/// A parsed request. Borrows the parser until its next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The request target (`/api`, `/apiw1`, or a proxy's absolute form).
    pub path: &'a str,
    /// The body (chunked encoding removed).
    pub body: &'a [u8],
    /// Whether the client keeps the connection open for another request.
    pub keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Length(usize),
    UntilEof,
    ChunkSize,
    ChunkData(usize),
    ChunkEnd,
    Trailer,
    Done,
}

/// The shared incremental decoder of both parsers.
#[derive(Debug)]
struct Decoder {
    request: bool,
    max_body: usize,
    state: State,
    head: Vec<u8>,
    line: Vec<u8>,
    /// Bytes of the trailer section read so far (capped at [`MAX_HEAD_LEN`]).
    trailer: usize,
    body: Vec<u8>,
    status: u16,
    path: String,
    keep_alive: bool,
    error: Option<HttpError>,
}

/// `Connection` tokens (comma-separated, case-insensitive).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

impl Decoder {
    fn new(request: bool, max_body: usize) -> Self {
        Self {
            request,
            max_body,
            state: State::Head,
            head: Vec::new(),
            line: Vec::new(),
            trailer: 0,
            body: Vec::new(),
            status: 0,
            path: String::new(),
            keep_alive: true,
            error: None,
        }
    }

    fn reset(&mut self) {
        self.state = State::Head;
        self.head.clear();
        self.line.clear();
        self.trailer = 0;
        self.body.clear();
        // After a large message, give the memory back (keep a small warm buffer).
        self.body.shrink_to(BODY_RESERVE);
        self.status = 0;
        self.path.clear();
        self.keep_alive = true;
    }

    fn fail(&mut self, e: HttpError) -> Result<(usize, bool), HttpError> {
        self.error = Some(e);
        Err(e)
    }

    fn grow_body(&mut self, more: usize) -> Result<(), HttpError> {
        let len = self.body.len().saturating_add(more);
        if len > self.max_body {
            return Err(HttpError::BodyTooLarge {
                len: usize_u64(len),
                max: self.max_body,
            });
        }
        Ok(())
    }

    /// Parses the complete head in `self.head`; sets the body state.
    fn parse_head(&mut self) -> Result<(), HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (version, hs): (u8, &[httparse::Header<'_>]) = if self.request {
            let mut req = httparse::Request::new(&mut headers);
            // The head must end exactly where httparse says it does: nothing after the blank
            // line may have been taken for the head (a request-smuggling shape otherwise).
            match req.parse(&self.head) {
                Ok(httparse::Status::Complete(n)) if n == self.head.len() => {}
                _ => return Err(HttpError::Malformed),
            }
            if req.method != Some("POST") {
                return Err(HttpError::UnsupportedMethod);
            }
            self.path.clear();
            self.path.push_str(req.path.unwrap_or_default());
            (req.version.unwrap_or(1), req.headers)
        } else {
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.head) {
                Ok(httparse::Status::Complete(n)) if n == self.head.len() => {}
                _ => return Err(HttpError::Malformed),
            }
            self.status = resp.code.unwrap_or(0);
            (resp.version.unwrap_or(1), resp.headers)
        };
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut keep_alive = version >= 1;
        for h in hs.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = parse_decimal(h.value).ok_or(HttpError::BadContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HttpError::BadContentLength);
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // Only `chunked` alone is supported (no compression codings).
                if !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") || chunked {
                    return Err(HttpError::UnsupportedTransferEncoding);
                }
                chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                if has_token(h.value, "close") {
                    keep_alive = false;
                } else if has_token(h.value, "keep-alive") {
                    keep_alive = true;
                }
            }
        }
        self.keep_alive = keep_alive;
        if chunked && length.is_some() {
            return Err(HttpError::BadContentLength);
        }
        if chunked && version == 0 {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
            return Err(HttpError::UnsupportedTransferEncoding);
        }
        let bodiless =
            !self.request && (self.status < 200 || self.status == 204 || self.status == 304);
        self.state = if bodiless {
            State::Done
        } else if chunked {
            State::ChunkSize
        } else if let Some(n) = length {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= self.max_body)
                .ok_or(HttpError::BodyTooLarge {
                    len: n,
                    max: self.max_body,
                })?;
            // Reserve a bounded amount; the rest grows as the body's bytes arrive.
            self.body.reserve(n.min(BODY_RESERVE));
            if n == 0 {
                State::Done
            } else {
                State::Length(n)
            }
        } else if self.request {
            State::Done
        } else {
            // A response without length: its body runs to the end of the stream.
            self.keep_alive = false;
            State::UntilEof
        };
        Ok(())
    }

    /// Runs the state machine over `input`: (bytes consumed, message complete).
    fn run(&mut self, input: &[u8]) -> Result<(usize, bool), HttpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.state == State::Done {
            self.reset();
        }
        let mut used = 0usize;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            match self.state {
                State::Done => return Ok((used, true)),
                _ if rest.is_empty() => return Ok((used, false)),
                State::Head => {
                    // Byte by byte up to the blank line, so that nothing after the head is
                    // consumed here (heads are small; bodies are copied in bulk below).
                    for &b in rest {
                        used = used.saturating_add(1);
                        if self.head.is_empty() && (b == b'\r' || b == b'\n') {
                            continue; // stray line ends between messages
                        }
                        if b == b'\n' && self.head.last() != Some(&b'\r') {
                            // Only CRLF ends a line: a bare LF would let the head end where
                            // httparse sees it and we do not (or the other way round).
                            return self.fail(HttpError::Malformed);
                        }
                        self.head.push(b);
                        if self.head.len() > MAX_HEAD_LEN {
                            return self.fail(HttpError::HeadTooLarge);
                        }
                        if self.head.ends_with(b"\r\n\r\n") {
                            if let Err(e) = self.parse_head() {
                                return self.fail(e);
                            }
                            if self.status >= 100 && self.status < 200 && !self.request {
                                // An interim response (100 Continue): skip it.
                                self.reset();
                            }
                            break;
                        }
                    }
                }
                State::Length(left) => {
                    let take = left.min(rest.len());
                    self.body
                        .extend_from_slice(rest.get(..take).unwrap_or_default());
                    used = used.saturating_add(take);
                    let left = left.saturating_sub(take);
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                }
                State::UntilEof => {
                    if let Err(e) = self.grow_body(rest.len()) {
                        return self.fail(e);
                    }
                    self.body.extend_from_slice(rest);
                    used = input.len();
                }
                State::ChunkSize | State::Trailer => {
                    let Some(&b) = rest.first() else {
                        return Ok((used, false));
                    };
                    used = used.saturating_add(1);
                    self.line.push(b);
                    if self.line.len() > MAX_CHUNK_LINE {
                        return self.fail(HttpError::BadChunk);
                    }
                    if self.state == State::Trailer {
                        self.trailer = self.trailer.saturating_add(1);
                        if self.trailer > MAX_HEAD_LEN {
                            return self.fail(HttpError::HeadTooLarge);
                        }
                    }
                    if b != b'\n' {
                        continue;
                    }
                    if !self.line.ends_with(b"\r\n") {
                        return self.fail(HttpError::BadChunk);
                    }
                    if self.state == State::Trailer {
                        // Only an exactly empty line ends the trailer section.
                        let blank = self.line.len() == 2;
                        self.line.clear();
                        if blank {
                            self.state = State::Done;
                        }
                        continue;
                    }
                    let size = match httparse::parse_chunk_size(&self.line) {
                        Ok(httparse::Status::Complete((_, size))) => size,
                        _ => return self.fail(HttpError::BadChunk),
                    };
                    self.line.clear();
                    let total = usize_u64(self.body.len()).saturating_add(size);
                    if total > usize_u64(self.max_body) {
                        return self.fail(HttpError::BodyTooLarge {
                            len: total,
                            max: self.max_body,
                        });
                    }
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    let take = left.min(rest.len());
                    self.body
                        .extend_from_slice(rest.get(..take).unwrap_or_default());
                    used = used.saturating_add(take);
                    let left = left.saturating_sub(take);
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::ChunkEnd => {
                    let Some(&b) = rest.first() else {
                        return Ok((used, false));
                    };
                    used = used.saturating_add(1);
                    match (self.line.as_slice(), b) {
                        ([], b'\r') => self.line.push(b),
                        ([b'\r'], b'\n') => {
                            self.line.clear();
                            self.state = State::ChunkSize;
                        }
                        _ => return self.fail(HttpError::BadChunk),
                    }
                }
            }
        }
    }

    /// The stream ended: completes a body read to EOF, else an error if inside a message.
    fn eof(&mut self) -> Result<bool, HttpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::UntilEof => {
                self.state = State::Done;
                Ok(true)
            }
            State::Head if self.head.is_empty() => Ok(false),
            State::Done => Ok(false),
            _ => {
                self.error = Some(HttpError::UnexpectedEof);
                Err(HttpError::UnexpectedEof)
            }
        }
    }
}

/// Incremental parser of HTTP/1.x responses (client side). See the [module docs](self).
#[derive(Debug)]
pub struct ResponseParser(Decoder);

impl ResponseParser {
    /// A parser whose bodies may be at most `max_body` bytes (the transport's frame cap,
    /// [`super::DEFAULT_MAX_FRAME_LEN`]).
    pub fn new(max_body: usize) -> Self {
        Self(Decoder::new(false, max_body))
    }

    /// Consumes a prefix of `input`; completes at most one response. Interim `1xx` responses
    /// are skipped.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<Response<'_>>), HttpError> {
        let (n, done) = self.0.run(input)?;
        Ok((
            n,
            if done {
                Status::Complete(self.response())
            } else {
                Status::Partial
            },
        ))
    }

    /// The connection was closed by the peer: a response whose body runs to the end of the
    /// stream (no `Content-Length`, not chunked) is complete now. `Ok(None)`: no message was
    /// in progress. [`HttpError::UnexpectedEof`]: the stream ended inside one.
    pub fn finish(&mut self) -> Result<Option<Response<'_>>, HttpError> {
        Ok(if self.0.eof()? {
            Some(self.response())
        } else {
            None
        })
    }

    fn response(&self) -> Response<'_> {
        Response {
            status: self.0.status,
            body: &self.0.body,
            keep_alive: self.0.keep_alive,
        }
    }
}

/// Incremental parser of HTTP/1.x `POST` requests (server side). See the [module docs](self).
#[derive(Debug)]
pub struct RequestParser(Decoder);

impl RequestParser {
    /// A parser whose bodies may be at most `max_body` bytes.
    pub fn new(max_body: usize) -> Self {
        Self(Decoder::new(true, max_body))
    }

    /// Consumes a prefix of `input`; completes at most one request. A method other than
    /// `POST` is [`HttpError::UnsupportedMethod`] (answer it 405 and close).
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Status<Request<'_>>), HttpError> {
        let (n, done) = self.0.run(input)?;
        Ok((
            n,
            if done {
                Status::Complete(Request {
                    path: &self.0.path,
                    body: &self.0.body,
                    keep_alive: self.0.keep_alive,
                })
            } else {
                Status::Partial
            },
        ))
    }

    /// The client closed the connection: [`HttpError::UnexpectedEof`] if it did so inside a
    /// request.
    pub fn finish(&mut self) -> Result<(), HttpError> {
        self.0.eof().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn owned(r: Response<'_>) -> (u16, Vec<u8>, bool) {
        (r.status, r.body.to_vec(), r.keep_alive)
    }

    /// Feeds `wire` split at `at` (two pieces), collecting every completed response.
    fn split_feed(
        wire: &[u8],
        at: usize,
        max: usize,
    ) -> Result<Vec<(u16, Vec<u8>, bool)>, HttpError> {
        let mut p = ResponseParser::new(max);
        let mut got = Vec::new();
        for mut piece in [&wire[..at], &wire[at..]] {
            while !piece.is_empty() {
                let (n, st) = p.decode(piece)?;
                piece = &piece[n..];
                match st {
                    Status::Complete(r) => got.push(owned(r)),
                    Status::Partial => assert!(piece.is_empty()),
                }
            }
        }
        if let Some(r) = p.finish()? {
            got.push(owned(r));
        }
        Ok(got)
    }

    /// Every split offset of `wire` gives `expected`.
    fn all_splits(wire: &[u8], expected: &[(u16, Vec<u8>, bool)]) {
        for at in 0..=wire.len() {
            assert_eq!(
                split_feed(wire, at, 1 << 16).unwrap(),
                expected,
                "split at {at}"
            );
        }
    }

    #[test]
    fn request_writer_matches_the_format_tdlib_sends() {
        let mut out = Vec::new();
        write_request(&mut out, "149.154.167.40:80", "/api", b"abcd").unwrap();
        assert_eq!(
            out,
            b"POST /api HTTP/1.1\r\nHost: 149.154.167.40:80\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nabcd"
        );
        for (host, path) in [
            ("a b", "/api"),
            ("h", "/api\r\nX: y"),
            ("", "/api"),
            ("h", ""),
        ] {
            let mut out = Vec::new();
            assert_eq!(
                write_request(&mut out, host, path, b""),
                Err(HttpError::BadTarget)
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn response_writer_and_a_large_content_length() {
        let mut out = Vec::new();
        write_response(&mut out, 404, b"", true);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/octet-stream\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let body = vec![7u8; 1_234_567];
        let mut out = Vec::new();
        write_response(&mut out, 200, &body, false);
        assert!(out.windows(25).any(|w| w == b"Content-Length: 1234567\r\n"));
    }

    #[test]
    fn content_length_responses_at_every_split_offset_keep_alive_pipelined() {
        // Two responses back to back on one keep-alive connection (hand-written wire text).
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nServer: x\r\n\r\n\x01\x02\x03\x04\x05\x06\x07\x08HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n";
        all_splits(wire, &[(200, (1..=8).collect(), true), (200, vec![], true)]);
    }

    #[test]
    fn chunked_responses_at_every_split_offset() {
        // "Wiki" + "pedia" + " in\r\n\r\nchunks." (RFC 9112 §7.1 shape, with an extension and a
        // trailer), then a second message.
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        all_splits(
            wire,
            &[
                (200, b"Wikipedia in\r\n\r\nchunks.".to_vec(), true),
                (200, vec![], true),
            ],
        );
    }

    #[test]
    fn connection_close_and_a_body_to_eof() {
        let wire = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nabcd";
        all_splits(wire, &[(200, b"abcd".to_vec(), false)]);
        // HTTP/1.0 without keep-alive closes; with it, it stays open.
        all_splits(
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            &[(200, vec![], false)],
        );
        all_splits(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            &[(200, vec![], true)],
        );
        // No length: the body runs to EOF (complete at `finish`).
        all_splits(
            b"HTTP/1.1 200 OK\r\n\r\n\x01\x02\x03\x04",
            &[(200, vec![1, 2, 3, 4], false)],
        );
        // An interim 100 is skipped; 204 has no body.
        all_splits(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnopHTTP/1.1 204 No Content\r\n\r\n",
            &[(404, b"nop".to_vec(), true), (204, vec![], true)],
        );
    }

    #[test]
    fn caps_on_head_and_body() {
        // Content-Length above the cap: refused from the head, before any body byte.
        let mut p = ResponseParser::new(16);
        let err = p
            .decode(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n")
            .unwrap_err();
        assert_eq!(err, HttpError::BodyTooLarge { len: 17, max: 16 });
        assert_eq!(p.decode(b"").unwrap_err(), err, "poisoned");
        // Exactly at the cap is fine.
        let mut p = ResponseParser::new(16);
        let wire = [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n"[..],
            &[9; 16],
        ]
        .concat();
        assert!(matches!(p.decode(&wire).unwrap().1, Status::Complete(r) if r.body == [9; 16]));
        // Chunks adding up past the cap.
        let mut p = ResponseParser::new(16);
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n9\r\n";
        assert_eq!(
            p.decode(wire).unwrap_err(),
            HttpError::BodyTooLarge { len: 17, max: 16 }
        );
        // A body to EOF past the cap.
        let mut p = ResponseParser::new(4);
        assert!(p.decode(b"HTTP/1.1 200 OK\r\n\r\n1234").is_ok());
        assert!(matches!(
            p.decode(b"5"),
            Err(HttpError::BodyTooLarge { len: 5, max: 4 })
        ));
        // A head past 16 KiB.
        let mut p = ResponseParser::new(16);
        let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        head.resize(MAX_HEAD_LEN + 1, b'a');
        assert_eq!(p.decode(&head).unwrap_err(), HttpError::HeadTooLarge);
        // A head of exactly 16 KiB is accepted.
        let mut p = ResponseParser::new(16);
        let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ".to_vec();
        head.resize(MAX_HEAD_LEN - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(p.decode(&head).unwrap().1, Status::Complete(r) if r.body.is_empty()));
    }

    #[test]
    fn malformed_framing_is_refused() {
        let cases: [(&[u8], HttpError); 7] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4x\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                HttpError::BadChunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
                HttpError::BadChunk,
            ),
            (b"HTTP/1.1 2000 OK\r\n\r\n", HttpError::Malformed),
        ];
        for (wire, err) in cases {
            let mut p = ResponseParser::new(1024);
            assert_eq!(
                p.decode(wire).map(|(n, _)| n),
                Err(err),
                "{:?}",
                core::str::from_utf8(wire)
            );
        }
        // EOF inside a Content-Length body.
        let mut p = ResponseParser::new(1024);
        p.decode(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            .unwrap();
        assert_eq!(p.finish().unwrap_err(), HttpError::UnexpectedEof);
    }

    #[test]
    fn requests_at_every_split_offset_and_methods() {
        let mut wire = Vec::new();
        write_request(&mut wire, "h", "/api", &[1, 2, 3, 4]).unwrap();
        wire.extend_from_slice(
            b"POST /apiw1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n\x05\x06\r\n2\r\n\x07\x08\r\n0\r\n\r\n",
        );
        for at in 0..=wire.len() {
            let mut p = RequestParser::new(1024);
            let mut got = Vec::new();
            for mut piece in [&wire[..at], &wire[at..]] {
                while !piece.is_empty() {
                    let (n, st) = p.decode(piece).unwrap();
                    piece = &piece[n..];
                    if let Status::Complete(r) = st {
                        got.push((r.path.to_string(), r.body.to_vec(), r.keep_alive));
                    }
                }
            }
            p.finish().unwrap();
            assert_eq!(
                got,
                [
                    ("/api".to_string(), vec![1, 2, 3, 4], true),
                    ("/apiw1".to_string(), vec![5, 6, 7, 8], false)
                ],
                "split at {at}"
            );
        }
        let mut p = RequestParser::new(1024);
        assert_eq!(
            p.decode(b"GET /api HTTP/1.1\r\nHost: h\r\n\r\n")
                .unwrap_err(),
            HttpError::UnsupportedMethod
        );
        let mut p = RequestParser::new(3);
        assert_eq!(
            p.decode(b"POST /api HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
                .unwrap_err(),
            HttpError::BodyTooLarge { len: 4, max: 3 }
        );
        // A request without a body length has an empty body.
        let mut p = RequestParser::new(3);
        let (_, st) = p.decode(b"POST /api HTTP/1.1\r\n\r\n").unwrap();
        assert!(matches!(st, Status::Complete(r) if r.body.is_empty()));
        // EOF in the middle of a request.
        let mut p = RequestParser::new(8);
        p.decode(b"POST /api HT").unwrap();
        assert_eq!(p.finish(), Err(HttpError::UnexpectedEof));
    }

    #[test]
    fn a_head_ending_in_a_bare_lf_is_refused_not_smuggled() {
        // httparse ends this head at `\n\r\n` (Complete(39) of 63 bytes); a parser that
        // looks for `\r\n\r\n` only would take "AAAAPOST /x ..." for more head.
        let wire = b"POST /api HTTP/1.1\nContent-Length: 4\n\r\nAAAAPOST /x HTTP/1.1\r\n\r\n";
        let mut p = RequestParser::new(1024);
        assert_eq!(p.decode(wire).unwrap_err(), HttpError::Malformed);
        for wire in [
            &b"HTTP/1.1 200 OK\nContent-Length: 0\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n",
        ] {
            let mut p = ResponseParser::new(1024);
            assert_eq!(p.decode(wire).unwrap_err(), HttpError::Malformed);
        }
        // Bare LF in chunk lines and chunk ends is refused as well.
        for wire in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nA\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
        ] {
            let mut p = ResponseParser::new(1024);
            assert_eq!(p.decode(wire).unwrap_err(), HttpError::BadChunk);
        }
    }

    #[test]
    fn a_declared_length_does_not_reserve_the_whole_body() {
        // A 40-byte head claiming 16 MiB: the parser holds at most BODY_RESERVE.
        let mut p = RequestParser::new(32 << 20);
        let (_, st) = p
            .decode(b"POST /api HTTP/1.1\r\nContent-Length: 16777216\r\n\r\n")
            .unwrap();
        assert!(matches!(st, Status::Partial));
        assert!(
            p.0.body.capacity() <= BODY_RESERVE,
            "{}",
            p.0.body.capacity()
        );
        // After a 200 KiB message, the next message starts with the memory given back.
        let mut p = ResponseParser::new(1 << 20);
        let big = vec![3u8; 200 * 1024];
        let mut wire = Vec::new();
        write_response(&mut wire, 200, &big, false);
        let (n, st) = p.decode(&wire).unwrap();
        assert_eq!(n, wire.len());
        assert!(matches!(st, Status::Complete(r) if r.body == &big[..]));
        let (_, st) = p.decode(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert!(matches!(st, Status::Partial));
        assert!(
            p.0.body.capacity() <= BODY_RESERVE,
            "{}",
            p.0.body.capacity()
        );
    }

    #[test]
    fn trailers_end_only_at_an_empty_line_and_are_capped() {
        // A line of blanks is not the end of the trailer section (RFC 9112 §7.1.2).
        let wire =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n \t\r\n\r\n";
        let mut p = ResponseParser::new(1024);
        let (n, st) = p.decode(wire).unwrap();
        assert_eq!(n, wire.len());
        assert!(matches!(st, Status::Complete(r) if r.body == b"A"));
        // Endless trailer lines: refused past MAX_HEAD_LEN.
        let mut p = ResponseParser::new(1024);
        p.decode(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
            .unwrap();
        let line = [&[b'x'; 98][..], b"\r\n"].concat();
        let mut err = None;
        for _ in 0..MAX_HEAD_LEN / line.len() + 2 {
            match p.decode(&line) {
                Ok((n, st)) => assert!(n == line.len() && matches!(st, Status::Partial)),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err, Some(HttpError::HeadTooLarge));
    }

    #[test]
    fn request_framing_conflicts_are_refused() {
        let cases: [(&[u8], HttpError); 4] = [
            (
                b"POST /api HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                b"POST /api HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"POST /api HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"POST /api HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n",
                HttpError::BadContentLength,
            ),
        ];
        for (wire, err) in cases {
            let mut p = RequestParser::new(1024);
            assert_eq!(p.decode(wire).map(|(n, _)| n), Err(err));
        }
        // The same length twice is one length.
        let mut p = RequestParser::new(1024);
        let wire = b"POST /api HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab";
        let (n, st) = p.decode(wire).unwrap();
        assert_eq!(n, wire.len());
        assert!(matches!(st, Status::Complete(r) if r.body == b"ab"));
    }

    #[test]
    fn decimal_writer() {
        for n in [0u64, 7, 10, 99, 100, 4_194_304, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, alloc::format!("{n}").into_bytes());
        }
    }
}

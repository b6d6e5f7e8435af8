//! The WebSocket transport (feature `websocket`; `wss://` with feature `tls`), on tungstenite.
//!
//! What `mtproto_transports.md` asks (field notes §4.1, §4.3), and how this module does it:
//! - the client sends `Sec-WebSocket-Protocol: binary` and requires it back; the server's
//!   `/apiws` (and `/apiws_test`) endpoint requires it and answers it; other paths get 404;
//! - inside the WebSocket runs an **obfuscated** MTProto transport (the 64-byte obfuscated2
//!   init first): the client refuses a plain [`TransportConfig`], the server closes a stream
//!   whose first bytes are a plain framing;
//! - WebSocket message boundaries mean nothing: the payloads of binary messages are one byte
//!   stream in each direction. What the core sends goes out in binary messages of at most
//!   [`SEND_CHUNK`] bytes; what comes in is fed to the core as it arrives;
//! - the close code is 1000 (normal) with an empty reason;
//! - `wss://` is the default worth using: over plain `ws://` obfuscation without a secret can be
//!   undone by anyone who sees the init.
//!
//! Nothing here decides an MTProto question: the bytes go to the core's `Connection` /
//! `ServerConnection` as over TCP.
//!
//! [`TransportConfig`]: mtproto_core::connection::TransportConfig

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::wire::transient;
use bytes::Bytes;
use tungstenite::handshake::HandshakeError;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// The subprotocol both sides must name.
pub const SUBPROTOCOL: &str = "binary";
/// The paths the server upgrades (`/apiws_test` is what clients of test DCs ask for).
pub const PATHS: [&str; 2] = ["/apiws", "/apiws_test"];
/// The largest binary message this crate sends: larger writes are split (boundaries carry no
/// meaning), which keeps every message far below any peer's message limit.
pub const SEND_CHUNK: usize = 1 << 20;
/// The largest message (and frame) accepted: one MTProto frame of the core's largest accepted
/// length and its framing, as an implementation that sends one frame per message would.
pub const MAX_MESSAGE: usize = mtproto_core::transport::DEFAULT_MAX_FRAME_LEN + 1024;
/// How long a closing side waits for the peer's close frame.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// tungstenite's settings for both roles: bounded messages, frames and write buffer.
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * SEND_CHUNK)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// A parsed `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://` (TLS).
    pub secure: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 for `ws://`, 443 for `wss://`).
    pub port: u16,
    /// Path and query (default `/apiws`).
    pub path: String,
}

impl WsUrl {
    /// Whether `s` names a WebSocket endpoint (`ws://…` or `wss://…`) rather than `host:port`.
    pub fn is_ws(s: &str) -> bool {
        crate::url::has_scheme(s, "ws", "wss")
    }

    /// Parses `ws://host[:port][/path]` or `wss://…`; IPv6 hosts in brackets.
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = crate::url::parse(s, "ws", "wss", "/apiws")?;
        Ok(Self {
            secure: p.secure,
            host: p.host,
            port: p.port,
            path: p.path,
        })
    }

    /// `host:port` to connect to (IPv6 in brackets).
    pub fn authority(&self) -> String {
        crate::url::authority(&self.host, self.port)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// A byte stream under the WebSocket: TCP, or TLS over TCP.
pub(crate) trait ByteStream: Read + Write + Send {}
impl<T: Read + Write + Send> ByteStream for T {}

/// tungstenite's error as an `io::Error` (its own I/O errors unwrapped).
pub(crate) fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::ConnectionAborted, "websocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// What one [`WsWire::recv`] got.
pub(crate) enum WsRecv {
    /// The payload of a binary message (in [`WsWire::data`]).
    Data,
    /// Nothing within the timeout, or a control message.
    Idle,
    /// The peer closed (close frame, or the socket ended).
    Eof,
}

/// One blocking WebSocket connection (either role), carrying a byte stream.
pub(crate) struct WsWire {
    /// The TCP socket under everything (a clone: read timeouts, shutdown, peer address).
    sock: TcpStream,
    ws: WebSocket<Box<dyn ByteStream>>,
    last: Bytes,
}

impl fmt::Debug for WsWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsWire")
            .field("peer", &self.sock.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl WsWire {
    /// The payload of the last [`WsRecv::Data`].
    pub(crate) fn data(&self) -> &[u8] {
        &self.last
    }

    /// Waits at most `timeout` for a message.
    pub(crate) fn recv(&mut self, timeout: Duration) -> io::Result<WsRecv> {
        self.sock.set_read_timeout(Some(timeout))?;
        match self.ws.read() {
            Ok(Message::Binary(b)) => {
                self.last = b;
                Ok(WsRecv::Data)
            }
            Ok(Message::Text(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "text message on an MTProto WebSocket",
            )),
            Ok(Message::Close(_)) => {
                // tungstenite queued the answering close frame: send it, then we are done.
                let _ = self.ws.flush();
                Ok(WsRecv::Eof)
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(WsRecv::Idle),
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            ) => Ok(WsRecv::Eof),
            Err(tungstenite::Error::Io(e)) if transient(&e) => Ok(WsRecv::Idle),
            Err(e) => Err(io_error(e)),
        }
    }

    /// Sends `data` in binary messages of at most [`SEND_CHUNK`] bytes.
    pub(crate) fn send(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(SEND_CHUNK) {
            self.ws
                .write(Message::Binary(Bytes::copy_from_slice(chunk)))
                .map_err(io_error)?;
        }
        self.ws.flush().map_err(io_error)
    }

    /// Closes with code 1000 (`reason` as the spec's decimal code, or empty), waits briefly for
    /// the peer's close frame, shuts the socket down.
    pub(crate) fn close(&mut self, reason: &str) {
        let _ = self.sock.set_read_timeout(Some(CLOSE_WAIT));
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: reason.to_string().into(),
        };
        if self.ws.close(Some(frame)).is_ok() {
            let _ = self.ws.flush();
            // Bounded: a peer that keeps sending data gets 64 messages, then the socket closes.
            for _ in 0..64 {
                if self.ws.read().is_err() {
                    break;
                }
            }
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }

    /// The peer's address, for logs.
    pub(crate) fn peer(&self) -> String {
        self.sock
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string())
    }
}

/// Client side: TLS for `wss://` with `tls` (roots from the driver config), the upgrade with
/// `Sec-WebSocket-Protocol: binary`, and the check that the server chose it.
pub(crate) fn connect_blocking(
    url: &WsUrl,
    sock: TcpStream,
    timeout: Duration,
    config: &crate::ClientConfig,
) -> io::Result<WsWire> {
    #[cfg(not(feature = "tls"))]
    let _ = config; // only the TLS settings are read, with feature `tls`
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let raw = sock.try_clone()?;
    let stream: Box<dyn ByteStream> = if url.secure {
        #[cfg(feature = "tls")]
        {
            let tls = crate::tls::client_connection(config.tls.as_ref(), &url.host)?;
            Box::new(rustls::StreamOwned::new(tls, raw))
        }
        #[cfg(not(feature = "tls"))]
        {
            drop(raw);
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "wss:// needs the `tls` feature",
            ));
        }
    } else {
        Box::new(raw)
    };
    let request = client_request(url)?;
    let (ws, response) =
        match tungstenite::client::client_with_config(request, stream, Some(self::config())) {
            Ok(r) => r,
            Err(HandshakeError::Failure(e)) => return Err(handshake_error(e)),
            Err(HandshakeError::Interrupted(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "WebSocket upgrade timed out",
                ));
            }
        };
    check_response(&response)?;
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(None)?;
    Ok(WsWire {
        sock,
        ws,
        last: Bytes::new(),
    })
}

fn handshake_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Http(r) => io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("WebSocket upgrade refused: HTTP {}", r.status()),
        ),
        other => io_error(other),
    }
}

/// The upgrade request: the URL and `Sec-WebSocket-Protocol: binary`.
pub(crate) fn client_request(url: &WsUrl) -> io::Result<Request> {
    use tungstenite::client::IntoClientRequest;
    let mut request = url
        .to_string()
        .into_client_request()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(request)
}

/// The server must have chosen `binary` (tungstenite already refuses another choice).
pub(crate) fn check_response<B>(response: &tungstenite::http::Response<B>) -> io::Result<()> {
    match response.headers().get("Sec-WebSocket-Protocol") {
        Some(v) if v.as_bytes().eq_ignore_ascii_case(SUBPROTOCOL.as_bytes()) => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server did not accept the WebSocket subprotocol `binary`",
        )),
    }
}

fn error_response(status: StatusCode, text: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(text.to_string()));
    *r.status_mut() = status;
    r
}

/// Server side of the upgrade: the path must be `/apiws` (404 otherwise) and the client must
/// offer `binary` (400 otherwise), which the answer names.
#[allow(clippy::result_large_err)] // the signature of tungstenite's `Callback`
pub(crate) fn check_request(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if !PATHS.contains(&req.uri().path()) {
        return Err(error_response(StatusCode::NOT_FOUND, "not found"));
    }
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    if !offered {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol: binary is required",
        ));
    }
    resp.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(resp)
}

/// Server side: (TLS with `tls_config`,) the upgrade on `sock` within `timeout`.
pub(crate) fn accept_blocking(
    sock: TcpStream,
    timeout: Duration,
    stream: Box<dyn ByteStream>,
) -> io::Result<WsWire> {
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let ws = match tungstenite::accept_hdr_with_config(stream, check_request, Some(config())) {
        Ok(ws) => ws,
        Err(HandshakeError::Failure(e)) => return Err(io_error(e)),
        Err(HandshakeError::Interrupted(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "WebSocket upgrade timed out",
            ));
        }
    };
    sock.set_write_timeout(None)?;
    Ok(WsWire {
        sock,
        ws,
        last: Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:8080/apiws").unwrap();
        assert_eq!(
            u,
            WsUrl {
                secure: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/apiws".into()
            }
        );
        let u = WsUrl::parse("WSS://venus.web.telegram.org/apiws_test").unwrap();
        assert!(u.secure);
        assert_eq!((u.port, u.path.as_str()), (443, "/apiws_test"));
        let u = WsUrl::parse("ws://[::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 80, "/apiws")
        );
        assert_eq!(u.to_string(), "ws://[::1]:80/apiws");
        for bad in [
            "http://x/apiws",
            "ws://",
            "ws://:80/apiws",
            "ws://h:99999/",
            "ws://[::1/",
            "ws://u@h/",
            "ws://[::1]x/",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(WsUrl::is_ws("wss://a") && WsUrl::is_ws("WS://a") && !WsUrl::is_ws("1.2.3.4:80"));
    }
}

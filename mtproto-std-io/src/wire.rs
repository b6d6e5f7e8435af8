//! The byte pipe under a blocking connection (client or server): a TCP stream, or (feature
//! `websocket`) a WebSocket whose binary messages carry the byte stream.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Whether a read error only means "nothing yet" (a timeout or an interrupted call).
pub(crate) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// What one [`Wire::recv`] got.
pub(crate) enum Recv<'a> {
    /// Bytes of the stream.
    Data(&'a [u8]),
    /// Nothing within the timeout.
    Idle,
    /// The peer closed.
    Eof,
    /// An HTTP exchange ended (feature `http`).
    #[cfg(feature = "http")]
    Http(
        mtproto_core::transport::http::HttpRequestId,
        crate::http::Reply,
    ),
}

/// A connection's byte pipe.
#[derive(Debug)]
pub(crate) enum Wire {
    /// Plain TCP.
    Tcp(TcpStream),
    /// A WebSocket (over TCP or TLS).
    #[cfg(feature = "websocket")]
    Ws(Box<crate::ws::WsWire>),
    /// HTTP lanes (client only): no byte stream, exchanges (see [`Wire::submit`]).
    #[cfg(feature = "http")]
    Http(Box<HttpWire>),
}

/// The blocking client's HTTP lanes and the channel their results come back on.
#[cfg(feature = "http")]
#[derive(Debug)]
pub(crate) struct HttpWire {
    lanes: crate::http::HttpLanes,
    results: std::sync::mpsc::Receiver<(
        mtproto_core::transport::http::HttpRequestId,
        crate::http::Reply,
    )>,
}

#[cfg(feature = "http")]
impl HttpWire {
    pub(crate) fn new(url: crate::http::HttpUrl, config: &crate::ClientConfig) -> Self {
        let (tx, results) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let sink: crate::http::Sink = std::sync::Arc::new(move |id, reply| {
            tx.lock()
                .unwrap_or_else(|e| e.into_inner())
                .send((id, reply))
                .is_ok()
        });
        Self {
            lanes: crate::http::HttpLanes::new(url, config, sink),
            results,
        }
    }
}

impl Wire {
    /// Waits at most `timeout` for bytes (`buf` is the TCP read buffer).
    pub(crate) fn recv<'a>(
        &'a mut self,
        timeout: Duration,
        buf: &'a mut [u8],
    ) -> io::Result<Recv<'a>> {
        match self {
            Wire::Tcp(s) => {
                s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
                match s.read(buf) {
                    Ok(0) => Ok(Recv::Eof),
                    Ok(n) => Ok(Recv::Data(buf.get(..n).unwrap_or_default())),
                    Err(e) if transient(&e) => Ok(Recv::Idle),
                    Err(e) => Err(e),
                }
            }
            #[cfg(feature = "http")]
            Wire::Http(h) => match h.results.recv_timeout(timeout) {
                Ok((id, reply)) => Ok(Recv::Http(id, reply)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(Recv::Idle),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(Recv::Eof),
            },
            #[cfg(feature = "websocket")]
            Wire::Ws(w) => match w.recv(timeout.max(Duration::from_millis(1)))? {
                crate::ws::WsRecv::Data => Ok(Recv::Data(w.data())),
                crate::ws::WsRecv::Idle => Ok(Recv::Idle),
                crate::ws::WsRecv::Eof => Ok(Recv::Eof),
            },
        }
    }

    /// Sends all of `data`.
    pub(crate) fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.write_all(data),
            #[cfg(feature = "websocket")]
            Wire::Ws(w) => w.send(data),
            #[cfg(feature = "http")]
            Wire::Http(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "HTTP carries packets, not a byte stream",
            )),
        }
    }

    /// HTTP: POSTs `body` as request `id` (on a byte stream: nothing to do).
    #[cfg(feature = "http")]
    pub(crate) fn submit(
        &mut self,
        id: mtproto_core::transport::http::HttpRequestId,
        body: Vec<u8>,
    ) {
        if let Wire::Http(h) = self {
            h.lanes.submit(id, body);
        }
    }

    /// Closes (a WebSocket with code 1000) and shuts the socket down.
    pub(crate) fn close(&mut self) {
        match self {
            Wire::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            #[cfg(feature = "websocket")]
            Wire::Ws(w) => w.close(""),
            #[cfg(feature = "http")]
            Wire::Http(_) => {} // dropping the lanes ends them
        }
    }

    /// The peer's address, for logs.
    pub(crate) fn peer(&self) -> String {
        match self {
            Wire::Tcp(s) => s
                .peer_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string()),
            #[cfg(feature = "websocket")]
            Wire::Ws(w) => w.peer(),
            #[cfg(feature = "http")]
            Wire::Http(h) => format!("{:?}", h.lanes),
        }
    }
}

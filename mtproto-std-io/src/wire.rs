//! The byte pipe under a blocking connection (client or server): a TCP stream, or (feature
//! `websocket`) a WebSocket whose binary messages carry the byte stream.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What one [`Wire::recv`] got.
pub(crate) enum Recv<'a> {
    /// Bytes of the stream.
    Data(&'a [u8]),
    /// Nothing within the timeout.
    Idle,
    /// The peer closed.
    Eof,
}

/// A connection's byte pipe.
#[derive(Debug)]
pub(crate) enum Wire {
    /// Plain TCP.
    Tcp(TcpStream),
    /// A WebSocket (over TCP or TLS).
    #[cfg(feature = "websocket")]
    Ws(Box<crate::ws::WsWire>),
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
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        Ok(Recv::Idle)
                    }
                    Err(e) => Err(e),
                }
            }
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
        }
    }
}

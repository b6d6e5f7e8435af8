//! The WebSocket transports over loopback: the blocking and the tokio client against the
//! built-in server's `/apiws` endpoint, over `ws://` (on the MTProto port) and `wss://` (the TLS
//! port, a fresh self-signed certificate). Relays written with tungstenite directly cut the
//! byte stream into WebSocket messages at odd points and merge what arrives together, in each
//! direction, to show message boundaries mean nothing to either side. Every loop is bounded.
#![cfg(all(feature = "websocket", feature = "tls", feature = "tokio"))]

mod common;
use common::{config, exercise_blocking, exercise_tokio, payload};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mtproto_std_io::client::Client;
use mtproto_std_io::core::connection::TransportConfig;
use mtproto_std_io::core::handshake::RsaPrivateKey;
use mtproto_std_io::core::transport::Framing;
use mtproto_std_io::server::{Server, ServerHandle, ServerOptions, WssOptions};
use mtproto_std_io::tls::SelfSigned;
use mtproto_std_io::tokio_client::TokioClient;
use mtproto_std_io::{ClientError, echo};
use tungstenite::http::StatusCode;
use tungstenite::{Message, client::IntoClientRequest};

/// Payload sizes echoed: 1 B … 256 KiB.
const SIZES: [usize; 7] = [1, 3, 255, 4096, 65_537, 200_000, 262_144];

fn server(cert: &SelfSigned) -> ServerHandle {
    Server::bind(
        "127.0.0.1:0",
        ServerOptions {
            rsa_keys: vec![RsaPrivateKey::demo()],
            websocket: true,
            wss: Some(WssOptions {
                listen: "127.0.0.1:0".into(),
                config: cert.server_config().unwrap(),
            }),
            ..ServerOptions::default()
        },
    )
    .unwrap()
    .spawn()
}

fn ws_url(server: &ServerHandle) -> String {
    format!("ws://{}/apiws", server.local_addr())
}

fn wss_url(server: &ServerHandle) -> String {
    // By name: the certificate is checked against `localhost`.
    format!(
        "wss://localhost:{}/apiws",
        server.tls_local_addr().unwrap().port()
    )
}

#[test]
fn blocking_client_over_ws_and_wss() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    let ws = Client::connect(config(
        ws_url(&server),
        TransportConfig::obfuscated(Framing::Intermediate, None),
        None,
    ))
    .unwrap();
    exercise_blocking(&server, ws, &SIZES, b"pushed over a websocket");
    let wss = Client::connect(config(
        wss_url(&server),
        TransportConfig::obfuscated(Framing::PaddedIntermediate, None),
        Some(&cert),
    ))
    .unwrap();
    exercise_blocking(&server, wss, &SIZES, b"pushed over a websocket");
    let stats = server.stop();
    assert_eq!((stats.handshakes, stats.failed), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_over_ws_and_wss() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    for (addr, cert) in [(ws_url(&server), None), (wss_url(&server), Some(&cert))] {
        let transport = TransportConfig::obfuscated(Framing::Abridged, None);
        let client = TokioClient::connect(config(addr.clone(), transport, cert))
            .await
            .unwrap();
        // Every size at once: the answers interleave on the one WebSocket.
        exercise_tokio(&server, client, &SIZES, addr.as_bytes()).await;
        println!("{addr} ok");
    }
    let stats = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!((stats.handshakes, stats.failed), (2, 0));
}

#[test]
fn a_plain_transport_inside_a_websocket_is_refused_on_both_sides() {
    // The client refuses to start.
    let err = Client::connect(config(
        "ws://127.0.0.1:1/apiws".into(),
        TransportConfig::plain(Framing::Intermediate),
        None,
    ))
    .unwrap_err();
    assert!(matches!(err, ClientError::Config(_)), "{err}");
    // The server closes a WebSocket whose stream starts with a plain framing's tag.
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    let (mut ws, _) = ws_connect(server.local_addr(), "/apiws", true).unwrap();
    // Intermediate: the tag, then a (plausible) 40-byte frame.
    let mut bytes = vec![0xee; 4];
    bytes.extend_from_slice(&40u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 40]);
    ws.send(Message::Binary(bytes.into())).unwrap();
    let closed = read_until_closed(&mut ws);
    assert_eq!(closed, Some(1000), "closed with code 1000");
    let stats = server.stop();
    assert_eq!((stats.failed, stats.handshakes), (1, 0));
}

#[test]
fn upgrades_need_the_path_and_the_binary_subprotocol() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    let status = |path: &str, protocol: bool| match ws_connect(server.local_addr(), path, protocol)
    {
        Err(tungstenite::Error::Http(r)) => r.status(),
        Err(e) => panic!("{path}: {e}"),
        Ok(_) => StatusCode::SWITCHING_PROTOCOLS,
    };
    assert_eq!(status("/", true), StatusCode::NOT_FOUND);
    assert_eq!(status("/api", true), StatusCode::NOT_FOUND);
    assert_eq!(status("/apiws", false), StatusCode::BAD_REQUEST);
    assert_eq!(status("/apiws", true), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(status("/apiws_test", true), StatusCode::SWITCHING_PROTOCOLS);
    // A server that never names `binary` is refused by the client: a tungstenite server
    // that answers without a subprotocol.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bare = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let _ = tungstenite::accept(s);
    });
    let err = match Client::connect(config(
        format!("ws://{addr}/apiws"),
        TransportConfig::obfuscated(Framing::Intermediate, None),
        None,
    )) {
        Err(e) => e,
        Ok(_) => panic!("connected without the subprotocol"),
    };
    assert!(matches!(err, ClientError::GaveUp { .. }), "{err}");
    bare.join().unwrap();
    server.stop();
}

#[test]
fn message_boundaries_mean_nothing_in_either_direction() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    // Server → client re-cut: the client speaks WebSocket to the relay, the relay speaks
    // obfuscated MTProto over TCP to the server.
    let to_client = Relay::start(Mode::WsToClient, server.local_addr());
    let client = Client::connect(config(
        format!("ws://{}/apiws", to_client.addr),
        TransportConfig::obfuscated(Framing::Intermediate, None),
        None,
    ))
    .unwrap();
    exercise_with_bursts(client);
    // Our client closed its WebSocket with 1000.
    to_client.check(Some(1000));
    // Client → server re-cut: the client speaks obfuscated MTProto over TCP to the relay, the
    // relay speaks WebSocket to the server's /apiws.
    let to_server = Relay::start(Mode::WsToServer, server.local_addr());
    let client = Client::connect(config(
        to_server.addr.to_string(),
        TransportConfig::obfuscated(Framing::PaddedIntermediate, None),
        None,
    ))
    .unwrap();
    exercise_with_bursts(client);
    // The client hung up TCP; the relay ends without a close frame from the server.
    to_server.check(None);
    let stats = server.stop();
    assert_eq!((stats.handshakes, stats.failed), (2, 0));
}

/// Several requests in flight at once (their frames travel back to back), then each answer.
fn exercise_with_bursts(mut client: Client) {
    for _ in 0..3 {
        client.ping().unwrap();
    }
    let ids: Vec<_> = SIZES
        .iter()
        .map(|&n| {
            (
                n,
                client.submit(&echo::request(&payload(n)).unwrap()).unwrap(),
            )
        })
        .collect();
    for (n, id) in ids {
        let answer = client.wait(id, Duration::from_secs(30)).unwrap();
        assert_eq!(
            echo::parse_answer(&answer),
            Some(&payload(n)[..]),
            "echo {n}"
        );
    }
    assert_eq!(client.disconnects(), 0);
    client.close();
}

/// A tungstenite client to the server's `path`, optionally offering `binary`.
#[allow(clippy::result_large_err)]
fn ws_connect(
    addr: SocketAddr,
    path: &str,
    protocol: bool,
) -> Result<
    (
        tungstenite::WebSocket<TcpStream>,
        tungstenite::handshake::client::Response,
    ),
    tungstenite::Error,
> {
    let mut req = format!("ws://{addr}{path}").into_client_request()?;
    if protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    }
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    tungstenite::client(req, s).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
    })
}

/// Reads until the peer's close frame; its code.
fn read_until_closed(ws: &mut tungstenite::WebSocket<TcpStream>) -> Option<u16> {
    for _ in 0..100 {
        match ws.read() {
            Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Accept WebSocket clients, connect to the server over TCP.
    WsToClient,
    /// Accept TCP clients, connect to the server's /apiws.
    WsToServer,
}

/// One relay connection's WebSocket side: the bytes coming from TCP are sent in messages cut
/// at odd sizes (cycling through [`CUTS`]); what is left over waits for the next read and goes
/// out with it, so messages both split MTProto frames and merge them.
struct Relay {
    addr: SocketAddr,
    /// Messages sent with the re-cut bytes.
    messages: Arc<AtomicUsize>,
    /// Bytes carried in them.
    bytes: Arc<AtomicUsize>,
    /// Messages of 1 byte.
    tiny: Arc<AtomicUsize>,
    /// Messages that carried bytes of more than one TCP read.
    merged: Arc<AtomicUsize>,
    /// The close code the WebSocket peer sent (0: none yet).
    close_code: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

/// Message sizes the relay cuts at.
const CUTS: [usize; 8] = [1, 2, 3, 5, 61, 4099, 1, 70_001];

impl Relay {
    fn start(mode: Mode, server: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = Relay {
            addr,
            messages: Arc::default(),
            bytes: Arc::default(),
            tiny: Arc::default(),
            merged: Arc::default(),
            close_code: Arc::default(),
            done: Arc::default(),
        };
        let close_code = relay.close_code.clone();
        let (messages, bytes, tiny, merged, done) = (
            relay.messages.clone(),
            relay.bytes.clone(),
            relay.tiny.clone(),
            relay.merged.clone(),
            relay.done.clone(),
        );
        thread::spawn(move || {
            let (accepted, _) = listener.accept().unwrap();
            let (ws_sock, tcp, mut ws) = match mode {
                Mode::WsToClient => {
                    let ws = tungstenite::accept_hdr(accepted.try_clone().unwrap(), answer_binary)
                        .unwrap();
                    (accepted, TcpStream::connect(server).unwrap(), ws)
                }
                Mode::WsToServer => {
                    let (ws, _) = ws_connect(server, "/apiws", true).unwrap();
                    (ws.get_ref().try_clone().unwrap(), accepted, ws)
                }
            };
            let mut tcp = tcp;
            let mut buf = vec![0u8; 256 * 1024];
            let mut pending: Vec<u8> = Vec::new();
            let mut pending_reads = 0usize;
            let mut cut = 0usize;
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                // TCP → WebSocket, re-cut.
                tcp.set_read_timeout(Some(Duration::from_millis(2)))
                    .unwrap();
                let idle = match tcp.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        pending.extend_from_slice(&buf[..n]);
                        pending_reads += 1;
                        false
                    }
                    Err(e) if is_timeout(&e) => true,
                    Err(_) => break,
                };
                // Cut while there is enough for the next size; when TCP is idle, the rest goes
                // out in one message.
                while !pending.is_empty() && (idle || pending.len() >= CUTS[cut % CUTS.len()]) {
                    let n = CUTS[cut % CUTS.len()].min(pending.len());
                    cut += 1;
                    let msg: Vec<u8> = pending.drain(..n).collect();
                    messages.fetch_add(1, Ordering::SeqCst);
                    bytes.fetch_add(n, Ordering::SeqCst);
                    if n == 1 {
                        tiny.fetch_add(1, Ordering::SeqCst);
                    }
                    if pending_reads > 1 {
                        merged.fetch_add(1, Ordering::SeqCst);
                    }
                    pending_reads = usize::from(!pending.is_empty());
                    if ws.send(Message::Binary(msg.into())).is_err() {
                        break;
                    }
                }
                // WebSocket → TCP, as is.
                ws_sock
                    .set_read_timeout(Some(Duration::from_millis(2)))
                    .unwrap();
                match ws.read() {
                    Ok(Message::Binary(b)) => {
                        if tcp.write_all(&b).is_err() {
                            break;
                        }
                    }
                    Ok(Message::Close(f)) => {
                        let code = f.map_or(1005, |f| u16::from(f.code));
                        close_code.store(usize::from(code), Ordering::SeqCst);
                        break;
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                    Err(_) => break,
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        relay
    }

    /// The relay did cut and merge (else the test proved nothing); the WebSocket peer closed
    /// with `close_code` (`None`: the relay closed first).
    fn check(&self, close_code: Option<u16>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.done.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(self.done.load(Ordering::SeqCst), "the relay ended");
        if let Some(code) = close_code {
            assert_eq!(self.close_code.load(Ordering::SeqCst), usize::from(code));
        }
        let (messages, tiny, merged) = (
            self.messages.load(Ordering::SeqCst),
            self.tiny.load(Ordering::SeqCst),
            self.merged.load(Ordering::SeqCst),
        );
        let bytes = self.bytes.load(Ordering::SeqCst);
        println!("relay: {messages} messages, {bytes} bytes, {tiny} of 1 byte, {merged} merged");
        assert!(bytes > 500_000, "{bytes} bytes");
        assert!(tiny >= 2, "1-byte messages: {tiny}");
        assert!(merged >= 1, "messages spanning reads: {merged}");
        assert!(messages > 20, "{messages} messages");
    }
}

/// The relay's upgrade answer names `binary`.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn answer_binary(
    _: &tungstenite::handshake::server::Request,
    mut r: tungstenite::handshake::server::Response,
) -> Result<tungstenite::handshake::server::Response, tungstenite::handshake::server::ErrorResponse>
{
    r.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    Ok(r)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The driver's reconnect works over wss as over TCP: the server dies with its connections and
/// comes back (same key store, same ports); the next request reconnects, upgrades again and
/// goes on with the same key.
#[test]
fn a_wss_client_reconnects_to_a_restarted_server_with_its_key() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    let (addr, tls_addr) = (server.local_addr(), server.tls_local_addr().unwrap());
    let store = server.key_store();
    let mut client = Client::connect(config(
        wss_url(&server),
        TransportConfig::obfuscated(Framing::Intermediate, None),
        Some(&cert),
    ))
    .unwrap();
    let key = client.auth_key_id();
    client.ping().unwrap();
    assert_eq!(server.kill().handshakes, 1);
    let server = Server::bind(
        &addr.to_string(),
        ServerOptions {
            rsa_keys: vec![RsaPrivateKey::demo()],
            websocket: true,
            wss: Some(WssOptions {
                listen: tls_addr.to_string(),
                config: cert.server_config().unwrap(),
            }),
            key_store: Some(store),
            ..ServerOptions::default()
        },
    )
    .unwrap()
    .spawn();
    let p = payload(10_000);
    let answer = client.invoke(&echo::request(&p).unwrap()).unwrap();
    assert_eq!(echo::parse_answer(&answer), Some(&p[..]));
    assert_eq!(client.auth_key_id(), key);
    assert!(client.disconnects() >= 1);
    client.close();
    let stats = server.stop();
    assert_eq!((stats.handshakes, stats.failed), (0, 0));
}

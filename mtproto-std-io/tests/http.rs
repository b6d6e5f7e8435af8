//! The HTTP transport over loopback: the blocking and the tokio client against the built-in
//! server's `POST /api` endpoint, over `http://` (on the MTProto port) and `https://` (the TLS
//! port, a fresh self-signed certificate): handshake, pings, echoes of several sizes, an update
//! pushed by the server (it can only come back in the answer to the held long poll), a server
//! restart; and the server's HTTP rules seen from a raw socket. Every loop is bounded.
#![cfg(all(feature = "http", feature = "tls", feature = "tokio"))]

mod common;
use common::{config as client_config, exercise_blocking, exercise_tokio, payload};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mtproto_std_io::client::Client;
use mtproto_std_io::core::connection::{ConnectionConfig, TransportConfig};
use mtproto_std_io::core::handshake::{RsaKeySet, RsaPrivateKey};
use mtproto_std_io::core::transport::Status;
use mtproto_std_io::core::transport::http::{ResponseParser, write_request};
use mtproto_std_io::server::{Server, ServerHandle, ServerOptions, WssOptions};
use mtproto_std_io::tls::SelfSigned;
use mtproto_std_io::tokio_client::TokioClient;
use mtproto_std_io::{ClientConfig, ClientError, echo};

/// Payload sizes echoed: 1 B … 256 KiB.
const SIZES: [usize; 6] = [1, 3, 255, 4096, 65_537, 262_144];

fn options(cert: &SelfSigned) -> ServerOptions {
    ServerOptions {
        rsa_keys: vec![RsaPrivateKey::demo()],
        http: true,
        wss: Some(WssOptions {
            listen: "127.0.0.1:0".into(),
            config: cert.server_config().unwrap(),
        }),
        ..ServerOptions::default()
    }
}

fn server(cert: &SelfSigned) -> ServerHandle {
    Server::bind("127.0.0.1:0", options(cert)).unwrap().spawn()
}

fn config(addr: String, cert: Option<&SelfSigned>) -> ClientConfig {
    client_config(addr, TransportConfig::http(), cert)
}

fn http_url(server: &ServerHandle) -> String {
    format!("http://{}/api", server.local_addr())
}

fn https_url(server: &ServerHandle) -> String {
    // By name: the certificate is checked against `localhost`.
    format!(
        "https://localhost:{}/api",
        server.tls_local_addr().unwrap().port()
    )
}

#[test]
fn blocking_client_over_http_and_https() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    // Nothing of ours is in flight when the update is pushed: it can only ride on the held
    // long poll.
    exercise_blocking(
        &server,
        Client::connect(config(http_url(&server), None)).unwrap(),
        &SIZES,
        b"pushed through the long poll",
    );
    exercise_blocking(
        &server,
        Client::connect(config(https_url(&server), Some(&cert))).unwrap(),
        &SIZES,
        b"pushed through the long poll",
    );
    let stats = server.stop();
    assert_eq!((stats.handshakes, stats.failed), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_over_http_and_https() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    for (addr, cert) in [(http_url(&server), None), (https_url(&server), Some(&cert))] {
        let client = TokioClient::connect(config(addr.clone(), cert))
            .await
            .unwrap();
        // Every size at once: several POSTs out together, beside the held long poll.
        exercise_tokio(&server, client, &SIZES, addr.as_bytes()).await;
    }
    let stats = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!((stats.handshakes, stats.failed), (2, 0));
}

/// The server dies with its connections and held requests and comes back (same key store, same
/// ports): the failed exchanges are retried by the core, the client goes on with its key.
#[test]
fn an_http_client_recovers_from_a_server_restart_with_its_key() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    let (addr, tls_addr) = (server.local_addr(), server.tls_local_addr().unwrap());
    let store = server.key_store();
    let mut client = Client::connect(config(https_url(&server), Some(&cert))).unwrap();
    let key = client.auth_key_id();
    client.ping().unwrap();
    assert_eq!(server.kill().handshakes, 1);
    let mut opts = options(&cert);
    opts.wss.as_mut().unwrap().listen = tls_addr.to_string();
    opts.key_store = Some(store);
    let server = Server::bind(&addr.to_string(), opts).unwrap().spawn();
    let p = payload(10_000);
    let answer = client.invoke(&echo::request(&p).unwrap()).unwrap();
    assert_eq!(echo::parse_answer(&answer), Some(&p[..]));
    client.ping().unwrap();
    assert_eq!(client.auth_key_id(), key);
    client.close();
    let stats = server.stop();
    assert_eq!(stats.handshakes, 0, "the key was reused");
}

/// An http(s) URL needs the HTTP transport and the HTTP transport an http(s) URL.
#[test]
fn urls_and_transports_must_match() {
    let keys = || RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    let tcp = ConnectionConfig::new(
        2,
        TransportConfig::plain(mtproto_std_io::core::transport::Framing::Intermediate),
        keys(),
    );
    let e = Client::connect(ClientConfig::new("http://127.0.0.1:1/api", tcp)).unwrap_err();
    assert!(matches!(e, ClientError::Config(_)), "{e}");
    let http = ConnectionConfig::new(2, TransportConfig::http(), keys());
    let e = Client::connect(ClientConfig::new("127.0.0.1:1", http)).unwrap_err();
    assert!(matches!(e, ClientError::Config(_)), "{e}");
}

/// One raw HTTP/1.1 exchange on `sock`: (status, keep-alive).
fn exchange(sock: &mut TcpStream, request: &[u8]) -> (u16, bool) {
    sock.write_all(request).unwrap();
    let mut parser = ResponseParser::new(1 << 20);
    let mut buf = [0u8; 4096];
    let mut input = Vec::new();
    loop {
        match parser.decode(&input).unwrap() {
            (_, Status::Complete(r)) => return (r.status, r.keep_alive),
            (n, Status::Partial) => {
                input.drain(..n);
            }
        }
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a response");
        input.extend_from_slice(&buf[..n]);
    }
}

/// The server's HTTP side from a raw socket: an unknown path is 404 on a kept-alive
/// connection, a method other than POST is 405 and the connection closes, a body above the
/// frame cap is 413, garbage where a packet should be is 400 or 404 (never a hang), all with
/// the MTProto port still serving.
#[test]
fn the_server_answers_paths_methods_and_sizes() {
    let cert = SelfSigned::localhost().unwrap();
    let server = server(&cert);
    let addr = server.local_addr();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = Vec::new();
    write_request(&mut req, "localhost", "/nope", &[0; 8]).unwrap();
    assert_eq!(exchange(&mut sock, &req), (404, true));
    // A body that is no MTProto packet (an unknown auth key id): the endpoint answers 404
    // (transport error -404) and stays up.
    req.clear();
    write_request(&mut req, "localhost", "/api", &[7; 64]).unwrap();
    let (status, keep) = exchange(&mut sock, &req);
    assert!(matches!(status, 400 | 404), "{status}");
    assert!(keep);
    let (status, keep) = exchange(&mut sock, b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, keep), (405, false));
    let mut rest = Vec::new();
    assert_eq!(sock.read_to_end(&mut rest).unwrap(), 0, "closed after 405");

    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (status, _) = exchange(
        &mut sock,
        b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
    );
    assert_eq!(status, 413);

    // The port still speaks MTProto and HTTP.
    let mut client = Client::connect(config(http_url(&server), None)).unwrap();
    client.ping().unwrap();
    client.close();
    let stats = server.stop();
    assert_eq!(stats.handshakes, 1);
}

/// An answer the server makes only after the request's own POST was answered (the endpoint
/// holds every answer 300 ms; a request-lane POST is answered at once) comes back through the
/// held long poll: without it nothing would ever carry the answer to the client.
#[test]
fn a_late_answer_arrives_through_the_long_poll() {
    let cert = SelfSigned::localhost().unwrap();
    let mut opts = options(&cert);
    opts.http_answer_delay = Duration::from_millis(300);
    let server = Server::bind("127.0.0.1:0", opts).unwrap().spawn();
    let mut client = Client::connect(config(http_url(&server), None)).unwrap();
    for n in [16, 70_000] {
        let p = payload(n);
        let answer = client.invoke(&echo::request(&p).unwrap()).unwrap();
        assert_eq!(echo::parse_answer(&answer), Some(&p[..]), "echo {n}");
    }
    client.close();
    let stats = server.stop();
    assert_eq!((stats.handshakes, stats.requests, stats.failed), (1, 2, 0));
}

/// The tokio client (hyper connections) over https: answers held back past their POST come
/// through the long poll, and after a server restart (same key store and ports) it goes on with
/// its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_takes_late_answers_and_survives_a_server_restart() {
    let cert = SelfSigned::localhost().unwrap();
    let mut opts = options(&cert);
    opts.http_answer_delay = Duration::from_millis(300);
    let server = Server::bind("127.0.0.1:0", opts).unwrap().spawn();
    let (addr, tls_addr) = (server.local_addr(), server.tls_local_addr().unwrap());
    let store = server.key_store();
    let client = TokioClient::connect(config(https_url(&server), Some(&cert)))
        .await
        .unwrap();
    let key = client.auth_key_id();
    let p = payload(5_000);
    let answer = client.invoke(echo::request(&p).unwrap()).await.unwrap();
    assert_eq!(echo::parse_answer(&answer), Some(&p[..]));
    let stats = tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    assert_eq!(stats.handshakes, 1);
    let mut opts = options(&cert);
    opts.wss.as_mut().unwrap().listen = tls_addr.to_string();
    opts.key_store = Some(store);
    let server = Server::bind(&addr.to_string(), opts).unwrap().spawn();
    let p = payload(70_000);
    let answer = client.invoke(echo::request(&p).unwrap()).await.unwrap();
    assert_eq!(echo::parse_answer(&answer), Some(&p[..]));
    client.ping().await.unwrap();
    assert_eq!(client.auth_key_id(), key);
    client.close().await;
    let stats = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(stats.handshakes, 0, "the key was reused");
}

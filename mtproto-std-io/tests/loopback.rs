//! Driver tests over loopback TCP against the built-in server (through a fault-injecting proxy
//! where needed). Every loop is bounded by a timeout.

mod proxy;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mtproto_std_io::client::Client;
use mtproto_std_io::core::connection::{ConnectionConfig, ResumeState, TransportConfig};
use mtproto_std_io::core::crypto::AuthKey;
use mtproto_std_io::core::handshake::{RsaKeySet, RsaPrivateKey};
use mtproto_std_io::core::session::SavedSession;
use mtproto_std_io::core::transport::Framing;
use mtproto_std_io::keyfile::KeyFile;
use mtproto_std_io::server::{Server, ServerHandle, ServerOptions};
use mtproto_std_io::{CallError, ClientConfig, ClientError, echo};
use proxy::Proxy;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtproto-loopback-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn server_at(addr: &str, options: ServerOptions) -> ServerHandle {
    Server::bind(addr, options).unwrap().spawn()
}

fn options() -> ServerOptions {
    ServerOptions {
        rsa_keys: vec![RsaPrivateKey::demo()],
        seed: Some([1; 32]),
        ..ServerOptions::default()
    }
}

fn client_config(addr: impl Into<String>) -> ClientConfig {
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    let mut c = ClientConfig::new(
        addr,
        ConnectionConfig::new(2, TransportConfig::plain(Framing::Intermediate), keys),
    );
    c.seed = Some([2; 32]);
    c.request_timeout = Duration::from_secs(20);
    c
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

fn echo_ok(client: &mut Client, n: usize) {
    let p = payload(n);
    let answer = client.invoke(&echo::request(&p).unwrap()).unwrap();
    assert_eq!(echo::parse_answer(&answer), Some(&p[..]), "echo {n}");
}

#[test]
fn a_request_cut_mid_way_completes_exactly_once_after_reconnect() {
    let server = server_at("127.0.0.1:0", options());
    let proxy = Proxy::start(server.local_addr());
    let mut client = Client::connect(client_config(proxy.addr.to_string())).unwrap();
    echo_ok(&mut client, 16);
    let before = server.stats().requests;
    // The next request is 300 KB: the proxy cuts the connection after 100 KB of it.
    proxy.cut_after_client_bytes(100_000);
    echo_ok(&mut client, 300_000);
    assert_eq!(proxy.cuts(), 1, "the connection was cut");
    assert_eq!(client.disconnects(), 1);
    assert_eq!(proxy.accepted(), 2, "one reconnect");
    assert_eq!(client.in_flight(), 0);
    // The server ran it once: the cut copy never arrived whole.
    assert_eq!(server.stats().requests - before, 1);
    // And the connection goes on.
    echo_ok(&mut client, 1000);
}

#[test]
fn an_answer_lost_with_the_connection_is_delivered_once_without_running_the_request_again() {
    let server = server_at("127.0.0.1:0", options());
    let proxy = Proxy::start(server.local_addr());
    let mut client = Client::connect(client_config(proxy.addr.to_string())).unwrap();
    echo_ok(&mut client, 16);
    let before = server.stats().requests;
    // The server runs the request, its answer is lost, then the connection dies.
    proxy.blackhole(true);
    let p = payload(5000);
    let id = client.submit(&echo::request(&p).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stats().requests == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.stats().requests, before + 1, "the server ran it");
    proxy.kill_all();
    proxy.blackhole(false);
    // The client reconnects to the same session; the server resends the unacknowledged answer.
    let a = client.wait(id, Duration::from_secs(20)).unwrap();
    assert_eq!(echo::parse_answer(&a), Some(&p[..]));
    assert_eq!(client.disconnects(), 1);
    assert_eq!(
        server.stats().requests,
        before + 1,
        "and did not run it again"
    );
    echo_ok(&mut client, 100);
}

#[test]
fn a_restarted_server_accepts_the_persisted_key() {
    let dir = temp_dir("restart");
    let key_path = dir.join("client.key");
    let server = server_at("127.0.0.1:0", options());
    let addr = server.local_addr();
    let store = server.key_store();
    let mut config = client_config(addr.to_string());
    config.key_file = Some(key_path.clone());
    let mut client = Client::connect(config.clone()).unwrap();
    assert!(!client.resumed_key());
    let key_id = client.auth_key_id().unwrap();
    echo_ok(&mut client, 64);
    // The server goes away with its connections, and comes back with the same key store.
    assert_eq!(server.kill().handshakes, 1);
    let server = server_at(
        &addr.to_string(),
        ServerOptions {
            key_store: Some(store),
            ..options()
        },
    );
    echo_ok(&mut client, 64);
    assert_eq!(client.auth_key_id(), Some(key_id));
    assert!(client.disconnects() >= 1);
    client.close();
    // A new client process would load the key from the file.
    let mut client = Client::connect(config).unwrap();
    assert!(client.resumed_key());
    assert_eq!(client.auth_key_id(), Some(key_id));
    echo_ok(&mut client, 64);
    client.close();
    assert_eq!(server.stop().handshakes, 0, "no new key was made");
}

#[test]
fn a_missing_pong_closes_the_connection_and_the_next_call_reconnects() {
    let server = server_at("127.0.0.1:0", options());
    let proxy = Proxy::start(server.local_addr());
    let mut config = client_config(proxy.addr.to_string());
    config.connection.session.pong_timeout_ms = 300;
    let mut client = Client::connect(config).unwrap();
    client.ping().unwrap();
    proxy.blackhole(true);
    let t = Instant::now();
    assert!(matches!(client.ping(), Err(CallError::Timeout)));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(client.disconnects(), 1);
    proxy.blackhole(false);
    client.ping().unwrap();
    echo_ok(&mut client, 100);
    drop(server);
}

#[test]
fn in_flight_requests_are_bounded() {
    let server = server_at("127.0.0.1:0", options());
    let mut config = client_config(server.local_addr().to_string());
    config.max_in_flight = 3;
    let mut client = Client::connect(config).unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let p = payload(1000 + i);
        ids.push((client.submit(&echo::request(&p).unwrap()).unwrap(), p));
        assert!(client.in_flight() <= 3, "{} in flight", client.in_flight());
    }
    for (id, p) in ids {
        let a = client.wait(id, Duration::from_secs(20)).unwrap();
        assert_eq!(echo::parse_answer(&a), Some(&p[..]));
    }
}

#[test]
fn unknown_methods_get_rpc_error_400() {
    let server = server_at("127.0.0.1:0", options());
    let mut client = Client::connect(client_config(server.local_addr().to_string())).unwrap();
    match client.invoke(&0xdead_beefu32.to_le_bytes()) {
        Err(CallError::Rpc(e)) => assert_eq!(
            (e.code, e.message.as_str()),
            (400, "METHOD_NOT_IMPLEMENTED")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_key_the_server_does_not_know_is_reported_never_replaced() {
    let dir = temp_dir("unknown");
    let key_path = dir.join("client.key");
    {
        let kf = KeyFile::open(&key_path).unwrap();
        kf.save(&ResumeState {
            auth_key: AuthKey::from_bytes([0x42; 256]),
            session: SavedSession {
                session_id: 1,
                salt: 0,
                time_offset_secs: 0,
                last_msg_id: 0,
                seq_count: 0,
            },
            key_created_at: None,
        })
        .unwrap();
    }
    let saved = std::fs::read(&key_path).unwrap();
    let server = server_at("127.0.0.1:0", options());
    let mut config = client_config(server.local_addr().to_string());
    config.key_file = Some(key_path.clone());
    let err = match Client::connect(config) {
        Ok(mut c) => c.ping().map(|_| ()).unwrap_err(),
        Err(e) => CallError::Client(e),
    };
    assert!(
        matches!(err, CallError::Client(ClientError::AuthKeyUnknown)),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read(&key_path).unwrap(),
        saved,
        "the key file is untouched"
    );
    assert_eq!(server.stop().handshakes, 0, "no new key was made");
}

#[test]
fn pushed_updates_reach_the_client() {
    let server = server_at("127.0.0.1:0", options());
    let mut client = Client::connect(client_config(server.local_addr().to_string())).unwrap();
    client.ping().unwrap();
    let update = echo::answer(b"update").unwrap();
    assert_eq!(server.push_update(&update), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        client.run_for(Duration::from_millis(50)).unwrap();
        got = client.take_updates();
    }
    assert_eq!(got, vec![update]);
}

//! What the loopback tests of the HTTP and WebSocket transports share (`tests/http.rs`,
//! `tests/websocket.rs`): the client configuration, the payloads, and the exercise both clients
//! go through on every transport.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use mtproto_std_io::client::Client;
use mtproto_std_io::core::connection::{ConnectionConfig, TransportConfig};
use mtproto_std_io::core::handshake::{RsaKeySet, RsaPrivateKey};
use mtproto_std_io::server::ServerHandle;
use mtproto_std_io::tls::SelfSigned;
use mtproto_std_io::tokio_client::TokioClient;
use mtproto_std_io::{ClientConfig, echo};

/// A client of the demo server at `addr` over `transport`, trusting `cert` for TLS.
pub fn config(addr: String, transport: TransportConfig, cert: Option<&SelfSigned>) -> ClientConfig {
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    let mut c = ClientConfig::new(addr, ConnectionConfig::new(2, transport, keys));
    c.request_timeout = Duration::from_secs(30);
    c.max_failures = Some(2);
    c.tls = cert.map(|c| c.client_config().unwrap());
    c
}

/// Incompressible bytes (xorshift64), so the sizes on the wire are the sizes asked for.
pub fn payload(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Handshake, pings, echoes of every size in `sizes` one after another, an update pushed by
/// the server (carrying `update_text`), close.
pub fn exercise_blocking(
    server: &ServerHandle,
    mut client: Client,
    sizes: &[usize],
    update_text: &[u8],
) {
    assert!(client.auth_key_id().is_some());
    for _ in 0..3 {
        client.ping().unwrap();
    }
    for &n in sizes {
        let p = payload(n);
        let answer = client.invoke(&echo::request(&p).unwrap()).unwrap();
        assert_eq!(echo::parse_answer(&answer), Some(&p[..]), "echo {n}");
    }
    let update = echo::answer(update_text).unwrap();
    assert!(server.push_update(&update) >= 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        client.run_for(Duration::from_millis(50)).unwrap();
        got = client.take_updates();
    }
    assert_eq!(got, vec![update]);
    assert_eq!(client.disconnects(), 0);
    client.close();
}

/// Pings, echoes of every size in `sizes` all at once (several requests out together), an
/// update pushed by the server (carrying `update_text`), close.
pub async fn exercise_tokio(
    server: &ServerHandle,
    client: TokioClient,
    sizes: &[usize],
    update_text: &[u8],
) {
    for _ in 0..3 {
        client.ping().await.unwrap();
    }
    let tasks: Vec<_> = sizes
        .iter()
        .map(|&n| {
            let c = client.clone();
            tokio::spawn(async move {
                let p = payload(n);
                let answer = c.invoke(echo::request(&p).unwrap()).await.unwrap();
                assert_eq!(echo::parse_answer(&answer), Some(&p[..]), "echo {n}");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let update = echo::answer(update_text).unwrap();
    assert!(server.push_update(&update) >= 1);
    let got = tokio::time::timeout(Duration::from_secs(20), client.next_update())
        .await
        .expect("an update within 20 s");
    assert_eq!(got.as_deref(), Some(&update[..]));
    client.close().await;
}

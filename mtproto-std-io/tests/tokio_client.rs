//! The tokio driver over loopback against the built-in server.
#![cfg(feature = "tokio")]

use std::time::Duration;

use mtproto_std_io::core::connection::{ConnectionConfig, TransportConfig};
use mtproto_std_io::core::handshake::{RsaKeySet, RsaPrivateKey};
use mtproto_std_io::core::transport::Framing;
use mtproto_std_io::server::{Server, ServerOptions};
use mtproto_std_io::tokio_client::TokioClient;
use mtproto_std_io::{CallError, ClientConfig, echo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_pings_echoes_concurrently_and_cancels_on_timeout() {
    let server = Server::bind(
        "127.0.0.1:0",
        ServerOptions {
            rsa_keys: vec![RsaPrivateKey::demo()],
            ..ServerOptions::default()
        },
    )
    .unwrap()
    .spawn();
    let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
    let mut config = ClientConfig::new(
        server.local_addr().to_string(),
        ConnectionConfig::new(
            2,
            TransportConfig::obfuscated(Framing::Abridged, None),
            keys,
        ),
    );
    config.max_in_flight = 4;
    let client = TokioClient::connect(config).await.unwrap();
    client.ping().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                let p: Vec<u8> = (0..i * 997).map(|j| (j % 251) as u8).collect();
                let a = c.invoke(echo::request(&p).unwrap()).await.unwrap();
                assert_eq!(echo::parse_answer(&a), Some(&p[..]));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // A request whose future gives up at once is cancelled in the core; the client goes on.
    let big = echo::request(&vec![1u8; 500_000]).unwrap();
    assert!(matches!(
        client.invoke_timeout(big, Duration::ZERO).await,
        Err(CallError::Timeout)
    ));
    let a = client
        .invoke(echo::request(b"after").unwrap())
        .await
        .unwrap();
    assert_eq!(echo::parse_answer(&a), Some(&b"after"[..]));
    client.close().await;
    let before = server.stats().requests;
    assert!(before >= 21);
}

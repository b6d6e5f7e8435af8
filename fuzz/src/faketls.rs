//! A precomputed fake-TLS handshake for `transport_faketls`: the client after writing its
//! ClientHello, the proxy's answer and the first records the client sends, built once per
//! process so no execution pays for the x25519 key shares of the two hellos.

use std::sync::OnceLock;

use mtproto_core::time::UnixTime;
use mtproto_core::transport::{
    Detector, FakeTlsClient, ObfuscatedCodec, ProxySecret, ServerConfig, Status,
};

use crate::LcgRng;

/// The handshake, and valid inputs for the target.
pub struct Tls {
    /// The time every hello carries and is checked against.
    pub now: UnixTime,
    /// The `ee` secret both sides use.
    pub secret: ProxySecret,
    /// A proxy accepting only that secret.
    pub config: ServerConfig,
    /// The client right after writing its ClientHello, waiting for the answer.
    pub client: FakeTlsClient,
    /// `(name, input)`: target inputs (selector byte, then body), for the seed corpus.
    pub seeds: Vec<(&'static str, Vec<u8>)>,
}

/// The state, built once per process.
pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(build)
}

fn build() -> Tls {
    let now = UnixTime::from_secs(1_700_000_000);
    let secret = ProxySecret::fake_tls([0x42; 16], b"example.com").expect("secret");
    let config = ServerConfig {
        secrets: vec![secret.clone()],
        allow_unsecured: false,
        ..ServerConfig::default()
    };
    let mut rng = LcgRng(2);
    let mut hello = Vec::new();
    let client = FakeTlsClient::new(&secret, now, &mut rng, &mut hello).expect("hello");
    let mut det = Detector::new(config.clone());
    let Ok((_, Status::Complete(d))) = det.decode(&hello, now, &mut rng) else {
        panic!("valid hello not recognised");
    };
    // The client's first records: ChangeCipherSpec, then the init and a frame in app data.
    let mut done = client.clone();
    let Ok((_, Status::Complete(()))) = done.decode(&d.reply) else {
        panic!("proxy answer not accepted");
    };
    let mut codec: ObfuscatedCodec = done.into_codec(None, &mut rng).expect("codec");
    let mut records = Vec::new();
    codec
        .encode(&[0x5a; 40], false, &mut rng, &mut records)
        .expect("encode");
    let with = |sel: u8, body: &[u8]| [&[sel][..], body].concat();
    let seeds = vec![
        // The target puts 16 03 01 02 in front of part 1's input: the hello without them.
        ("client_hello", with(0xff, &hello[4..])),
        ("server_answer", with(0xff, &d.reply)),
        ("client_records", with(0xff, &records)),
        ("client_records_in_7_byte_pieces", with(7, &records)),
    ];
    Tls {
        now,
        secret,
        config,
        client,
        seeds,
    }
}

#![no_main]
//! Fake TLS: arbitrary bytes as a ClientHello (server detector), as a ServerHello (client), and
//! as TLS records after a valid handshake (server codec).
use libfuzzer_sys::fuzz_target;
use mtproto_core::time::UnixTime;
use mtproto_core::transport::{
    Detector, FakeTlsClient, ProxySecret, ServerConfig, Status, Transport,
};

use mtproto_fuzz::LcgRng as FuzzRng;

const NOW: u64 = 1_700_000_000;

fn drain(t: &mut Transport, bytes: &[u8], chunk: usize) {
    for piece in bytes.chunks(chunk) {
        let mut input = piece;
        loop {
            let Ok((n, st)) = t.decode(input) else { return };
            input = &input[n..];
            if st == Status::Partial {
                break;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(sel).max(1);
    let Ok(secret) = ProxySecret::fake_tls([0x42; 16], b"example.com") else {
        return;
    };
    let config = ServerConfig {
        secrets: vec![secret.clone()],
        allow_unsecured: false,
        ..ServerConfig::default()
    };
    let now = UnixTime::from_secs(NOW);

    // 1. As a ClientHello (with the TLS prefix so the detector goes that way).
    let mut hello = vec![0x16, 0x03, 0x01, 0x02];
    hello.extend_from_slice(body);
    let _ = Detector::new(config.clone()).decode(&hello, now, &mut FuzzRng(1));

    // 2. As the proxy's answer.
    let mut rng = FuzzRng(2);
    let mut out = Vec::new();
    let mut client = FakeTlsClient::new(&secret, now, &mut rng, &mut out).unwrap();
    for piece in body.chunks(chunk) {
        if client.decode(piece).is_err() {
            break;
        }
    }

    // 3. As records after a valid handshake.
    let mut det = Detector::new(config);
    let (_, st) = det.decode(&out, now, &mut rng).unwrap();
    let Status::Complete(d) = st else {
        panic!("valid hello not recognised")
    };
    let mut server = d.transport;
    drain(&mut server, body, chunk);
});

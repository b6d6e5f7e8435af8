#![no_main]
//! Fake TLS: arbitrary bytes as a ClientHello (server detector), as a ServerHello (client), and
//! as TLS records after a valid handshake (server codec).
//!
//! The client's state after writing its ClientHello is precomputed once
//! (`mtproto_fuzz::faketls`), and the server's codec after a valid hello is the one the
//! detector hands out ([`ObfuscatedCodec::server_fake_tls`]): no execution builds an x25519 key
//! share. Seeds (`fuzz/corpus/transport_faketls/`): the hello, the proxy's answer and the
//! client's first records of that handshake.
use libfuzzer_sys::fuzz_target;
use mtproto_core::transport::{Detector, ObfuscatedCodec, Status, Transport};

use mtproto_fuzz::LcgRng as FuzzRng;

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
    let pre = mtproto_fuzz::faketls::tls();

    // 1. As a ClientHello (with the TLS prefix so the detector goes that way).
    let mut hello = vec![0x16, 0x03, 0x01, 0x02];
    hello.extend_from_slice(body);
    let _ = Detector::new(pre.config.clone()).decode(&hello, pre.now, &mut FuzzRng(1));

    // 2. As the proxy's answer.
    let mut client = pre.client.clone();
    for piece in body.chunks(chunk) {
        if client.decode(piece).is_err() {
            break;
        }
    }

    // 3. As records after a valid handshake.
    let codec =
        ObfuscatedCodec::server_fake_tls(&pre.secret).with_max_frame_len(pre.config.max_frame_len);
    let mut server = Transport::Obfuscated(codec);
    drain(&mut server, body, chunk);
});

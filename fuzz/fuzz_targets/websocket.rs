#![no_main]
//! WebSocket (RFC 6455): arbitrary bytes into the frame decoder of both roles (any chunking
//! must give the same stream and the same outcome), the upgrade parsers of both roles and the
//! server transport; client -> server frame round trips of payloads cut from the input.
use libfuzzer_sys::fuzz_target;
use mtproto_core::transport::websocket::{WsClientHandshake, WsClose, WsServerHandshake};
use mtproto_core::transport::{Role, ServerConfig, Status, TransportError, WsCodec, WsTransport};

use mtproto_fuzz::LcgRng as FuzzRng;

type Outcome = (Vec<u8>, Result<Option<WsClose>, TransportError>);

/// Decodes `bytes` in pieces of `chunk`: the data stream and how it ended.
fn decode(role: Role, bytes: &[u8], chunk: usize) -> Outcome {
    let mut c = WsCodec::new(role).with_max_payload(4096);
    let mut data = Vec::new();
    for piece in bytes.chunks(chunk) {
        match c.decode(piece, &mut data) {
            Err(e) => return (data, Err(e)),
            Ok((n, Status::Partial)) => assert_eq!(n, piece.len()),
            Ok((n, Status::Complete(close))) => {
                assert!(n <= piece.len());
                // Poisoned after a close.
                assert!(c.decode(&[0x82, 0x00], &mut Vec::new()).is_err());
                let mut out = Vec::new();
                c.poll_output(&mut FuzzRng(0), &mut out);
                return (data, Ok(Some(close)));
            }
        }
        assert!(data.len() <= bytes.len());
    }
    (data, Ok(None))
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(sel >> 2).max(1);

    // 1. Hostile frames, both roles: chunking never changes the result.
    for role in [Role::Client, Role::Server] {
        let whole = decode(role, body, body.len().max(1));
        let pieces = decode(role, body, chunk);
        assert_eq!(whole, pieces);
    }

    // 2. Hostile upgrade messages.
    let mut server = WsServerHandshake::new(if sel & 1 == 0 {
        None
    } else {
        Some("/apiws".into())
    });
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        match server.decode(piece, &mut out) {
            Ok((n, Status::Partial)) => assert_eq!(n, piece.len()),
            Ok((_, Status::Complete(()))) => {
                assert!(out.starts_with(b"HTTP/1.1 101 "));
                break;
            }
            Err(_) => {
                assert!(out.starts_with(b"HTTP/1.1 4"));
                break;
            }
        }
    }
    let mut client =
        WsClientHandshake::new("example.com", "/apiws", &mut FuzzRng(1), &mut Vec::new()).unwrap();
    for piece in body.chunks(chunk) {
        match client.decode(piece) {
            Ok((n, Status::Partial)) => assert_eq!(n, piece.len()),
            _ => break,
        }
    }
    let mut t = WsTransport::server(None, &ServerConfig::default()).with_max_frame_len(4096);
    for piece in body.chunks(chunk) {
        let mut input = piece;
        while let Ok((n, st)) = t.decode(input) {
            input = &input[n..];
            if st == Status::Partial {
                break;
            }
        }
    }
    let _ = t.poll_output(&mut FuzzRng(2), &mut Vec::new());

    // 3. Round trip: client frames of the input's pieces, decoded by a server.
    let mut rng = FuzzRng(u64::from(sel));
    let mut enc = WsCodec::new(Role::Client);
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for p in body.split(|&b| b == 0x5a) {
        enc.encode_binary(p, &mut rng, &mut wire).unwrap();
        sent.extend_from_slice(p);
    }
    let (got, end) = decode(Role::Server, &wire, chunk);
    assert_eq!(end, Ok(None));
    assert_eq!(got, sent);
});

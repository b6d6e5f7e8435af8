//! WebSocket transport: RFC 6455 vectors (§1.3 accept key, §5.7 frame examples), the upgrade
//! in both roles, frames decoded at every split offset, masking and size rules, ping → pong,
//! close with a space-padded reason, and the obfuscated stream inside frames.

mod common;

use common::{Ev, own, rng};
use mtproto::core::transport::websocket::{
    WsClientHandshake, WsClose, WsServerHandshake, accept_key, decode_key, parse_close_reason,
};
use mtproto::core::transport::{
    EncodeError, Framing, ObfuscatedCodec, Role, ServerConfig, Status, TransportError, WsCodec,
    WsError, WsTransport,
};

/// An RNG that hands out scripted bytes (then zeros): to reproduce the RFC's mask keys and
/// nonce. Test-only.
struct Scripted(Vec<u8>);
impl rand_core::TryRng for Scripted {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = if self.0.is_empty() {
                0
            } else {
                self.0.remove(0)
            };
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Scripted {}

const WS: fn(WsError) -> TransportError = TransportError::WebSocket;

/// Decodes `chunks` in order; the data stream and the close, if any.
fn decode_chunks<'a>(
    codec: &mut WsCodec,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Vec<u8>, Option<WsClose>), TransportError> {
    let mut data = Vec::new();
    for chunk in chunks {
        let (n, st) = codec.decode(chunk, &mut data)?;
        match st {
            Status::Partial => assert_eq!(n, chunk.len(), "Partial must consume all input"),
            Status::Complete(c) => return Ok((data, Some(c))),
        }
    }
    Ok((data, None))
}

fn decode_all(role: Role, bytes: &[u8]) -> Result<(Vec<u8>, Option<WsClose>), TransportError> {
    decode_chunks(&mut WsCodec::new(role), [bytes])
}

// ---------------------------------------------------------------------------- RFC vectors

#[test]
fn rfc6455_accept_key_example() {
    // RFC 6455 §1.3.
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(
        decode_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        Some(*b"the sample nonce")
    );
    // Not 16 bytes, non-canonical trailing bits, bad alphabet.
    assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25jZQ="), None);
    assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25jZR=="), None);
    assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25jZ*=="), None);
    assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25j"), None);
}

/// RFC 6455 §5.7 "single-frame unmasked/masked text message", with the opcode byte changed
/// from text (0x81) to binary (0x82): this transport refuses text frames.
#[test]
fn rfc6455_single_frame_hello() {
    let unmasked = [0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let masked = [
        0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(decode_all(Role::Client, &unmasked).unwrap().0, b"Hello");
    assert_eq!(decode_all(Role::Server, &masked).unwrap().0, b"Hello");
    // Our encoders give the same bytes (the client's mask key drawn from the RNG).
    let mut out = Vec::new();
    WsCodec::new(Role::Server)
        .encode_binary(b"Hello", &mut rng(0), &mut out)
        .unwrap();
    assert_eq!(out, unmasked);
    out.clear();
    WsCodec::new(Role::Client)
        .encode_binary(
            b"Hello",
            &mut Scripted(vec![0x37, 0xfa, 0x21, 0x3d]),
            &mut out,
        )
        .unwrap();
    assert_eq!(out, masked);
    // The RFC's text originals are refused.
    let text = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(decode_all(Role::Client, &text), Err(WS(WsError::TextFrame)));
}

/// RFC 6455 §5.7 "fragmented unmasked text message" (first opcode made binary).
#[test]
fn rfc6455_fragmented_hello() {
    let wire = [0x02, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    assert_eq!(decode_all(Role::Client, &wire).unwrap().0, b"Hello");
}

/// RFC 6455 §5.7 "unmasked Ping request and masked Ping response".
#[test]
fn rfc6455_ping_gets_the_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut c = WsCodec::new(Role::Client);
    assert_eq!(decode_chunks(&mut c, [&ping[..]]).unwrap(), (vec![], None));
    let mut out = Vec::new();
    assert!(c.poll_output(&mut Scripted(vec![0x37, 0xfa, 0x21, 0x3d]), &mut out));
    assert_eq!(out, pong);
    // Answered once.
    out.clear();
    assert!(!c.poll_output(&mut rng(0), &mut out));
    // A server answers unmasked.
    let masked_ping = [
        0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut s = WsCodec::new(Role::Server);
    decode_chunks(&mut s, [&masked_ping[..]]).unwrap();
    assert!(s.poll_output(&mut rng(0), &mut out));
    assert_eq!(out, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

/// RFC 6455 §5.7 "256 bytes binary message in a single unmasked frame" and "64KiB binary
/// message in a single unmasked frame".
#[test]
fn rfc6455_length_encodings() {
    let body256: Vec<u8> = (0..256u32).map(|i| i as u8).collect();
    let wire = [&[0x82, 0x7e, 0x01, 0x00][..], &body256].concat();
    assert_eq!(decode_all(Role::Client, &wire).unwrap().0, body256);
    let mut out = Vec::new();
    WsCodec::new(Role::Server)
        .encode_binary(&body256, &mut rng(0), &mut out)
        .unwrap();
    assert_eq!(out, wire);

    let body64k: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    let wire = [&[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00][..], &body64k].concat();
    for chunk in [1usize, 3, 1000, 65545] {
        let got = decode_chunks(&mut WsCodec::new(Role::Client), wire.chunks(chunk)).unwrap();
        assert_eq!(got.0, body64k, "chunk {chunk}");
    }
    out.clear();
    WsCodec::new(Role::Server)
        .encode_binary(&body64k, &mut rng(0), &mut out)
        .unwrap();
    assert_eq!(out, wire);
}

// ----------------------------------------------------------------------- split invariance

/// Server → client: several frames (fragmented, interleaved ping, 16-bit length, empty
/// frame), then a close with a padded reason.
fn server_stream() -> (Vec<u8>, Vec<u8>) {
    let mut wire = Vec::new();
    let mut data = Vec::new();
    let a: Vec<u8> = (0..300u32).map(|i| (i * 13) as u8).collect();
    wire.extend_from_slice(&[0x82, 0x7e, 0x01, 0x2c]);
    wire.extend_from_slice(&a);
    data.extend_from_slice(&a);
    wire.extend_from_slice(&[0x02, 0x02, 1, 2]); // start of a fragmented message
    wire.extend_from_slice(&[0x89, 0x02, b'h', b'i']); // ping in between
    wire.extend_from_slice(&[0x00, 0x00]); // empty continuation
    wire.extend_from_slice(&[0x80, 0x03, 3, 4, 5]); // final fragment
    wire.extend_from_slice(&[0x8a, 0x00]); // unsolicited pong: ignored
    wire.extend_from_slice(&[0x82, 0x01, 6]);
    data.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    wire.extend_from_slice(&[0x88, 0x07, 0x03, 0xe8, b' ', b' ', b'4', b'0', b'4']);
    (wire, data)
}

#[test]
fn every_split_offset_gives_the_same_stream() {
    let (wire, data) = server_stream();
    let want = (
        data,
        Some(WsClose {
            code: Some(1000),
            error: Some(-404),
        }),
    );
    assert_eq!(decode_all(Role::Client, &wire).unwrap(), want);
    for k in 0..=wire.len() {
        let (a, b) = wire.split_at(k);
        let got = decode_chunks(&mut WsCodec::new(Role::Client), [a, b]).unwrap();
        assert_eq!(got, want, "split at {k}");
    }
    for k in 0..=wire.len() {
        for j in k..=wire.len().min(k + 9) {
            let got = decode_chunks(
                &mut WsCodec::new(Role::Client),
                [&wire[..k], &wire[k..j], &wire[j..]],
            )
            .unwrap();
            assert_eq!(got, want, "split at {k}, {j}");
        }
    }
    let got = decode_chunks(&mut WsCodec::new(Role::Client), wire.chunks(1)).unwrap();
    assert_eq!(got, want);
}

#[test]
fn masked_client_stream_at_every_split() {
    // Frames a client encoder made, with mask keys from a seeded RNG, at every split.
    let mut c = WsCodec::new(Role::Client);
    let mut r = rng(5);
    let mut wire = Vec::new();
    let mut data = Vec::new();
    for len in [0usize, 1, 5, 125, 126, 127, 300] {
        let p: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        c.encode_binary(&p, &mut r, &mut wire).unwrap();
        data.extend_from_slice(&p);
    }
    for k in 0..=wire.len() {
        let (a, b) = wire.split_at(k);
        let got = decode_chunks(&mut WsCodec::new(Role::Server), [a, b]).unwrap();
        assert_eq!(got, (data.clone(), None), "split at {k}");
    }
}

// ------------------------------------------------------------------------------ violations

#[test]
fn masking_is_enforced_by_role() {
    let unmasked = [0x82, 0x01, 7];
    let masked = [0x82, 0x81, 1, 2, 3, 4, 7];
    assert_eq!(
        decode_all(Role::Server, &unmasked),
        Err(WS(WsError::BadMask))
    );
    assert_eq!(decode_all(Role::Client, &masked), Err(WS(WsError::BadMask)));
    // The error comes from the first two bytes and sticks.
    let mut s = WsCodec::new(Role::Server);
    let mut d = Vec::new();
    assert_eq!(s.decode(&unmasked[..2], &mut d), Err(WS(WsError::BadMask)));
    assert_eq!(s.decode(&masked, &mut d), Err(WS(WsError::BadMask)));
}

#[test]
fn frame_rules() {
    let cases: &[(&[u8], TransportError)] = &[
        (&[0xc2, 0x00], WS(WsError::ReservedBits)),
        (&[0x92, 0x00], WS(WsError::ReservedBits)),
        (&[0x83, 0x00], WS(WsError::BadOpcode(3))),
        (&[0x8b, 0x00], WS(WsError::BadOpcode(0xb))),
        (&[0x81, 0x00], WS(WsError::TextFrame)),
        (&[0x80, 0x00], WS(WsError::BadContinuation)),
        (&[0x02, 0x00, 0x82, 0x00], WS(WsError::BadContinuation)),
        (&[0x09, 0x00], WS(WsError::FragmentedControl)),
        (&[0x89, 0x7e, 0x00, 0x7e], WS(WsError::ControlTooLarge)),
        (&[0x88, 0x7e], WS(WsError::ControlTooLarge)),
        (&[0x88, 0x01, 0x03], WS(WsError::BadClose)),
        // RFC 6455 §7.4.1: 1005 must not be sent in a close frame.
        (&[0x88, 0x02, 0x03, 0xed], WS(WsError::BadClose)),
        // §8.1: a reason that is not UTF-8 fails the connection.
        (&[0x88, 0x03, 0x03, 0xe8, 0xff], WS(WsError::BadClose)),
        (
            &[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0],
            WS(WsError::BadLength),
        ),
    ];
    for (wire, err) in cases {
        assert_eq!(decode_all(Role::Client, wire), Err(*err), "{wire:02x?}");
    }
    // A control frame of exactly 125 bytes is fine.
    let ping = [&[0x89, 0x7d][..], &[9; 125]].concat();
    assert_eq!(decode_all(Role::Client, &ping), Ok((vec![], None)));
}

#[test]
fn payload_cap_is_checked_from_the_header() {
    let mut c = WsCodec::new(Role::Client).with_max_payload(1000);
    let mut d = Vec::new();
    // 1001 bytes declared with a 16-bit length: refused from the 4 header bytes alone.
    assert_eq!(
        c.decode(&[0x82, 0x7e, 0x03, 0xe9], &mut d),
        Err(TransportError::FrameTooLarge {
            len: 1001,
            max: 1000
        })
    );
    // 2^62 bytes with a 64-bit length.
    let mut c = WsCodec::new(Role::Client);
    assert_eq!(
        c.decode(&[0x82, 0x7f, 0x40, 0, 0, 0, 0, 0, 0, 0], &mut d),
        Err(TransportError::FrameTooLarge {
            len: 1 << 62,
            max: mtproto::core::transport::DEFAULT_MAX_FRAME_LEN
        })
    );
    // Exactly at the cap is fine.
    let mut c = WsCodec::new(Role::Client).with_max_payload(1000);
    let wire = [&[0x82, 0x7e, 0x03, 0xe8][..], &[1; 1000]].concat();
    assert_eq!(decode_chunks(&mut c, [&wire[..]]).unwrap().0.len(), 1000);
}

#[test]
fn close_is_answered_and_reported() {
    assert_eq!(parse_close_reason(b"  404"), Some(-404));
    assert_eq!(parse_close_reason(b"-429  "), Some(-429));
    assert_eq!(parse_close_reason(b"404"), Some(-404));
    assert_eq!(parse_close_reason(b""), None);
    assert_eq!(parse_close_reason(b"going away"), None);
    assert_eq!(parse_close_reason(b"0"), None);

    // Masked close from a client: code 1000, reason " 429".
    let mut wire = vec![0x88, 0x86, 1, 2, 3, 4];
    let payload = [0x03, 0xe8, b' ', b'4', b'2', b'9'];
    wire.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
    );
    let mut s = WsCodec::new(Role::Server);
    let mut d = Vec::new();
    let trailing = [0x82, 0x80, 0, 0, 0, 0];
    let input = [&wire[..], &trailing].concat();
    let (n, st) = s.decode(&input, &mut d).unwrap();
    // Stops right after the close frame.
    assert_eq!(n, wire.len());
    assert_eq!(
        st,
        Status::Complete(WsClose {
            code: Some(1000),
            error: Some(-429)
        })
    );
    let mut out = Vec::new();
    assert!(s.poll_output(&mut rng(0), &mut out));
    assert_eq!(out, [0x88, 0x02, 0x03, 0xe8]);
    assert!(s.close_sent());
    assert_eq!(
        s.decode(&trailing, &mut d),
        Err(WS(WsError::Closed(Some(1000))))
    );
    assert_eq!(
        s.encode_binary(b"x", &mut rng(0), &mut out),
        Err(EncodeError::NotReady)
    );
    // Codes that must not be on the wire (§7.4.1, §7.4.2): below 1000, 1004 (reserved), 1005,
    // 1006, 1015, the unassigned 1016-2999, and 5000 up; the others are fine.
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let [hi, lo] = code.to_be_bytes();
        assert_eq!(
            decode_all(Role::Client, &[0x88, 0x02, hi, lo]),
            Err(WS(WsError::BadClose)),
            "{code}"
        );
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4000, 4999,
    ] {
        let [hi, lo] = code.to_be_bytes();
        assert_eq!(
            decode_all(Role::Client, &[0x88, 0x04, hi, lo, 0xc3, 0xa9]),
            Ok((
                vec![],
                Some(WsClose {
                    code: Some(code),
                    error: None
                })
            )),
            "{code}"
        );
    }
    // An empty close: no code.
    assert_eq!(
        decode_all(Role::Client, &[0x88, 0x00]).unwrap().1,
        Some(WsClose {
            code: None,
            error: None
        })
    );
}

// ----------------------------------------------------------------------------- handshakes

const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, binary\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn client_request_and_answer_check() {
    // The nonce of RFC 6455 §1.3 from the RNG: the key and accept values of the RFC.
    let mut out = Vec::new();
    let mut hs = WsClientHandshake::new(
        "venus.web.telegram.org",
        "/apiws",
        &mut Scripted(b"the sample nonce".to_vec()),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /apiws HTTP/1.1\r\nHost: venus.web.telegram.org\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
    );
    let answer = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n\
        connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: binary\r\n\r\n";
    let frames = [0x82, 0x01, 9];
    let input = [answer.as_bytes(), &frames].concat();
    // Byte by byte: Partial until the blank line, which completes it; the frames stay unread.
    for (i, b) in input.iter().enumerate().take(answer.len() - 1) {
        assert_eq!(
            hs.decode(std::slice::from_ref(b)).unwrap(),
            (1, Status::Partial),
            "{i}"
        );
    }
    assert_eq!(
        hs.decode(&input[answer.len() - 1..]).unwrap(),
        (1, Status::Complete(()))
    );
}

fn client_check(answer: &str) -> Result<(usize, Status<()>), TransportError> {
    let mut hs = WsClientHandshake::new(
        "h",
        "/",
        &mut Scripted(b"the sample nonce".to_vec()),
        &mut Vec::new(),
    )
    .unwrap();
    hs.decode(answer.as_bytes())
}

#[test]
fn client_refuses_bad_answers() {
    let ok_accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    let up = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    let cases = [
        (
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_string(),
            WsError::Status(403),
        ),
        (
            format!(
                "HTTP/1.1 101 OK\r\n{up}Sec-WebSocket-Accept: x3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
            ),
            WsError::BadAccept,
        ),
        (format!("HTTP/1.1 101 OK\r\n{up}\r\n"), WsError::BadAccept),
        (
            format!("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n{ok_accept}\r\n"),
            WsError::NotAnUpgrade,
        ),
        (
            format!("HTTP/1.1 101 OK\r\n{up}{ok_accept}Sec-WebSocket-Protocol: chat\r\n\r\n"),
            WsError::NoBinaryProtocol,
        ),
        (
            format!(
                "HTTP/1.1 101 OK\r\n{up}{ok_accept}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
            ),
            WsError::UnexpectedExtension,
        ),
        ("HTTP/1.1 1x1\r\n\r\n".to_string(), WsError::BadHttp),
        (
            format!("HTTP/1.0 101 OK\r\n{up}{ok_accept}\r\n"),
            WsError::BadHttp,
        ),
    ];
    for (answer, err) in cases {
        assert_eq!(client_check(&answer), Err(WS(err)), "{answer}");
    }
    // A head ending in `\n\r\n` (httparse ends it there) followed by a frame: refused, not
    // read on into the frames as more header lines.
    let head =
        format!("HTTP/1.1 101 OK\r\n{up}Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n\r\n");
    let bare_lf = [head.as_bytes(), &[0x82, 0x01, 0x09], b"X: y\r\n\r\n"].concat();
    let mut hs = WsClientHandshake::new(
        "h",
        "/",
        &mut Scripted(b"the sample nonce".to_vec()),
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(hs.decode(&bare_lf), Err(WS(WsError::BadHttp)));
    // Without a protocol header it is accepted (the spec asks for it in the request).
    let ok = format!("HTTP/1.1 101 OK\r\n{up}{ok_accept}\r\n");
    assert_eq!(client_check(&ok).unwrap().1, Status::Complete(()));
    // A header block over 8 KiB.
    let long = format!(
        "HTTP/1.1 101 OK\r\nX: {}\r\n\r\n",
        "a".repeat(mtproto::core::transport::websocket::MAX_UPGRADE_HEADER)
    );
    assert_eq!(client_check(&long), Err(WS(WsError::HeaderTooLarge)));
    // A bad host or path is refused before anything is written.
    let mut out = Vec::new();
    for (host, path) in [("a b", "/"), ("h", "apiws"), ("h", "/a\r\nX: y"), ("", "/")] {
        assert_eq!(
            WsClientHandshake::new(host, path, &mut rng(0), &mut out).unwrap_err(),
            EncodeError::BadWebSocketTarget
        );
    }
    assert!(out.is_empty());
}

#[test]
fn server_answers_the_rfc_request() {
    let mut hs = WsServerHandshake::new(Some("/chat".into()));
    let mut out = Vec::new();
    let input = [RFC_REQUEST.as_bytes(), &[0x82]].concat();
    // Split in two at every offset of the request: same answer.
    for k in 0..RFC_REQUEST.len() {
        let mut hs = WsServerHandshake::new(None);
        let mut out = Vec::new();
        assert_eq!(
            hs.decode(&input[..k], &mut out).unwrap(),
            (k, Status::Partial)
        );
        assert_eq!(
            hs.decode(&input[k..], &mut out).unwrap(),
            (RFC_REQUEST.len() - k, Status::Complete(()))
        );
    }
    assert_eq!(
        hs.decode(&input, &mut out).unwrap(),
        (RFC_REQUEST.len(), Status::Complete(()))
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
    );
}

fn server_check(path: Option<&str>, request: &str) -> (Result<(), TransportError>, String) {
    let mut hs = WsServerHandshake::new(path.map(Into::into));
    let mut out = Vec::new();
    let r = hs.decode(request.as_bytes(), &mut out).map(|_| ());
    (r, String::from_utf8(out).unwrap())
}

#[test]
fn server_refuses_bad_requests() {
    let cases = [
        (RFC_REQUEST.replace("GET", "PUT"), WsError::BadMethod, "400"),
        (
            RFC_REQUEST.replace("/chat", "/other"),
            WsError::PathNotFound,
            "404",
        ),
        (
            RFC_REQUEST.replace("Version: 13", "Version: 8"),
            WsError::BadVersion,
            "400",
        ),
        (
            RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ"),
            WsError::BadKey,
            "400",
        ),
        (
            RFC_REQUEST.replace("Sec-WebSocket-Key", "X-Key"),
            WsError::BadKey,
            "400",
        ),
        (
            RFC_REQUEST.replace("chat, binary", "chat, superchat"),
            WsError::NoBinaryProtocol,
            "400",
        ),
        (
            RFC_REQUEST.replace("Upgrade: websocket", "Upgrade: h2c"),
            WsError::NotAnUpgrade,
            "400",
        ),
        (
            RFC_REQUEST.replace("Connection: Upgrade", "Connection: close"),
            WsError::NotAnUpgrade,
            "400",
        ),
        (
            RFC_REQUEST.replace("Host: server.example.com\r\n", ""),
            WsError::NotAnUpgrade,
            "400",
        ),
        (
            RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0"),
            WsError::BadHttp,
            "400",
        ),
    ];
    for (req, err, status) in cases {
        let (r, answer) = server_check(Some("/chat"), &req);
        assert_eq!(r, Err(WS(err)), "{req}");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
    }
    // A request head ending in `\n\r\n`, then a (masked, empty) frame and more text ending
    // in a blank line: refused, the frame is not read as a header.
    let bare_lf = RFC_REQUEST.replace(
        "Version: 13\r\n\r\n",
        "Version: 13\n\r\n\u{2}\u{80}abcdX: y\r\n\r\n",
    );
    let (r, answer) = server_check(Some("/chat"), &bare_lf);
    assert_eq!(r, Err(WS(WsError::BadHttp)));
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let (_, answer) = server_check(None, &RFC_REQUEST.replace("Version: 13", "Version: 8"));
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"));
    // The query string is not part of the path; any path when none is configured.
    assert!(
        server_check(Some("/chat"), &RFC_REQUEST.replace("/chat", "/chat?x=1"))
            .0
            .is_ok()
    );
    assert!(
        server_check(None, &RFC_REQUEST.replace("/chat", "/x"))
            .0
            .is_ok()
    );
    // Upgrade/Connection tokens are case-insensitive and may be lists.
    let req = RFC_REQUEST
        .replace("Upgrade: websocket", "upgrade: WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, upgrade");
    assert!(server_check(None, &req).0.is_ok());
    // An endless header block.
    let long = format!(
        "GET / HTTP/1.1\r\nX: {}",
        "a".repeat(mtproto::core::transport::websocket::MAX_UPGRADE_HEADER)
    );
    let (r, answer) = server_check(None, &long);
    assert_eq!(r, Err(WS(WsError::HeaderTooLarge)));
    assert!(answer.starts_with("HTTP/1.1 400 "));
}

// ------------------------------------------------------------------ obfuscated inside frames

/// A client `WsTransport` and a server one, upgraded against each other.
fn transport_pair(framing: Framing) -> (WsTransport, WsTransport) {
    let mut r = rng(11);
    let inner = ObfuscatedCodec::client(framing, Some(2), None, &mut r).unwrap();
    let mut client = WsTransport::client("example.com", "/apiws", inner, &mut r).unwrap();
    let mut server = WsTransport::server(Some("/apiws".into()), &ServerConfig::default());
    let mut wire = Vec::new();
    assert!(client.poll_output(&mut r, &mut wire));
    assert!(!client.is_open());
    assert_eq!(
        client.encode(&[0; 8], false, &mut r, &mut Vec::new()),
        Err(EncodeError::NotReady)
    );
    assert_eq!(server.decode(&wire).unwrap(), (wire.len(), Status::Partial));
    assert!(server.is_open());
    wire.clear();
    assert!(server.poll_output(&mut r, &mut wire));
    assert!(wire.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(client.decode(&wire).unwrap(), (wire.len(), Status::Partial));
    assert!(client.is_open());
    (client, server)
}

fn drain(t: &mut WsTransport, chunks: &[&[u8]]) -> Result<Vec<Ev>, TransportError> {
    let mut evs = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        loop {
            let (n, st) = t.decode(rest)?;
            rest = &rest[n..];
            match st {
                Status::Complete(f) => evs.push(own(f)),
                Status::Partial => {
                    assert!(rest.is_empty());
                    break;
                }
            }
        }
    }
    Ok(evs)
}

#[test]
fn obfuscated_stream_inside_frames_at_every_split() {
    let (mut client, server) = transport_pair(Framing::Intermediate);
    drop(server);
    let mut r = rng(3);
    let payloads: Vec<Vec<u8>> = (1..6u8).map(|i| vec![i; usize::from(i) * 8]).collect();
    let mut wire = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        client.encode(p, i == 2, &mut r, &mut wire).unwrap();
    }
    let want: Vec<Ev> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| Ev::Payload(p.clone(), i == 2))
        .collect();
    // A fresh server each time, upgraded with the same request, fed the frames split anywhere.
    let mut r2 = rng(11);
    let inner = ObfuscatedCodec::client(Framing::Intermediate, Some(2), None, &mut r2).unwrap();
    let mut c2 = WsTransport::client("example.com", "/apiws", inner, &mut r2).unwrap();
    let mut request = Vec::new();
    c2.poll_output(&mut r2, &mut request);
    for k in 0..=wire.len() {
        let mut s = WsTransport::server(None, &ServerConfig::default());
        s.decode(&request).unwrap();
        let got = drain(&mut s, &[&wire[..k], &wire[k..]]).unwrap();
        assert_eq!(got, want, "split at {k}");
        assert_eq!(s.framing(), Some(Framing::Intermediate));
    }
}

#[test]
fn server_to_client_with_ping_and_close_reason() {
    let (mut client, mut server) = transport_pair(Framing::Abridged);
    let mut r = rng(4);
    let mut wire = Vec::new();
    // The client speaks first (the init), then the server answers.
    client.encode(&[7; 16], false, &mut r, &mut wire).unwrap();
    assert_eq!(
        drain(&mut server, &[&wire]).unwrap(),
        [Ev::Payload(vec![7; 16], false)]
    );
    wire.clear();
    server.encode(&[8; 32], false, &mut r, &mut wire).unwrap();
    wire.extend_from_slice(&[0x89, 0x01, b'p']); // a ping between MTProto frames
    server.encode(&[9; 4], false, &mut r, &mut wire).unwrap();
    server.encode_close(b"  404", &mut r, &mut wire).unwrap();
    let got = drain(&mut client, &[&wire]);
    assert_eq!(got, Err(WS(WsError::Closed(Some(1000)))));
    // Same stream, frame by frame: the error code comes out before the close error.
    let (mut client, mut server) = transport_pair(Framing::Abridged);
    let mut wire = Vec::new();
    client.encode(&[7; 16], false, &mut r, &mut wire).unwrap();
    drain(&mut server, &[&wire]).unwrap();
    wire.clear();
    server.encode(&[8; 32], false, &mut r, &mut wire).unwrap();
    wire.extend_from_slice(&[0x89, 0x01, b'p']);
    server.encode(&[9; 4], false, &mut r, &mut wire).unwrap();
    server.encode_close(b"  404", &mut r, &mut wire).unwrap();
    let mut evs = Vec::new();
    let mut rest = &wire[..];
    let err = loop {
        match client.decode(rest) {
            Ok((n, st)) => {
                rest = &rest[n..];
                match st {
                    Status::Complete(f) => evs.push(own(f)),
                    Status::Partial => panic!("stream ended without the close"),
                }
            }
            Err(e) => break e,
        }
    };
    assert_eq!(
        evs,
        [
            Ev::Payload(vec![8; 32], false),
            Ev::Payload(vec![9; 4], false),
            Ev::Err(-404)
        ]
    );
    assert_eq!(err, WS(WsError::Closed(Some(1000))));
    // The client answers the ping (masked pong) and the close (masked close 1000).
    let mut out = Vec::new();
    assert!(client.poll_output(&mut r, &mut out));
    assert_eq!(&out[..2], [0x8a, 0x81]);
    assert_eq!(out[6] ^ out[2], b'p');
    assert_eq!(&out[7..9], [0x88, 0x82]);
    assert_eq!([out[13] ^ out[9], out[14] ^ out[10]], [0x03, 0xe8]);
    assert_eq!(out.len(), 15);
}

#[test]
fn plain_framings_are_refused_inside_websocket() {
    // The intermediate tag where an obfuscation init must be: no valid protocol identifier.
    let (_, mut server) = transport_pair(Framing::Intermediate);
    let mut wire = Vec::new();
    let mut client_codec = WsCodec::new(Role::Client);
    let mut plain = vec![0xee; 4];
    plain.extend_from_slice(&[8, 0, 0, 0]);
    plain.extend_from_slice(&[0; 56]);
    client_codec
        .encode_binary(&plain, &mut rng(0), &mut wire)
        .unwrap();
    assert_eq!(
        drain(&mut server, &[&wire]),
        Err(TransportError::BadObfuscationInit)
    );
}

// ------------------------------------------------ Connection ↔ ServerConnection over WebSocket

mod connection {
    use super::*;
    use mtproto::core::connection::server::{
        CloseReason as ServerClose, MemoryKeyStore, ServerConnection, ServerConnectionConfig,
        ServerEvent,
    };
    use mtproto::core::connection::{
        CloseReason, Connection, ConnectionConfig, Event, TransportConfig,
    };
    use mtproto::core::handshake::{RsaKeySet, RsaPrivateKey};
    use mtproto::core::time::{Instant, Now, UnixTime};
    use mtproto::core::transport::{WsFraming, WsServerMode};
    use rand_chacha::ChaCha20Rng;
    use rand_core::Rng;
    use std::cell::RefCell;
    use std::rc::Rc;

    type Store = Rc<RefCell<MemoryKeyStore>>;
    type Server = ServerConnection<ChaCha20Rng, Store>;

    fn now(ms: u64) -> Now {
        Now {
            mono: Instant::from_millis(ms),
            unix: UnixTime::from_secs(1_700_000_000 + ms / 1000),
        }
    }

    fn client(t: TransportConfig, seed: u64) -> Connection<ChaCha20Rng> {
        let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
        Connection::new(ConnectionConfig::new(2, t, keys), rng(seed), now(0))
    }

    fn server(mode: WsServerMode, seed: u64) -> Server {
        let mut c = ServerConnectionConfig::new(mtproto::core::handshake::ServerConfig::demo());
        c.websocket = mode;
        ServerConnection::new(
            c,
            Rc::new(RefCell::new(MemoryKeyStore::default())),
            rng(seed),
        )
    }

    fn codec_mode() -> TransportConfig {
        TransportConfig::websocket(
            Framing::PaddedIntermediate,
            WsFraming::Codec {
                host: "venus.web.telegram.org".into(),
                path: "/apiws".into(),
            },
        )
    }

    /// Both ends with the bytes of each direction cut at random points (seeded).
    struct Pipe {
        client: Connection<ChaCha20Rng>,
        server: Server,
        cut: ChaCha20Rng,
        events: Vec<Event>,
        c2s: Vec<u8>,
        s2c: Vec<u8>,
        /// Everything the client sent / the server sent, for checks on the wire.
        sent_by_client: Vec<u8>,
        sent_by_server: Vec<u8>,
        /// Extra bytes to put in front of the server's next output (e.g. a WebSocket ping).
        inject: Vec<u8>,
    }

    impl Pipe {
        fn new(t: TransportConfig, mode: WsServerMode, seed: u64) -> Self {
            Self {
                client: client(t, seed),
                server: server(mode, seed + 1),
                cut: rng(seed + 2),
                events: Vec::new(),
                c2s: Vec::new(),
                s2c: Vec::new(),
                sent_by_client: Vec::new(),
                sent_by_server: Vec::new(),
                inject: Vec::new(),
            }
        }

        /// Feeds `bytes` in random pieces.
        fn pieces(cut: &mut ChaCha20Rng, bytes: &[u8], mut feed: impl FnMut(&[u8])) {
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = (cut.next_u32() as usize % 97 + 1).min(rest.len());
                feed(&rest[..n]);
                rest = &rest[n..];
            }
        }

        fn pump(&mut self) {
            let t = now(0);
            for _ in 0..1000 {
                while self.client.poll_transmit(t, &mut self.c2s) {}
                let moved = !self.c2s.is_empty() || !self.s2c.is_empty();
                let c2s = std::mem::take(&mut self.c2s);
                self.sent_by_client.extend_from_slice(&c2s);
                let server = &mut self.server;
                Self::pieces(&mut self.cut, &c2s, |p| server.handle_input(t, p));
                while let Some(e) = self.server.poll_event() {
                    if let ServerEvent::Request { id, body } = e {
                        self.server.respond(t, id, &body).unwrap();
                    }
                }
                let mut back = std::mem::take(&mut self.inject);
                while self.server.poll_transmit(t, &mut back) {}
                self.sent_by_server.extend_from_slice(&back);
                let client = &mut self.client;
                Self::pieces(&mut self.cut, &back, |p| client.handle_input(t, p));
                while let Some(e) = self.client.poll_event() {
                    self.events.push(e);
                }
                if !moved && back.is_empty() {
                    return;
                }
            }
            panic!("no quiescence");
        }
    }

    #[test]
    fn handshake_ping_and_echo_over_websocket_codec() {
        for seed in [1u64, 2, 3] {
            let mut p = Pipe::new(
                codec_mode(),
                WsServerMode::Codec {
                    path: Some("/apiws".into()),
                },
                seed * 10,
            );
            p.pump();
            assert!(p.events.contains(&Event::Ready), "{:?}", p.events);
            assert!(p.sent_by_client.starts_with(b"GET /apiws HTTP/1.1\r\n"));
            assert!(
                p.sent_by_server
                    .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n")
            );
            assert_eq!(
                p.server.framing(),
                Some(Framing::PaddedIntermediate),
                "the framing comes from the obfuscation init inside the frames"
            );
            // After the 101 every client byte is in masked binary frames: the first frame
            // header after the request is 0x82 with the mask bit.
            let req_end = p
                .sent_by_client
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap()
                + 4;
            assert_eq!(p.sent_by_client[req_end], 0x82);
            assert_eq!(p.sent_by_client[req_end + 1] & 0x80, 0x80);

            // An MTProto ping.
            let ping_id = p.client.ping();
            p.pump();
            assert!(
                p.events
                    .iter()
                    .any(|e| matches!(e, Event::Pong { ping_id: id, .. } if *id == ping_id)),
                "{:?}",
                p.events
            );

            // A WebSocket ping from the server side: the client answers a masked pong first.
            p.inject = vec![0x89, 0x02, b'h', b'i'];
            let before = p.sent_by_client.len();
            let body = b"\x01\x00\xde\xc0\x2a\x00\x00\x00".to_vec();
            let id = p.client.invoke_raw(&body).unwrap();
            p.pump();
            assert!(p.events.iter().any(
                |e| matches!(e, Event::RpcResult { id: i, body: b } if *i == id && *b == body)
            ));
            let pong = p.sent_by_client[before..]
                .windows(2)
                .position(|w| w == [0x8a, 0x82])
                .expect("a masked pong");
            let f = &p.sent_by_client[before + pong..];
            assert_eq!([f[6] ^ f[2], f[7] ^ f[3]], *b"hi");
            assert!(!p.client.is_closed());
            assert!(!p.server.is_closed());
        }
    }

    #[test]
    fn external_mode_is_obfuscated_only() {
        let mut p = Pipe::new(
            TransportConfig::websocket(Framing::Intermediate, WsFraming::External),
            WsServerMode::External,
            40,
        );
        p.pump();
        assert!(p.events.contains(&Event::Ready), "{:?}", p.events);
        // No HTTP at all: the stream starts with the 64-byte init.
        assert!(!p.sent_by_client.starts_with(b"GET "));
        assert_eq!(p.server.framing(), Some(Framing::Intermediate));

        // An external-WebSocket server refuses a plain framing...
        let mut p = Pipe::new(
            TransportConfig::plain(Framing::Intermediate),
            WsServerMode::External,
            41,
        );
        p.pump();
        assert_eq!(
            p.server.close_reason(),
            Some(ServerClose::Transport(TransportError::UnknownTransport))
        );
        // ... and an upgrade request.
        let mut s = server(WsServerMode::External, 42);
        s.handle_input(now(0), RFC_REQUEST.as_bytes());
        assert_eq!(
            s.close_reason(),
            Some(ServerClose::Transport(TransportError::UnknownTransport))
        );
    }

    #[test]
    fn websocket_cannot_go_unobfuscated() {
        // The constructor always obfuscates; the full framing cannot be, nor can fake TLS.
        assert!(codec_mode().obfuscated);
        let mut t = codec_mode();
        t.obfuscated = false; // ignored: WebSocket implies obfuscation
        let mut p = Pipe::new(t, WsServerMode::Codec { path: None }, 50);
        p.pump();
        assert!(p.events.contains(&Event::Ready));
        let mut c = client(
            TransportConfig::websocket(Framing::Full, WsFraming::External),
            51,
        );
        assert_eq!(c.poll_event(), Some(Event::Closed(CloseReason::Protocol)));
        let mut t = codec_mode();
        t.secret =
            Some(mtproto::core::transport::ProxySecret::fake_tls([1; 16], b"example.com").unwrap());
        let mut c = client(t, 52);
        assert_eq!(c.poll_event(), Some(Event::Closed(CloseReason::Protocol)));
    }

    #[test]
    fn server_rejects_a_wrong_path_with_404() {
        let mut p = Pipe::new(
            codec_mode(),
            WsServerMode::Codec {
                path: Some("/other".into()),
            },
            60,
        );
        p.pump();
        assert!(p.sent_by_server.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        assert_eq!(
            p.server.close_reason(),
            Some(ServerClose::Transport(TransportError::WebSocket(
                WsError::PathNotFound
            )))
        );
        assert!(p.client.is_closed());
        // Without WebSocket configured, an upgrade is refused as HTTP.
        let mut s = server(WsServerMode::Off, 61);
        s.handle_input(now(0), RFC_REQUEST.as_bytes());
        assert_eq!(
            s.close_reason(),
            Some(ServerClose::Transport(TransportError::HttpNotSupported))
        );
    }

    #[test]
    fn the_upgrade_has_a_deadline() {
        // A resumed connection is Ready at once; only the upgrade's deadline guards the wait.
        let keys = RsaKeySet::new().with(RsaPrivateKey::demo().public_key().clone());
        let mut config = ConnectionConfig::new(2, codec_mode(), keys);
        config.handshake_timeout_ms = 5_000;
        let state = mtproto::core::connection::ResumeState {
            auth_key: mtproto::core::crypto::AuthKey::from_bytes([7; 256]),
            session: mtproto::core::session::SavedSession {
                session_id: 1,
                salt: 2,
                time_offset_secs: 0,
                last_msg_id: 0,
                seq_count: 0,
            },
            key_created_at: None,
        };
        let mut c = Connection::resume(config, state, rng(70), now(0));
        let mut out = Vec::new();
        while c.poll_transmit(now(0), &mut out) {}
        assert!(out.starts_with(b"GET /apiws "));
        assert!(
            out.ends_with(b"\r\n\r\n"),
            "nothing but the request before the 101"
        );
        assert_eq!(c.poll_timeout(), Some(Instant::from_millis(5_000)));
        c.handle_timeout(now(4_999));
        assert!(!c.is_closed());
        c.handle_timeout(now(5_000));
        assert!(c.is_closed());
        let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(events.contains(&Event::Closed(CloseReason::HandshakeTimeout)));
    }
}

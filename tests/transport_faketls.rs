//! MTProxy fake TLS (`ee` secrets): ClientHello -> detection -> ServerHello -> verified, then
//! the obfuscated stream in TLS application-data records, both ways; tampering and clock checks.
//! (The HMAC constructions are checked against a from-scratch HMAC-SHA256 in the unit tests of
//! `mtproto-core/src/transport/faketls.rs`.)

use mtproto::core::time::UnixTime;
use mtproto::core::transport::faketls::{
    CLIENT_HELLO_LEN, RANDOM_OFFSET, build_client_hello, check_client_hello,
};
use mtproto::core::transport::{
    Detector, FakeTlsClient, Frame, Framing, ObfuscatedCodec, ProxySecret, ServerConfig, Status,
    Transport, TransportError,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

const NOW: u64 = 1_764_000_000;

fn secret() -> ProxySecret {
    ProxySecret::parse("ee0123456789abcdef0123456789abcdef7777772e676f6f676c652e636f6d").unwrap()
}

fn config(secrets: Vec<ProxySecret>) -> ServerConfig {
    ServerConfig {
        secrets,
        allow_unsecured: false,
        tls_window_secs: 120,
        ..ServerConfig::default()
    }
}

fn payloads(t: &mut Transport, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, TransportError> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        loop {
            let (n, st) = t.decode(rest)?;
            rest = &rest[n..];
            match st {
                Status::Complete(Frame::Payload { data, .. }) => out.push(data.to_vec()),
                Status::Complete(other) => panic!("{other:?}"),
                Status::Partial => break,
            }
        }
    }
    Ok(out)
}

/// Splits a byte stream into TLS records (type, payload).
fn records(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    while !b.is_empty() {
        assert_eq!(b[1..3], [3, 3]);
        let len = u16::from_be_bytes([b[3], b[4]]) as usize;
        v.push((b[0], b[5..5 + len].to_vec()));
        b = &b[5 + len..];
    }
    v
}

/// Handshake through the detector; returns (client codec, server transport, server reply).
fn connect(seed: u64, chunk: usize) -> (Transport, Transport) {
    let s = secret();
    let mut r = rng(seed);
    let mut hello = Vec::new();
    let mut client = FakeTlsClient::new(&s, UnixTime::from_secs(NOW), &mut r, &mut hello).unwrap();
    assert_eq!(hello.len(), CLIENT_HELLO_LEN);
    assert_eq!(hello[..5], [0x16, 0x03, 0x01, 0x02, 0x00]);
    // The SNI carries the domain.
    assert!(hello.windows(14).any(|w| w == b"www.google.com"));

    let mut det = Detector::new(config(vec![ProxySecret::plain([1; 16]), s.clone()]));
    let mut detected = None;
    for piece in hello.chunks(chunk) {
        let (n, st) = det
            .decode(piece, UnixTime::from_secs(NOW + 30), &mut r)
            .unwrap();
        assert_eq!(n, piece.len());
        if let Status::Complete(d) = st {
            detected = Some(d);
        }
    }
    let d = detected.expect("hello recognised");
    assert_eq!(d.secret_index, Some(1));
    let reply = d.reply;
    assert_eq!(reply[..3], [0x16, 0x03, 0x03]);
    // The answer plus some trailing bytes: the client consumes exactly the answer.
    let mut buf = reply.clone();
    buf.extend_from_slice(&[0x17, 0x03, 0x03]);
    let mut consumed = 0;
    let mut done = false;
    for piece in buf.chunks(chunk) {
        let (n, st) = client.decode(piece).unwrap();
        consumed += n;
        if st == Status::Complete(()) {
            done = true;
            break;
        }
    }
    assert!(done && client.is_done());
    assert_eq!(consumed, reply.len());
    let codec = client.into_codec(Some(-2), &mut r).unwrap();
    assert!(codec.is_fake_tls());
    assert_eq!(codec.framing(), Some(Framing::PaddedIntermediate));
    (Transport::Obfuscated(codec), d.transport)
}

#[test]
fn fake_tls_roundtrip_and_record_sizes() {
    let mut r = rng(99);
    let (mut client, mut server) = connect(1, 100);
    let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let small = vec![5u8; 64];
    let mut wire = Vec::new();
    client.encode(&small, true, &mut r, &mut wire).unwrap();
    let first_len = wire.len();
    client.encode(&big, false, &mut r, &mut wire).unwrap();
    // First the ChangeCipherSpec, then application data records, none above 16 KiB; the big
    // payload needs at least three of them.
    assert_eq!(wire[..6], [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    let recs = records(&wire[6..]);
    assert!(recs.iter().all(|(t, p)| *t == 0x17 && p.len() <= 16 * 1024));
    assert!(records(&wire[first_len..]).len() >= 3);
    // The 64-byte init travels in the first record with the first frame (4-byte length, 64
    // bytes, 0..=15 padding), not before it.
    assert!(
        (132..=147).contains(&recs[0].1.len()),
        "{}",
        recs[0].1.len()
    );

    for chunk in [1usize, 13, 4096, wire.len()] {
        let (mut c2, mut s2) = connect(1, 100);
        let _ = &mut c2;
        let pieces: Vec<&[u8]> = wire.chunks(chunk).collect();
        let got = payloads(&mut s2, &pieces).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][..64], &small[..]);
        assert_eq!(&got[1][..big.len()], &big[..]);
    }
    let got = payloads(&mut server, &[&wire]).unwrap();
    assert_eq!(got.len(), 2);
    let Transport::Obfuscated(o) = &server else {
        panic!()
    };
    assert_eq!(o.dc_id(), Some(-2));

    // Server -> client: records without a ChangeCipherSpec.
    let mut back = Vec::new();
    server.encode(&big, false, &mut r, &mut back).unwrap();
    server.encode(&small, false, &mut r, &mut back).unwrap();
    assert!(
        records(&back)
            .iter()
            .all(|(t, p)| *t == 0x17 && p.len() <= 16 * 1024)
    );
    let pieces: Vec<&[u8]> = back.chunks(777).collect();
    let got = payloads(&mut client, &pieces).unwrap();
    assert_eq!(&got[0][..big.len()], &big[..]);
    assert_eq!(&got[1][..64], &small[..]);
}

#[test]
fn client_hello_checks() {
    let s = secret();
    let secrets = vec![s.clone()];
    let mut r = rng(3);
    let hello = build_client_hello(s.key(), b"example.com", NOW as u32, &mut r).unwrap();
    let info = check_client_hello(&hello, &secrets, UnixTime::from_secs(NOW), 10).unwrap();
    assert_eq!((info.secret_index, info.timestamp), (0, NOW as u32));
    // Clock window: 10 s either side.
    assert!(check_client_hello(&hello, &secrets, UnixTime::from_secs(NOW + 10), 10).is_ok());
    assert_eq!(
        check_client_hello(&hello, &secrets, UnixTime::from_secs(NOW + 11), 10).unwrap_err(),
        TransportError::TlsTimestampOutOfWindow
    );
    assert_eq!(
        check_client_hello(&hello, &secrets, UnixTime::from_secs(NOW - 11), 10).unwrap_err(),
        TransportError::TlsTimestampOutOfWindow
    );
    // Any flipped byte outside the record header breaks the digest (or the structure).
    for i in [5usize, 11, 30, 42, 43, 50, 100, 300, hello.len() - 1] {
        let mut bad = hello.clone();
        bad[i] ^= 0x01;
        assert!(
            check_client_hello(&bad, &secrets, UnixTime::from_secs(NOW), 10).is_err(),
            "byte {i}"
        );
    }
    // Flipping a bit in the timestamp part of the random only moves the time.
    let mut shifted = hello.clone();
    shifted[RANDOM_OFFSET + 31] ^= 0x01;
    assert_eq!(
        check_client_hello(&shifted, &secrets, UnixTime::from_secs(NOW), 10).unwrap_err(),
        TransportError::TlsTimestampOutOfWindow
    );
    // Another secret: digest mismatch. Non-ee secrets are never tried.
    let other = vec![
        ProxySecret::fake_tls([9; 16], b"example.com").unwrap(),
        ProxySecret::plain(*s.key()),
    ];
    assert_eq!(
        check_client_hello(&hello, &other, UnixTime::from_secs(NOW), 10).unwrap_err(),
        TransportError::BadTlsDigest
    );
    // Truncated.
    assert_eq!(
        check_client_hello(&hello[..100], &secrets, UnixTime::from_secs(NOW), 10).unwrap_err(),
        TransportError::BadTlsRecord
    );
}

#[test]
fn detector_rejects_stale_or_forged_hello() {
    let s = secret();
    let mut r = rng(4);
    let mut hello = Vec::new();
    FakeTlsClient::new(&s, UnixTime::from_secs(NOW), &mut r, &mut hello).unwrap();
    let mut det = Detector::new(config(vec![s.clone()]));
    assert_eq!(
        det.decode(&hello, UnixTime::from_secs(NOW + 1000), &mut r)
            .unwrap_err(),
        TransportError::TlsTimestampOutOfWindow
    );
    let mut det = Detector::new(config(vec![
        ProxySecret::fake_tls([2; 16], b"www.google.com").unwrap(),
    ]));
    assert_eq!(
        det.decode(&hello, UnixTime::from_secs(NOW), &mut r)
            .unwrap_err(),
        TransportError::BadTlsDigest
    );
}

#[test]
fn client_rejects_forged_server_hello() {
    let s = secret();
    let mut r = rng(5);
    let mut hello = Vec::new();
    let client = FakeTlsClient::new(&s, UnixTime::from_secs(NOW), &mut r, &mut hello).unwrap();
    let mut det = Detector::new(config(vec![s.clone()]));
    let (_, st) = det
        .decode(&hello, UnixTime::from_secs(NOW), &mut r)
        .unwrap();
    let Status::Complete(d) = st else { panic!() };
    let reply = d.reply;
    // Any flipped byte in the answer: digest mismatch or malformed.
    for i in [0usize, 5, 11, 42, 43, 60, 100, reply.len() - 1] {
        let mut c =
            FakeTlsClient::new(&s, UnixTime::from_secs(NOW), &mut rng(5), &mut Vec::new()).unwrap();
        let mut bad = reply.clone();
        bad[i] ^= 0x01;
        let r = c.decode(&bad);
        assert!(
            matches!(
                r,
                Err(TransportError::BadServerHelloDigest | TransportError::BadTlsRecord)
            ) || matches!(r, Ok((_, Status::Partial))),
            "byte {i}: {r:?}"
        );
        assert!(!c.is_done());
    }
    // A codec cannot be had before the answer is verified.
    assert!(client.into_codec(None, &mut r).is_err());
    // Plain obfuscation cannot take an ee secret.
    assert!(ObfuscatedCodec::client(Framing::PaddedIntermediate, None, Some(&s), &mut r).is_err());
}

#[test]
fn server_tls_reader_rejects_bad_records() {
    for (bad, what) in [
        (vec![0x15, 3, 3, 0, 2, 2, 40], "alert record"),
        (vec![0x17, 3, 1, 0, 1, 0], "wrong version"),
        (vec![0x17, 3, 3, 0x41, 1], "record above 2^14 + 256"),
        (
            vec![0x14, 3, 3, 0, 1, 2],
            "ChangeCipherSpec with a wrong byte",
        ),
        (
            vec![0x14, 3, 3, 0, 1, 1, 0x14, 3, 3, 0, 1, 1],
            "two ChangeCipherSpecs",
        ),
    ] {
        let (_, mut server) = connect(7, 517);
        assert!(payloads(&mut server, &[&bad]).is_err(), "{what}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn fake_tls_any_payloads_any_chunks(
        sizes in prop::collection::vec(0usize..20_000, 1..5),
        chunk in 1usize..3000,
        seed in any::<u64>(),
    ) {
        let (mut client, mut server) = connect(seed, chunk.min(600));
        let mut r = rng(seed ^ 1);
        let mut wire = Vec::new();
        let sent: Vec<Vec<u8>> = sizes.iter().map(|&n| (0..n).map(|i| (i * 31 + n) as u8).collect()).collect();
        for p in &sent {
            client.encode(p, false, &mut r, &mut wire).unwrap();
        }
        let pieces: Vec<&[u8]> = wire.chunks(chunk).collect();
        let got = payloads(&mut server, &pieces).unwrap();
        prop_assert_eq!(got.len(), sent.len());
        for (g, s) in got.iter().zip(&sent) {
            prop_assert_eq!(&g[..s.len()], &s[..]);
            prop_assert!(g.len() - s.len() <= 15);
        }
    }

    #[test]
    fn detector_never_panics_on_hello_garbage(
        tail in prop::collection::vec(any::<u8>(), 0..1200),
        len in any::<u16>(),
    ) {
        let mut bytes = vec![0x16, 3, 1, 2];
        bytes.extend_from_slice(&len.to_be_bytes()[1..]);
        bytes.extend_from_slice(&tail);
        let mut det = Detector::new(config(vec![secret()]));
        let _ = det.decode(&bytes, UnixTime::from_secs(NOW), &mut rng(0));
        let mut c = FakeTlsClient::new(&secret(), UnixTime::from_secs(NOW), &mut rng(0), &mut Vec::new()).unwrap();
        let _ = c.decode(&tail);
    }
}

#[test]
fn detector_buffers_at_most_one_hello_record() {
    // A ClientHello starts `16 03 01 02 xx` (the prefix obfuscation inits avoid), so its record is
    // at most 0x2ff bytes. Streamed garbage after the largest such header: the detector holds at
    // most that one record, then rejects it as malformed and drops its buffer.
    let mut det = Detector::new(config(vec![secret()]));
    let mut stream = vec![0x16, 0x03, 0x01, 0x02, 0xff];
    stream.extend(std::iter::repeat_n(0xA5, 20_000));
    let mut outcome = None;
    for piece in stream.chunks(100) {
        match det.decode(piece, UnixTime::from_secs(NOW), &mut rng(0)) {
            Ok((n, Status::Partial)) => {
                assert_eq!(n, piece.len());
                assert!(det.buffered() <= 5 + 0x2ff, "{}", det.buffered());
            }
            other => {
                outcome = Some(other.map(|(n, _)| n));
                break;
            }
        }
    }
    assert_eq!(outcome, Some(Err(TransportError::BadTlsRecord)));
    assert_eq!(det.buffered(), 0);
}

#[test]
fn hand_built_proxy_with_server_fake_tls() {
    // A proxy that does the handshake itself (check_client_hello, build_server_hello) and then
    // reads the records with ObfuscatedCodec::server_fake_tls talks to our client like the
    // detector's codec does; fake-TLS fuzzing starts from this codec.
    let s = secret();
    let mut r = rng(5);
    let now = UnixTime::from_secs(NOW);
    let mut hello = Vec::new();
    let mut client = FakeTlsClient::new(&s, now, &mut r, &mut hello).unwrap();
    let info = check_client_hello(&hello, std::slice::from_ref(&s), now, 120).unwrap();
    let answer = mtproto::core::transport::faketls::build_server_hello(&s, &info, &mut r);
    assert_eq!(
        client.decode(&answer).unwrap(),
        (answer.len(), Status::Complete(()))
    );
    let mut c = Transport::Obfuscated(client.into_codec(Some(3), &mut r).unwrap());
    let mut server = Transport::Obfuscated(ObfuscatedCodec::server_fake_tls(&s));
    let mut wire = Vec::new();
    c.encode(&[9; 32], false, &mut r, &mut wire).unwrap();
    c.encode(&[8; 48], false, &mut r, &mut wire).unwrap();
    let pieces: Vec<&[u8]> = wire.chunks(7).collect();
    let got = payloads(&mut server, &pieces).unwrap();
    assert_eq!((&got[0][..32], &got[1][..48]), (&[9; 32][..], &[8; 48][..]));
    let Transport::Obfuscated(o) = &server else {
        panic!()
    };
    assert!(o.is_fake_tls());
    assert_eq!(o.dc_id(), Some(3));
}

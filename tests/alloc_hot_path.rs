//! Zero heap allocations on the message hot path, counted by a global allocator: encrypting a
//! message into a reused buffer, framing it (every plain framing and obfuscated2), decoding the
//! frame and decrypting the message, in steady state (after one warm-up round has grown the
//! reused buffers).
//!
//! The counter only counts on the thread that switched it on, so tests running in parallel do
//! not disturb each other.

use mtproto::core::crypto::message::{
    self, BODY_OFFSET, MessageHeader, PaddingPolicy, decrypt_message, encrypt_message,
};
use mtproto::core::crypto::{AuthKey, Side};
use mtproto::core::transport::{Codec, Frame, Framing, ObfuscatedCodec, Role, Status, Transport};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

#[test]
fn the_counter_counts() {
    // Guards the tests below: an allocation inside the window is seen.
    let (n, b) = allocations(|| Box::new(std::hint::black_box(7u64)));
    assert_eq!((n, *b), (1, 7));
    let (n, v) = allocations(|| {
        let mut v = Vec::<u8>::with_capacity(1);
        v.extend_from_slice(&[1, 2, 3]);
        v
    });
    assert_eq!((n, v.len()), (2, 3));
    assert_eq!(allocations(|| 1 + 1).0, 0);
}

fn key() -> AuthKey {
    AuthKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ 0x3c))
}

fn header(side: Side, n: u64) -> MessageHeader {
    MessageHeader {
        salt: 0x1111,
        session_id: 0x2222,
        msg_id: ((n << 2) | u64::from(side == Side::Server)) as i64,
        seq_no: n as i32,
    }
}

#[test]
fn encrypt_and_decrypt_do_not_allocate() {
    let key = key();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for policy in [
        PaddingPolicy::default(),
        PaddingPolicy::Random { min: 12, max: 27 },
        PaddingPolicy::Random { min: 12, max: 1024 },
    ] {
        for body_len in [0usize, 16, 128, 1024, 8192, 65536] {
            let body: Vec<u8> = (0..body_len).map(|i| i as u8).collect();
            let mut buf = vec![0u8; message::max_encrypted_len(body_len, &policy).unwrap()];
            for side in [Side::Client, Side::Server] {
                buf[BODY_OFFSET..BODY_OFFSET + body_len].copy_from_slice(&body);
                let (n, out) = allocations(|| {
                    encrypt_message(
                        &key,
                        side,
                        &header(side, 9),
                        body_len,
                        &mut buf,
                        &policy,
                        &mut rng,
                    )
                    .unwrap()
                });
                assert_eq!(n, 0, "encrypt {policy:?} {body_len} {side:?}");
                let (n, ok) = allocations(|| {
                    decrypt_message(&key, side, &mut buf[..out.len])
                        .map(|m| m.body == &body[..])
                        .unwrap()
                });
                assert!(ok);
                assert_eq!(n, 0, "decrypt {policy:?} {body_len} {side:?}");
                // A rejected message allocates nothing either.
                buf[BODY_OFFSET] ^= 1;
                let (n, r) = allocations(|| decrypt_message(&key, side, &mut buf[..out.len]).err());
                assert_eq!(r, Some(message::DecryptError::Rejected));
                assert_eq!(n, 0);
            }
        }
    }
}

/// One client→server→client exchange through a pair of transports with reused buffers:
/// encrypt → frame → decode → decrypt, both ways. Returns the number of heap allocations.
struct Pair {
    key: AuthKey,
    client: Transport,
    server: Transport,
    msg: Vec<u8>,
    wire: Vec<u8>,
    rng: ChaCha20Rng,
}

impl Pair {
    fn new(client: Transport, server: Transport) -> Self {
        Pair {
            key: key(),
            client,
            server,
            msg: vec![0u8; 4096],
            wire: Vec::with_capacity(8192),
            rng: ChaCha20Rng::seed_from_u64(5),
        }
    }

    fn one_way(&mut self, from: Side, n: u64, body_len: usize) {
        let Pair {
            key,
            client,
            server,
            msg,
            wire,
            rng,
        } = self;
        let (tx, rx) = match from {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        msg[BODY_OFFSET..BODY_OFFSET + body_len].fill(n as u8);
        let out = encrypt_message(
            key,
            from,
            &header(from, n),
            body_len,
            msg,
            &PaddingPolicy::default(),
            rng,
        )
        .unwrap();
        wire.clear();
        tx.encode(&msg[..out.len], false, rng, wire).unwrap();
        let (used, status) = rx.decode(wire).unwrap();
        assert_eq!(used, wire.len());
        let Status::Complete(Frame::Payload { data, .. }) = status else {
            panic!("no frame: {status:?}")
        };
        // The decoder's buffer is borrowed: decrypt a copy in the reused message buffer.
        let len = data.len();
        msg[..len].copy_from_slice(data);
        let m = decrypt_message(key, from, &mut msg[..len]).unwrap();
        assert_eq!(m.body.len(), body_len);
        assert!(m.body.iter().all(|&b| b == n as u8));
    }

    fn round_trip(&mut self, n: u64) {
        self.one_way(Side::Client, n, 64);
        self.one_way(Side::Server, n, 1024);
    }
}

fn check_steady_state(name: &str, mut pair: Pair) {
    // Warm-up: a first, larger exchange grows the decoders' and the wire buffers to the size
    // of any later frame (the padded framing's random 0..=15 bytes vary the frame sizes).
    pair.one_way(Side::Client, 1, 2048);
    pair.one_way(Side::Server, 1, 2048);
    for n in 3..20 {
        let (count, ()) = allocations(|| pair.round_trip(n));
        assert_eq!(count, 0, "{name}: round trip {n}");
    }
}

#[test]
fn framed_round_trips_do_not_allocate() {
    for framing in [
        Framing::Abridged,
        Framing::Intermediate,
        Framing::PaddedIntermediate,
        Framing::Full,
    ] {
        check_steady_state(
            &format!("{framing:?}"),
            Pair::new(
                Transport::Plain(Codec::new(framing, Role::Client)),
                Transport::Plain(Codec::new(framing, Role::Server)),
            ),
        );
    }
    for framing in [
        Framing::Abridged,
        Framing::Intermediate,
        Framing::PaddedIntermediate,
    ] {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let client = ObfuscatedCodec::client(framing, Some(2), None, &mut rng).unwrap();
        check_steady_state(
            &format!("obfuscated {framing:?}"),
            Pair::new(
                Transport::Obfuscated(client),
                Transport::Obfuscated(ObfuscatedCodec::server(None)),
            ),
        );
    }
}
